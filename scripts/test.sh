#!/usr/bin/env bash
# The whole test suite from nothing: set up (toolchain, weights), build every crate,
# check that the GPU backends still build, run all tests on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --workspace --all-targets
if [ "${SKIP_GPU_BUILD:-0}" != "1" ]; then
  # CUDA (loaded at run time through cudarc) and wgpu must keep compiling.
  cargo build --release -p whisper-bench --features cuda,wgpu --target-dir target/gpu
fi
cargo test --release --workspace
