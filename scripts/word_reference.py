"""faster-whisper's word timestamps on a LibriSpeech manifest: the reference our word
alignment is compared with (whisper-bench words-vs-reference, tests/words.rs).

Greedy, language en, timestamps on, word_timestamps=True, float32 compute, no VAD, same
CTranslate2 weights as ours. Writes one JSON line per utterance: id, text, segments with
their start/end/tokens and words [{word, start, end, probability}].

    python3 scripts/word_reference.py --model weights/models/base \
        --manifest ../shared/data/librispeech/eval_quick_40.tsv \
        --out reference/faster-whisper-base-words.eval_quick_40.jsonl
    python3 scripts/word_reference.py --model weights/models/base \
        --excerpt ../shared/data/longform/1089-134686.flac --seconds 75 \
        --out reference/faster-whisper-base-words.1089-134686-75s.jsonl

`--excerpt` transcribes the first `--seconds` of one file (several windows: the seek
after the last word is exercised), with `--insert-silences` runs of zeros inserted at
positions of the excerpt; `--vad` turns on faster-whisper's `vad_filter`.
"""

import argparse
import csv
import json
from pathlib import Path

import ctranslate2
import numpy as np
import faster_whisper
from faster_whisper import WhisperModel, decode_audio


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="weights/models/base")
    p.add_argument("--manifest", default="../shared/data/librispeech/eval_quick_40.tsv")
    p.add_argument("--out", default="reference/faster-whisper-base-words.eval_quick_40.jsonl")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--excerpt", help="one audio file instead of the manifest")
    p.add_argument("--seconds", type=float, default=75.0)
    p.add_argument("--vad", action="store_true", help="vad_filter=True (default VadOptions)")
    p.add_argument("--insert-silences", default="",
                   help="POS_S:LEN_S,... digital silences inserted into the excerpt")
    args = p.parse_args()
    if args.excerpt:
        audio = decode_audio(args.excerpt)[: int(args.seconds * 16000)]
        # From the last insertion back, so each position is in the excerpt's own time.
        inserts = [tuple(float(x) for x in i.split(":")) for i in args.insert_silences.split(",") if i]
        for pos_s, len_s in sorted(inserts, reverse=True):
            pos = int(pos_s * 16000)
            audio = np.concatenate([audio[:pos], np.zeros(int(len_s * 16000), np.float32), audio[pos:]])
        items = [(Path(args.excerpt).stem, lambda: audio)]
    else:
        manifest = Path(args.manifest)
        root = manifest.parent / "LibriSpeech"
        with open(manifest, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        items = [(r["id"], lambda r=r: decode_audio(str(root / r["path"]))) for r in rows]
    model = WhisperModel(args.model, device="cpu", compute_type="float32", cpu_threads=args.threads)
    with open(args.out, "w") as out:
        for item_id, load in items:
            audio = load()
            segments, _ = model.transcribe(
                audio, language="en", beam_size=1, best_of=1, temperature=0.0,
                condition_on_previous_text=True, without_timestamps=False,
                word_timestamps=True, vad_filter=args.vad,
            )
            segs = [
                dict(start=s.start, end=s.end, text=s.text, tokens=s.tokens,
                     words=[dict(word=w.word, start=w.start, end=w.end,
                                 probability=round(w.probability, 6)) for w in s.words])
                for s in segments
            ]
            text = "".join(s["text"] for s in segs).strip()
            out.write(json.dumps(dict(id=item_id, text=text, segments=segs)) + "\n")
    meta = dict(faster_whisper=faster_whisper.__version__, ctranslate2=ctranslate2.__version__,
                model=args.model, source=args.excerpt or args.manifest, compute_type="float32",
                vad_filter=args.vad, insert_silences=args.insert_silences)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
