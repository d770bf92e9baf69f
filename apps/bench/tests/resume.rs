//! `whisper-bench transcribe --output FILE.jsonl` survives being killed: `--resume` finishes
//! the run with exactly one line per input and the transcripts of an uninterrupted run; a
//! torn last line is cut off; `--shard I/N` splits the inputs into disjoint parts that
//! cover them all.
mod support;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::{target_dir, tiny_en};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared");
/// Inputs per run: enough to kill a run half-way, few enough for CI.
const N: usize = 10;

fn manifest() -> String {
    format!("{SHARED}/data/librispeech/eval_quick_40.tsv")
}

/// A fresh folder under `target/test-resume/`.
fn out_dir(name: &str) -> PathBuf {
    target_dir("test-resume", name)
}

/// `whisper-bench transcribe` on the first `N` manifest rows, plus `args`.
fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_whisper-bench"));
    cmd.arg("transcribe")
        .args(["--model", &tiny_en(), "--language", "en"])
        .args(["--manifest", &manifest()])
        .args(["--root", &format!("{SHARED}/data/librispeech/LibriSpeech")])
        .args(["--limit", &N.to_string()])
        .args(args);
    cmd
}

fn run_ok(args: &[&str]) -> Output {
    let t0 = Instant::now();
    let out = command(args).output().expect("whisper-bench runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{args:?}: {:.1} s", t0.elapsed().as_secs_f64());
    out
}

/// The ids of the first `N` manifest rows, in order.
fn expected_ids() -> Vec<String> {
    let text = std::fs::read_to_string(manifest()).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .take(N)
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

/// Parses every line (all must be complete JSON objects) of a finished output file.
fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends with a torn line",
        path.display()
    );
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{} line {}: {e}: {l}", path.display(), i + 1))
        })
        .collect()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("string id").to_string()
}

/// The transcript-relevant fields by id (timings differ between runs), after checking
/// that no id occurs twice.
fn by_id(lines: &[Value]) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for v in lines {
        let fields: Value = ["id", "text", "tokens", "segments", "language"]
            .iter()
            .map(|k| (k.to_string(), v[*k].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into();
        assert!(
            map.insert(id(v), fields).is_none(),
            "duplicate id {}",
            id(v)
        );
    }
    map
}

/// (a) The uninterrupted run, computed once: its lines by id.
fn reference() -> &'static BTreeMap<String, Value> {
    static REFERENCE: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dir = out_dir("reference");
        let file = dir.join("all.jsonl");
        let out = run_ok(&["--json", "--output", file.to_str().unwrap()]);
        let written = lines(&file);
        let printed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(written, printed, "the file holds the objects --json prints");
        let map = by_id(&written);
        let ids: Vec<String> = written.iter().map(id).collect();
        assert_eq!(ids, expected_ids(), "one line per input, in input order");
        map
    })
}

fn complete_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// (b) SIGKILL half-way, then `--resume`: one line per id, the reference transcripts.
#[test]
fn killed_run_resumes_to_the_uninterrupted_result() {
    let reference = reference();
    let dir = out_dir("killed");
    let file = dir.join("run.jsonl");
    let path = file.to_str().unwrap();

    let t0 = Instant::now();
    let mut child = command(&["--output", path])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    loop {
        let n = complete_lines(&file);
        if n >= 2 {
            assert!(
                n < N,
                "the run finished ({n} lines) before it could be killed"
            );
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run exited ({status}) before writing 2 lines");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no 2 lines in 300 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix: no chance to clean up.
    child.wait().unwrap();
    let done = complete_lines(&file);
    eprintln!(
        "killed after {:.1} s with {done} complete lines",
        t0.elapsed().as_secs_f64()
    );
    assert!((2..N).contains(&done), "{done} lines at the kill");

    // Without --resume the file is not appended to.
    let out = command(&["--output", path]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already exists and is not empty") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert_eq!(complete_lines(&file), done, "refused run changed the file");

    let out = run_ok(&["--output", path, "--resume"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{done} of {N} inputs already done")),
        "{stderr}"
    );
    let resumed = lines(&file);
    assert_eq!(resumed.len(), N, "one line per input");
    assert_eq!(&by_id(&resumed), reference);

    // Resuming a finished file does nothing.
    let before = std::fs::read(&file).unwrap();
    let out = run_ok(&["--output", path, "--resume"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to transcribe"));
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

/// (b) A torn last line (a crash inside the write) is cut off and its input redone.
#[test]
fn torn_last_line_is_repaired_on_resume() {
    let reference = reference();
    let dir = out_dir("torn");
    let file = dir.join("torn.jsonl");
    let full =
        std::fs::read(Path::new(ROOT).join("target/test-resume/reference/all.jsonl")).unwrap();
    let kept: Vec<u8> = full
        .split_inclusive(|&b| b == b'\n')
        .take(N - 3)
        .flatten()
        .copied()
        .collect();
    let next = full.split_inclusive(|&b| b == b'\n').nth(N - 3).unwrap();
    // Half a line, as a crash inside the write leaves it: bytes, maybe mid-character.
    let torn = &next[..next.len() / 2];
    std::fs::write(&file, [&kept[..], torn].concat()).unwrap();

    let out = run_ok(&["--output", file.to_str().unwrap(), "--resume"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cut off a torn last line ({} bytes)", torn.len())),
        "{stderr}"
    );
    assert!(stderr.contains("3 to go"), "{stderr}");
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(&kept), "complete lines kept as they were");
    let repaired = lines(&file); // every line parses: no fragment of the torn one is left
    assert_eq!(repaired.len(), N);
    assert_eq!(&by_id(&repaired), reference);
}

/// (c) `--shard 0/3`, `1/3`, `2/3`: disjoint id sets whose union is every input; the lines
/// are the reference ones.
#[test]
fn shards_are_disjoint_and_cover_all_inputs() {
    let reference = reference();
    let dir = out_dir("shards");
    let mut union = BTreeMap::new();
    for i in 0..3 {
        let file = dir.join(format!("shard-{i}.jsonl"));
        let shard = format!("{i}/3");
        run_ok(&["--shard", &shard, "--output", file.to_str().unwrap()]);
        let part = lines(&file);
        let ids: Vec<String> = part.iter().map(id).collect();
        let want: Vec<String> = expected_ids().into_iter().skip(i).step_by(3).collect();
        assert_eq!(ids, want, "shard {shard} takes every 3rd input from {i}");
        for (k, v) in by_id(&part) {
            assert!(union.insert(k.clone(), v).is_none(), "{k} in two shards");
        }
    }
    let all: BTreeSet<String> = expected_ids().into_iter().collect();
    assert_eq!(union.keys().cloned().collect::<BTreeSet<_>>(), all);
    assert_eq!(&union, reference);
}

#[test]
fn bad_shard_and_resume_without_output_are_clear_errors() {
    for bad in ["3/3", "0/0", "1", "a/b", "-1/2"] {
        let out = command(&[&format!("--shard={bad}")]).output().unwrap();
        assert!(!out.status.success(), "--shard {bad} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("is not a shard: give I/N with 0 <= I < N"),
            "--shard {bad}: {stderr}"
        );
    }
    let out = command(&["--resume"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output"));
}
