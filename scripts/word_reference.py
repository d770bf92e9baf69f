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
after the last word is exercised).
"""

import argparse
import csv
import json
from pathlib import Path

import ctranslate2
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
    args = p.parse_args()
    if args.excerpt:
        audio = decode_audio(args.excerpt)[: int(args.seconds * 16000)]
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
                word_timestamps=True, vad_filter=False,
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
                model=args.model, source=args.excerpt or args.manifest, compute_type="float32")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
