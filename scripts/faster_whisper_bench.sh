#!/usr/bin/env bash
# faster-whisper (CTranslate2) baseline: sets up .venv-fw/ with faster-whisper from PyPI (pinned to 1.2.1,
# the version ../shared/reference was made with), then runs scripts/faster_whisper_bench.py with the
# given arguments, e.g.
#   scripts/faster_whisper_bench.sh --model weights/models/base --compute-types float32,int8
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv-fw/bin/python ] || python3 -m venv .venv-fw
.venv-fw/bin/python -m pip install --quiet --disable-pip-version-check faster-whisper==1.2.1
exec .venv-fw/bin/python scripts/faster_whisper_bench.py "$@"
