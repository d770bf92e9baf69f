#!/usr/bin/env bash
# The main job from nothing: set up, build, and transcribe JFK exactly, then with
# speculative decoding (same tokens, printed with its statistics).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p whisper-bench
audio="${1:-../shared/data/clips/jfk.flac}"
./target/release/whisper-bench transcribe --model weights/models/base "$audio"
./target/release/whisper-bench transcribe --model weights/models/base --draft self-q8 --json "$audio"
