#!/usr/bin/env bash
# The main job from nothing: set up, build, and transcribe JFK exactly, then with
# speculative decoding (same tokens, printed with its statistics).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p whisper-bench
audio="${1:-../shared/data/clips/jfk.flac}"
bin="${CARGO_TARGET_DIR:-target}/release/whisper-bench"
"$bin" transcribe --model weights/models/base "$audio"
"$bin" transcribe --model weights/models/base --draft self-q8 --json "$audio"
