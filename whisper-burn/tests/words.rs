//! Word timestamps against faster-whisper 1.2.1's `word_timestamps=True` on the same
//! CTranslate2 weights (`reference/`, made by `scripts/word_reference.py`): `base` on
//! eval_quick_40 utterances decoded in batches, and on the first 75 s of a long-form
//! chapter (several windows, each starting after the previous one's last word).
//! Needs `bash weights/fetch.sh` (CI runs it first).
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use whisper_burn::backend::CpuBackend;
use whisper_burn::{audio, DecodeOptions, GreedyDecoder, Pipeline, Segment};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared");

fn base() -> Pipeline<CpuBackend> {
    let dir = format!("{ROOT}/weights/models/base");
    assert!(
        Path::new(&dir).join("model.bin").is_file(),
        "{dir} missing: run `bash weights/fetch.sh`"
    );
    Pipeline::load(&dir, &Default::default()).expect("load base")
}

fn options() -> DecodeOptions {
    DecodeOptions {
        language: Some("en".into()),
        timestamps: true,
        word_timestamps: true,
        ..Default::default()
    }
}

/// id -> segments of a reference file.
fn reference(name: &str) -> HashMap<String, Vec<Value>> {
    std::fs::read_to_string(format!("{ROOT}/reference/{name}"))
        .expect("reference jsonl")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let segs = v["segments"].as_array().unwrap().clone();
            (v["id"].as_str().unwrap().to_string(), segs)
        })
        .collect()
}

/// Absolute start and end differences of every word; panics unless the words (text) are
/// the reference's.
fn word_diffs(id: &str, ours: &[Segment], want: &[Value]) -> Vec<f64> {
    let ours: Vec<_> = ours.iter().flat_map(|s| &s.words).collect();
    let want: Vec<&Value> = want
        .iter()
        .flat_map(|s| s["words"].as_array().unwrap())
        .collect();
    let texts = |w: &[String]| w.join("|");
    assert_eq!(
        texts(&ours.iter().map(|w| w.word.clone()).collect::<Vec<_>>()),
        texts(
            &want
                .iter()
                .map(|w| w["word"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        ),
        "{id}: words differ"
    );
    ours.iter()
        .zip(want)
        .flat_map(|(o, w)| {
            [
                (o.start_s as f64 - w["start"].as_f64().unwrap()).abs(),
                (o.end_s as f64 - w["end"].as_f64().unwrap()).abs(),
            ]
        })
        .collect()
}

fn summary(diffs: &mut [f64]) -> (f64, f64, f64) {
    diffs.sort_by(|a, b| a.total_cmp(b));
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let p95 = diffs[(diffs.len() * 95 / 100).min(diffs.len() - 1)];
    let within_10ms = diffs.iter().filter(|d| **d < 0.0105).count() as f64 / diffs.len() as f64;
    (mean, p95, within_10ms)
}

/// Segments with the reference's text and times (within 10 ms), and words within the
/// word-timing bounds (mean under 40 ms, 95% within 10 ms).
fn assert_segments_and_words_match(id: &str, segments: &[Segment], want: &[Value]) {
    assert_eq!(segments.len(), want.len(), "{id}: segment count");
    for (ours, w) in segments.iter().zip(want) {
        assert_eq!(ours.text, w["text"].as_str().unwrap());
        for (a, b) in [(ours.start_s, &w["start"]), (ours.end_s, &w["end"])] {
            assert!(
                (a as f64 - b.as_f64().unwrap()).abs() < 0.0105,
                "{ours:?} vs {w}"
            );
        }
    }
    let (mean, _, within) = summary(&mut word_diffs(id, segments, want));
    assert!(
        mean < 0.04 && within >= 0.95,
        "{id}: mean {mean}, within 10 ms {within}"
    );
}

#[test]
fn words_match_faster_whisper_on_eval_quick_40_in_batches() {
    let p = base();
    let want = reference("faster-whisper-base-words.eval_quick_40.jsonl");
    let manifest =
        std::fs::read_to_string(format!("{SHARED}/data/librispeech/eval_quick_40.tsv")).unwrap();
    let root = Path::new(SHARED).join("data/librispeech/LibriSpeech");
    // 12 utterances, 4 per batch: alignment runs once per batch over padded rows.
    let items: Vec<(String, Vec<f32>)> = manifest
        .lines()
        .skip(1)
        .step_by(3)
        .take(12)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (
                c[0].to_string(),
                audio::load_audio_file(&root.join(c[1])).unwrap(),
            )
        })
        .collect();
    let mut diffs = Vec::new();
    for chunk in items.chunks(4) {
        let refs: Vec<&[f32]> = chunk.iter().map(|(_, a)| a.as_slice()).collect();
        let ts = p
            .transcribe_batch(&refs, &options(), &mut GreedyDecoder)
            .unwrap();
        for ((id, _), t) in chunk.iter().zip(&ts) {
            diffs.extend(word_diffs(id, &t.segments, &want[id]));
        }
    }
    let (mean, p95, within) = summary(&mut diffs);
    eprintln!(
        "{} word times: mean |diff| {:.4} s, p95 {:.4} s, {:.1}% within 10 ms",
        diffs.len(),
        mean,
        p95,
        within * 100.0
    );
    assert!(diffs.len() > 300, "{} word times", diffs.len());
    assert!(
        mean < 0.04 && within >= 0.95,
        "mean {mean}, within 10 ms {within}"
    );
}

#[test]
fn longform_words_and_segments_match_faster_whisper() {
    let p = base();
    let want = reference("faster-whisper-base-words.1089-134686-75s.jsonl");
    let want = &want["1089-134686"];
    let audio =
        audio::load_audio_file(&Path::new(SHARED).join("data/longform/1089-134686.flac")).unwrap();
    let t = p
        .transcribe(&audio[..75 * 16_000], &options(), &mut GreedyDecoder)
        .unwrap();
    assert!(t.windows >= 3, "{} windows", t.windows);
    assert_segments_and_words_match("1089-134686", &t.segments, want);
}

/// `audio` with runs of zeros inserted: `(position_s, length_s)` in `audio`'s own time.
fn with_silences(audio: &[f32], inserts: &[(f32, f32)]) -> Vec<f32> {
    let mut out = audio.to_vec();
    let mut sorted = inserts.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (pos_s, len_s) in sorted {
        let pos = (pos_s * 16_000.0) as usize;
        let zeros = vec![0f32; (len_s * 16_000.0) as usize];
        out.splice(pos..pos, zeros);
    }
    out
}

#[test]
fn vad_filtered_words_and_segments_match_faster_whisper() {
    use whisper_burn::vad::{transcribe_speech, SileroVad, VadOptions, DEFAULT_MODEL_PATH};
    let p = base();
    let vad = SileroVad::load(format!("{ROOT}/{DEFAULT_MODEL_PATH}")).expect("silero vad");
    let want = reference("faster-whisper-base-vad-words.1089-134686-75s-silences.jsonl");
    let want = &want["1089-134686"];
    let chapter =
        audio::load_audio_file(&Path::new(SHARED).join("data/longform/1089-134686.flac")).unwrap();
    let audio = with_silences(&chapter[..75 * 16_000], &[(20.0, 8.0), (50.0, 12.0)]);
    let t = transcribe_speech(&vad, &VadOptions::default(), &[&audio], |speech| {
        p.transcribe_batch(speech, &options(), &mut GreedyDecoder)
    })
    .unwrap()
    .remove(0);
    assert!((t.audio_s - 95.0).abs() < 0.01, "{} s", t.audio_s);
    assert_segments_and_words_match("vad", &t.segments, want);
}
