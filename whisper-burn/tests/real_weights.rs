//! Real-weight checks against faster-whisper's token ids (`../shared/reference/`):
//! greedy `base` and `tiny.en` on eval_quick_40, English given, no timestamps.
//! Needs `bash weights/fetch.sh` (CI runs it first).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use whisper_burn::backend::CpuBackend;
use whisper_burn::{audio, DecodeOptions, GreedyDecoder, Pipeline};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared");

fn reference(name: &str) -> HashMap<String, Vec<u32>> {
    let text =
        std::fs::read_to_string(format!("{SHARED}/reference/{name}")).expect("reference tsv");
    text.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (
                c[0].to_string(),
                c[2].split_whitespace()
                    .map(|t| t.parse().unwrap())
                    .collect(),
            )
        })
        .collect()
}

fn manifest(name: &str) -> Vec<(String, PathBuf)> {
    let text =
        std::fs::read_to_string(format!("{SHARED}/data/librispeech/{name}")).expect("manifest");
    let root = Path::new(SHARED).join("data/librispeech/LibriSpeech");
    text.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[0].to_string(), root.join(c[1]))
        })
        .collect()
}

fn model_dir(name: &str) -> String {
    let dir = format!("{ROOT}/weights/models/{name}");
    assert!(
        Path::new(&dir).join("model.bin").is_file(),
        "{dir} missing: run `bash weights/fetch.sh`"
    );
    dir
}

/// Greedy tokens of every utterance of eval_quick_40, in batches of 8.
fn greedy_quick40(model: &str) -> Vec<(String, Vec<u32>)> {
    let p = Pipeline::<CpuBackend>::load(&model_dir(model), &Default::default()).expect("load");
    let opts = DecodeOptions {
        language: Some("en".into()),
        ..Default::default()
    };
    let items = manifest("eval_quick_40.tsv");
    let mut out = Vec::new();
    for chunk in items.chunks(8) {
        let audios: Vec<Vec<f32>> = chunk
            .iter()
            .map(|(_, p)| audio::load_audio_file(p).expect("audio"))
            .collect();
        let refs: Vec<&[f32]> = audios.iter().map(|a| a.as_slice()).collect();
        let ts = p
            .transcribe_batch(&refs, &opts, &mut GreedyDecoder)
            .expect("transcribe");
        out.extend(
            chunk
                .iter()
                .zip(ts)
                .map(|((id, _), t)| (id.clone(), t.tokens)),
        );
    }
    out
}

fn assert_matches(model: &str, reference_file: &str, min_identical: usize) {
    let want = reference(reference_file);
    let got = greedy_quick40(model);
    let mut identical = 0;
    for (id, tokens) in &got {
        if want[id] == *tokens {
            identical += 1;
        } else {
            eprintln!(
                "{model} {id}: differs\n  ref {:?}\n  got {:?}",
                want[id], tokens
            );
        }
    }
    eprintln!(
        "{model}: {identical}/{} identical to faster-whisper",
        got.len()
    );
    assert_eq!(got.len(), 40);
    assert!(
        identical >= min_identical,
        "{model}: only {identical}/40 identical"
    );
}

#[test]
fn base_greedy_matches_faster_whisper_on_quick40() {
    assert_matches("base", "faster-whisper-base-greedy.eval_200.tsv", 39);
}

#[test]
fn tiny_en_greedy_matches_faster_whisper_on_quick40() {
    assert_matches("tiny.en", "faster-whisper-tiny.en-greedy.eval_200.tsv", 39);
}

#[test]
fn jfk_transcript_and_language_detection() {
    let p = Pipeline::<CpuBackend>::load(&model_dir("base"), &Default::default()).expect("load");
    let samples =
        audio::load_audio_file(&Path::new(SHARED).join("data/clips/jfk.flac")).expect("jfk");
    let t = p
        .transcribe(&samples, &DecodeOptions::default(), &mut GreedyDecoder)
        .expect("transcribe");
    assert_eq!(t.language, "en");
    assert!(t.language_prob > 0.5, "language prob {}", t.language_prob);
    assert!(
        t.text.contains("ask not what your country can do for you"),
        "{}",
        t.text
    );
}

#[test]
fn long_form_with_timestamps_covers_the_whole_chapter() {
    let p = Pipeline::<CpuBackend>::load(&model_dir("tiny.en"), &Default::default()).expect("load");
    let samples = audio::load_audio_file(&Path::new(SHARED).join("data/longform/1089-134686.flac"))
        .expect("audio");
    let opts = DecodeOptions {
        language: Some("en".into()),
        timestamps: true,
        ..Default::default()
    };
    let t = p
        .transcribe(&samples, &opts, &mut GreedyDecoder)
        .expect("transcribe");
    assert!(
        t.windows >= 10,
        "a 276 s chapter needs at least 10 windows, got {}",
        t.windows
    );
    let last = t.segments.last().expect("segments");
    assert!(
        last.end_s > 250.0 && last.end_s < 290.0,
        "last segment ends at {}",
        last.end_s
    );
    assert!(
        t.segments.windows(2).all(|w| w[0].start_s <= w[1].start_s),
        "segments out of order"
    );
    let reference =
        std::fs::read_to_string(Path::new(SHARED).join("data/longform/1089-134686.txt"))
            .expect("ref");
    let ref_words = reference.split_whitespace().count() as f64;
    let got_words = t.text.split_whitespace().count() as f64;
    assert!(
        (got_words / ref_words - 1.0).abs() < 0.1,
        "{got_words} words vs {ref_words} in the reference"
    );
}
