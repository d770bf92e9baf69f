"""faster-whisper 1.2.1's Silero VAD on shared clips: the reference whisper_burn::vad is
compared with (whisper-burn/tests/vad.rs).

For each file: faster_whisper.decode_audio (16 kHz mono, s16 through PyAV), then
faster_whisper.vad.get_speech_timestamps with the default VadOptions and with
min_silence_duration_ms=500 (onnxruntime, silero_vad_v6.onnx from the wheel). Writes one
JSON file with, per input: the decoded length and the CRC-32 of the float32 samples
(so the test can tell whether our decoder gave the same samples), the chunks (samples)
of both option sets, and the speech probabilities of the first `--probs` windows (the
model's output; a prefix does not depend on what follows it), for the 16 kHz mono FLAC
inputs only (the others go through a resampler or a lossy decoder, ours or PyAV's).

Inputs: both long-form chapters, clips from ../shared/data/clips (FLAC, WAV and the
multilingual MP3/Opus ones), the first 10 eval_quick_40 utterances, a synthetic file
(chapter 1089-134686 with digital silences of 6-20 s inserted at fixed places, listed in
the output so the test builds the same audio) and 12 minutes of digital silence. Also
get_original_time around chunk ends, and get_speech_timestamps on 12 made-up probability
sequences (the model replaced) for the timestamp logic alone.

    python3 scripts/vad_reference.py --out reference/vad/faster_whisper_1.2.1.json
"""

import argparse
import csv
import json
import zlib
from pathlib import Path

import numpy as np
import faster_whisper
from faster_whisper import decode_audio
import faster_whisper.vad as fw_vad
from faster_whisper.vad import SpeechTimestampsMap, VadOptions, get_speech_timestamps, get_vad_model

SR = 16000
CLIPS = [
    "clips/jfk.flac",
    "clips/en_mfa_michaelandsickmichael_stereo.wav",
    "clips/multilingual/de.mp3",
    "clips/multilingual/es.mp3",
    "clips/multilingual/es_mls_13697_11991_000000.opus",
    "clips/multilingual/ja_common_voice_ja_24511055.mp3",
]
LONGFORM = ["longform/1089-134686.flac", "longform/2830-3980.flac"]
SYNTHETIC_BASE = "longform/1089-134686.flac"


def synthetic_inserts():
    """(position, length) in samples of the original: every 25 s, 6-20 s of zeros."""
    return [(k * 25 * SR, (5 + (7 * k) % 16) * SR) for k in range(1, 11)]


def with_silences(audio, inserts):
    parts, prev = [], 0
    for pos, length in inserts:
        parts += [audio[prev:pos], np.zeros(length, np.float32)]
        prev = pos
    parts.append(audio[prev:])
    return np.concatenate(parts)


def crc32(samples):
    return zlib.crc32(np.ascontiguousarray(samples, dtype="<f4").tobytes())


def probs(audio, n):
    # As get_speech_timestamps calls the model.
    padded = np.pad(audio, (0, 512 - audio.shape[0] % 512))
    return get_vad_model()(padded)[:n]


def original_times(chunks):
    """SpeechTimestampsMap.get_original_time around the first 8 chunk ends of the speech
    audio: [time, is_end, original time], the time as its repr (a string: parsers of JSON
    numbers need not round-trip every double)."""
    ts_map = SpeechTimestampsMap([dict(start=a, end=b) for a, b in chunks], SR)
    out, end = [], 0
    for a, b in chunks[:8]:
        end += b - a
        for t in (end / SR - 0.013, end / SR, end / SR + 0.007):
            for is_end in (False, True):
                out.append([repr(t), is_end, ts_map.get_original_time(t, is_end=is_end)])
    return out


class FakeModel:
    def __init__(self, probs):
        self.probs = probs

    def __call__(self, padded):
        assert padded.shape[0] // 512 == self.probs.shape[0]
        return self.probs


