#!/usr/bin/env bash
# Our greedy and exact speculative (self-q4) decoding against faster-whisper int8, alternated
# twice (A B A B) so a shared machine's drift falls on both, on eval_quick_40:
#   scripts/vs_faster_whisper.sh OUT_DIR
# Needs target/release/whisper-bench (cargo build --release) and the models (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?output folder}
manifest=../shared/data/librispeech/eval_quick_40.tsv
for i in 1 2; do
  ./target/release/whisper-bench benchmark --mode speculative --dataset "$manifest" \
    --main weights/models/base --drafts self-q4 --out "$out/ours_$i"
  scripts/faster_whisper_bench.sh --model weights/models/base --manifest "$manifest" \
    --compute-types int8 --threads 2 --out "$out/fw_$i"
done
