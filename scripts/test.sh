#!/usr/bin/env bash
# The whole test suite from nothing: set up (toolchain, weights), check formatting and
# clippy lints, build every crate, run all tests on CPU, then check that the GPU
# backends build and run the generic path's tests on wgpu (software Vulkan).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# deploy/: Dockerfiles and Kubernetes manifests checked against the server's flags, routes
# and metrics, offline (no cluster, no network), and the checker's own breakage self-test.
python3 deploy/validate.py
# Gates before any test: formatting, and clippy (default features) with every
# warning an error.
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo build --release --workspace --all-targets
cargo test --release --workspace
if [ "${SKIP_GPU_BUILD:-0}" != "1" ]; then
  # CUDA (loaded at run time through cudarc) and wgpu must keep compiling, and the
  # generic path runs on wgpu through Mesa's software Vulkan (lavapipe, on the CPU):
  # the same invariant tests as on the CPU (model_random, every_target: cache, rollback,
  # batch == single, speculative == greedy, read-backs per pass). One feature set for
  # both commands, so burn is built once for them.
  cargo build --release -p whisper-bench --features cuda,wgpu --target-dir target/gpu
  VK_ICD_FILENAMES="${VK_ICD_FILENAMES:-/usr/share/vulkan/icd.d/lvp_icd.x86_64.json}" \
    cargo test --release -p whisper-burn -p spec-engine --features cuda,wgpu \
    --target-dir target/gpu --test model_random --test every_target wgpu
fi
