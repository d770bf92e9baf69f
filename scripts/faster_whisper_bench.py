"""faster-whisper (CTranslate2) greedy baseline on a LibriSpeech manifest.

For each compute type: load the model, decode all audio beforehand, run one warm-up transcription,
then time each utterance's transcription (and, separately, the encoder alone on its 30 s window).
Writes results.csv and summary.md to --out; token ids are compared with a faster-whisper greedy
reference TSV (id, seconds, tokens, text). Run it through scripts/faster_whisper_bench.sh.
"""

import argparse
import csv
import datetime
import shlex
import subprocess
import sys
import time
from pathlib import Path

import ctranslate2
import faster_whisper
from faster_whisper import WhisperModel, decode_audio
from faster_whisper.audio import pad_or_trim

GREEDY = dict(
    beam_size=1,
    best_of=1,
    temperature=0.0,
    condition_on_previous_text=True,
    without_timestamps=True,
    language="en",
    vad_filter=False,
)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="weights/models/base", help="CTranslate2 model directory")
    p.add_argument("--manifest", default="../shared/data/librispeech/eval_quick_40.tsv",
                   help="TSV with id, path (relative to <manifest dir>/LibriSpeech), duration_s")
    p.add_argument("--reference", default="../shared/reference/faster-whisper-base-greedy.eval_200.tsv",
                   help="TSV with id and space-separated token ids")
    p.add_argument("--compute-types", default="float32,int8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="bench-results/faster-whisper-base-eval_quick_40")
    return p.parse_args()


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def load_utterances(manifest):
    """(id, duration_s, samples) for each manifest row; audio is decoded to 16 kHz mono."""
    root = Path(manifest).parent / "LibriSpeech"
    return [(r["id"], float(r["duration_s"]), decode_audio(str(root / r["path"]))) for r in read_tsv(manifest)]


def transcribe(model, audio):
    segments, _ = model.transcribe(audio, **GREEDY)
    segments = list(segments)  # the generator does the decoding
    text = "".join(s.text for s in segments).strip()
    tokens = [t for s in segments for t in s.tokens]
    return text, tokens


def time_encoder(model, audio):
    features = pad_or_trim(model.feature_extractor(audio))
    start = time.perf_counter()
    model.encode(features)
    return time.perf_counter() - start


def bench(model_dir, compute_type, threads, utterances):
    """One row per utterance: compute_type, id, duration_s, latency_s, encode_s, text, tokens."""
    model = WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=threads)
    transcribe(model, utterances[0][2])  # warm-up
    rows = []
    for uid, duration, audio in utterances:
        start = time.perf_counter()
        text, tokens = transcribe(model, audio)
        latency = time.perf_counter() - start
        rows.append(dict(compute_type=compute_type, id=uid, duration_s=duration, latency_s=round(latency, 4),
                         encode_s=round(time_encoder(model, audio), 4), text=text,
                         tokens=" ".join(map(str, tokens))))
        print(f"{compute_type} {uid} {latency:.3f}s {text}", flush=True)
    return rows


def machine():
    info = dict(line.split(":", 1) for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines() if ":" in line)
    return f"{info['Model name'].strip()}, {info['CPU(s)'].strip()} cores"


def write_summary(path, command, date, rows, reference, threads):
    lines = [
        "# faster-whisper greedy baseline",
        "",
        f"- command: `{command}`",
        f"- date: {date:%Y-%m-%d %H:%M:%S} UTC",
        f"- machine: {machine()}; cpu_threads={threads}",
        f"- faster-whisper {faster_whisper.__version__}, ctranslate2 {ctranslate2.__version__}",
        "- decoding: " + ", ".join(f"{k}={v!r}" for k, v in GREEDY.items()),
        "",
        "| compute type | utts | audio s | total s | mean latency s | RTF | mean encoder s | token ids = reference |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ct in dict.fromkeys(r["compute_type"] for r in rows):
        sel = [r for r in rows if r["compute_type"] == ct]
        audio = sum(r["duration_s"] for r in sel)
        total = sum(r["latency_s"] for r in sel)
        encode = sum(r["encode_s"] for r in sel) / len(sel)
        matches = sum(reference.get(r["id"]) == r["tokens"] for r in sel)
        lines.append(f"| {ct} | {len(sel)} | {audio:.1f} | {total:.2f} | {total / len(sel):.3f} | "
                     f"{total / audio:.3f} | {encode:.3f} | {matches}/{len(sel)} |")
    lines += [
        "",
        "## Notes",
        "",
        "- Latency: wall clock (`time.perf_counter`) around one `transcribe` call with its segment generator "
        "consumed; audio decoded beforehand (`decode_audio`); 1 warm-up transcription per compute type, discarded.",
        "- Total s: sum of the utterances' latencies; RTF: total s / audio s.",
        "- Encoder s: `WhisperModel.encode` alone on the utterance's padded 30 s log-mel window, timed after its "
        "transcription (not part of the latency).",
        "- Token ids: all segments' text tokens concatenated, compared with the reference TSV's `tokens` column.",
    ]
    Path(path).write_text("\n".join(lines) + "\n")


def main():
    args = parse_args()
    date = datetime.datetime.now(datetime.timezone.utc)
    utterances = load_utterances(args.manifest)
    reference = {r["id"]: r["tokens"].strip() for r in read_tsv(args.reference)}
    rows = [row for ct in args.compute_types.split(",") for row in bench(args.model, ct, args.threads, utterances)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    command = shlex.join(["scripts/faster_whisper_bench.sh", *sys.argv[1:]])
    write_summary(out / "summary.md", command, date, rows, reference, args.threads)


if __name__ == "__main__":
    main()
