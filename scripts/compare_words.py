"""Word times of `whisper-bench transcribe --word-timestamps --json` output (JSON lines)
against a faster-whisper word reference (default: reference/faster-whisper-base-words.
eval_quick_40.jsonl): utterances whose words differ, then the mean, 95th percentile and
maximum absolute difference of word starts and ends, and the share within 5 ms.

    python3 scripts/compare_words.py ours.jsonl [reference.jsonl]
"""
import json
import sys


def words(segments, start="start", end="end"):
    return [w for s in segments for w in s.get("words", [])]


def main():
    ours_path = sys.argv[1]
    ref_path = sys.argv[2] if len(sys.argv) > 2 else "reference/faster-whisper-base-words.eval_quick_40.jsonl"
    ref = {}
    for line in open(ref_path):
        d = json.loads(line)
        ref[d["id"]] = words(d["segments"])
    diffs, mismatched, n = [], 0, 0
    for line in open(ours_path):
        d = json.loads(line)
        ours, want = words(d["segments"]), ref[d["id"]]
        if [w["word"] for w in ours] != [w["word"] for w in want]:
            mismatched += 1
            print("words differ:", d["id"])
            continue
        for a, b in zip(ours, want):
            n += 1
            diffs += [abs(a["start"] - b["start"]), abs(a["end"] - b["end"])]
    diffs.sort()
    if not diffs:
        sys.exit("no words compared")
    mean = sum(diffs) / len(diffs)
    p95 = diffs[min(len(diffs) - 1, len(diffs) * 95 // 100)]
    within = sum(x < 0.005 for x in diffs) / len(diffs)
    print(f"utterances with other words: {mismatched}; words compared: {n}")
    print(f"|start/end difference|: mean {mean*1000:.1f} ms, p95 {p95*1000:.1f} ms, "
          f"max {diffs[-1]*1000:.1f} ms, within 5 ms {within*100:.1f}%")


if __name__ == "__main__":
    main()