def probability_cases():
    """get_speech_timestamps on made-up probability sequences (the model replaced), for
    the timestamp logic alone: speech, silence and in-between runs of random lengths."""
    rng = np.random.default_rng(20261203)
    option_sets = [
        {},
        dict(min_silence_duration_ms=500),
        dict(min_silence_duration_ms=300, max_speech_duration_s=5.0),
        dict(min_silence_duration_ms=100, max_speech_duration_s=2.0, speech_pad_ms=30),
        dict(threshold=0.6, neg_threshold=0.3, min_speech_duration_ms=250),
        dict(min_silence_duration_ms=0, speech_pad_ms=0),
    ]
    cases = []
    for k in range(12):
        runs = []
        while sum(len(r) for r in runs) < 300 + 40 * k:
            kind = rng.integers(3)
            lo, hi = [(0.0, 0.3), (0.55, 1.0), (0.3, 0.6)][kind]
            runs.append(rng.uniform(lo, hi, rng.integers(1, 90)))
        # Three decimals, made float32 as the test does (decimal -> float64 -> float32).
        probs = np.round(np.concatenate(runs), 3).astype(np.float32)
        n_samples = int((probs.shape[0] - 1) * 512 + rng.integers(0, 512))
        opts = option_sets[k % len(option_sets)]
        fw_vad.get_vad_model = lambda: FakeModel(probs)
        try:
            got = get_speech_timestamps(np.zeros(n_samples, np.float32), VadOptions(**opts))
        finally:
            fw_vad.get_vad_model = get_vad_model
        cases.append(dict(options=opts, n_samples=n_samples, probs=[round(float(p), 3) for p in probs],
                          chunks=[[c["start"], c["end"]] for c in got]))
    return cases


def json_options(opts):
    """VadOptions as JSON: an infinite max_speech_duration_s as null."""
    return {k: (None if v == float("inf") else v) for k, v in vars(opts).items()}


def entry(name, audio, n_probs, **extra):
    chunks = lambda **kw: [[c["start"], c["end"]] for c in get_speech_timestamps(audio, VadOptions(**kw))]
    short_silences = chunks(min_silence_duration_ms=500)
    return dict(
        name=name,
        n_samples=int(audio.shape[0]),
        crc32_f32le=crc32(audio),
        chunks_default=chunks(),
        chunks_min_silence_500=short_silences,
        original_times=original_times(short_silences),
        probs=[round(float(p), 6) for p in probs(audio, n_probs)],
        **extra,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--out", default="reference/vad/faster_whisper_1.2.1.json")
    p.add_argument("--utterances", type=int, default=10)
    p.add_argument("--probs", type=int, default=512, help="probabilities kept per file")
    args = p.parse_args()
    data = Path(args.data)
    files = []
    for rel in LONGFORM + CLIPS:
        print(rel, flush=True)
        # Probabilities only where our decoder gives the same samples (16 kHz mono FLAC).
        n = args.probs if rel in LONGFORM else 0
        files.append(entry(rel, decode_audio(str(data / rel)), n, path=rel))
    manifest = data / "librispeech/eval_quick_40.tsv"
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[: args.utterances]
    for row in rows:
        rel = f"librispeech/LibriSpeech/{row['path']}"
        files.append(entry(row["id"], decode_audio(str(data / rel)), args.probs, path=rel))
    inserts = synthetic_inserts()
    print("synthetic", flush=True)
    base = decode_audio(str(data / SYNTHETIC_BASE))
    files.append(
        entry("synthetic_silences", with_silences(base, inserts), args.probs,
              base=SYNTHETIC_BASE, inserts=[list(i) for i in inserts])
    )
    files.append(entry("silence_12min", np.zeros(12 * 60 * SR, np.float32), 0, silence_s=720))
    out = dict(
        faster_whisper=faster_whisper.__version__,
        model="silero_vad_v6.onnx",
        window=512,
        options={
            "default": json_options(VadOptions()),
            "min_silence_500": json_options(VadOptions(min_silence_duration_ms=500)),
        },
        files=files,
        probability_cases=probability_cases(),
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    main()
