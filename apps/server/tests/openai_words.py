"""Asks a whisper-server for word timestamps through the official `openai` client, as a
user would; prints the verbose transcription as JSON. Run by tests/words.rs.

    python3 openai_words.py http://127.0.0.1:PORT AUDIO_FILE
"""

import json
import sys

from openai import OpenAI


def main():
    url, path = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=f"{url}/v1", api_key="unused")
    with open(path, "rb") as f:
        t = client.audio.transcriptions.create(
            model="whisper-1",
            file=f,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    words = [dict(word=w.word, start=w.start, end=w.end) for w in (t.words or [])]
    segments = [dict(start=s.start, end=s.end, text=s.text) for s in (t.segments or [])]
    print(json.dumps(dict(text=t.text, duration=t.duration, words=words, segments=segments)))


if __name__ == "__main__":
    main()
