"""One faster-whisper run for `whisper-bench benchmark --mode longform`: transcribes one
16 kHz WAV and prints {"wall_s", "text"} as JSON (model loading and audio decoding are
not timed). Greedy (beam 1, temperature 0, no fallback), language given, no VAD filter
in sequential mode; BatchedInferencePipeline with its defaults (VAD chunks, no
timestamps, no previous text) in batched mode.

    python3 scripts/longform_peer.py --model weights/models/base --audio a.wav \
        --mode batched --batch-size 8 --compute-type int8 --threads 2
"""

import argparse
import json
import time

from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--audio", required=True)
    p.add_argument("--mode", choices=["sequential", "batched"], required=True)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--compute-type", default="int8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--language", default="en")
    a = p.parse_args()
    model = WhisperModel(a.model, device="cpu", compute_type=a.compute_type, cpu_threads=a.threads)
    audio = decode_audio(a.audio)
    t0 = time.perf_counter()
    if a.mode == "sequential":
        segments, _ = model.transcribe(audio, language=a.language, beam_size=1, best_of=1,
                                       temperature=0.0, vad_filter=False)
    else:
        segments, _ = BatchedInferencePipeline(model).transcribe(
            audio, language=a.language, batch_size=a.batch_size, beam_size=1)
    text = "".join(s.text for s in segments)
    print(json.dumps(dict(wall_s=time.perf_counter() - t0, text=text.strip())))


if __name__ == "__main__":
    main()
