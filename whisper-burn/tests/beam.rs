//! Beam search against faster-whisper 1.2.1 (CTranslate2, beam 5) on LibriSpeech, and
//! beam 1 against greedy decoding. Needs `weights/models/base` (`bash weights/fetch.sh`)
//! and the shared LibriSpeech clips.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use whisper_burn::audio::load_audio_file;
use whisper_burn::backend::CpuBackend;
use whisper_burn::decoding::beam::BeamSearchDecoder;
use whisper_burn::{DecodeOptions, GreedyDecoder, Pipeline};

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../weights/models/base");

fn shared(relative: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared")).join(relative)
}

/// Rows of a tab-separated file with a header, as column name -> value maps.
fn read_tsv(path: &Path) -> Vec<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split('\t')
        .map(String::from)
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split('\t').map(String::from))
                .collect()
        })
        .collect()
}

/// (id, samples) of the quick 40-utterance LibriSpeech set.
fn eval_quick_40() -> Vec<(String, Vec<f32>)> {
    let root = shared("data/librispeech/LibriSpeech");
    read_tsv(&shared("data/librispeech/eval_quick_40.tsv"))
        .into_iter()
        .map(|row| {
            let path = root.join(&row["path"]);
            let samples = load_audio_file(&path)
                .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
            (row["id"].clone(), samples)
        })
        .collect()
}

fn load_pipeline() -> Pipeline<CpuBackend> {
    assert!(
        Path::new(MODEL).join("model.bin").exists(),
        "model missing at {MODEL}: run `bash weights/fetch.sh`"
    );
    Pipeline::<CpuBackend>::load(MODEL, &Default::default()).expect("load base model")
}

fn english() -> DecodeOptions {
    DecodeOptions {
        language: Some("en".into()),
        ..Default::default()
    }
}

#[test]
fn beam5_matches_faster_whisper_on_eval_quick_40() {
    let pipeline = load_pipeline();
    let opts = english();
    let reference: HashMap<String, Vec<u32>> = read_tsv(&shared(
        "reference/faster-whisper-base-beam5.eval_quick_40.tsv",
    ))
    .into_iter()
    .map(|row| {
        let tokens = row["tokens"]
            .split_whitespace()
            .map(|t| t.parse().expect("token id"))
            .collect();
        (row["id"].clone(), tokens)
    })
    .collect();
    let utterances = eval_quick_40();
    assert_eq!(utterances.len(), 40);

    let mut decoder = BeamSearchDecoder {
        beam_size: 5,
        patience: 1.0,
        length_penalty: None,
    };
    let t0 = Instant::now();
    let mut transcripts = Vec::new();
    for chunk in utterances.chunks(8) {
        let audios: Vec<&[f32]> = chunk.iter().map(|(_, s)| s.as_slice()).collect();
        transcripts.extend(
            pipeline
                .transcribe_batch(&audios, &opts, &mut decoder)
                .expect("transcribe"),
        );
    }
    let elapsed = t0.elapsed().as_secs_f64();

    let mut matched = 0;
    for ((id, _), t) in utterances.iter().zip(&transcripts) {
        let want = reference
            .get(id)
            .unwrap_or_else(|| panic!("no reference for {id}"));
        if &t.tokens == want {
            matched += 1;
        } else {
            let first = t
                .tokens
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(t.tokens.len().min(want.len()));
            println!("DIFF {id} (first difference at token {first})");
            println!("  ours: {:?}\n        {}", t.tokens, t.text);
            let text = pipeline.tokenizer.decode(want).unwrap_or_default();
            println!("  ref:  {want:?}\n        {}", text.trim());
        }
    }
    println!(
        "beam 5: {matched}/40 identical to faster-whisper, {elapsed:.1} s for the 40 utterances"
    );
    assert!(
        matched >= 38,
        "only {matched}/40 token sequences identical to faster-whisper beam 5"
    );
}

#[test]
fn beam1_equals_greedy() {
    let pipeline = load_pipeline();
    let opts = english();
    let utterances = eval_quick_40();
    let mut beam1 = BeamSearchDecoder {
        beam_size: 1,
        patience: 1.0,
        length_penalty: None,
    };
    for (id, samples) in utterances.iter().take(4) {
        let greedy = pipeline
            .transcribe(samples, &opts, &mut GreedyDecoder)
            .expect("greedy");
        let beam = pipeline
            .transcribe(samples, &opts, &mut beam1)
            .expect("beam 1");
        assert!(!greedy.tokens.is_empty(), "{id}: empty greedy transcript");
        assert_eq!(
            beam.tokens, greedy.tokens,
            "{id}: beam 1 differs from greedy"
        );
        assert_eq!(beam.segments, greedy.segments, "{id}");
        assert_eq!(beam.main_passes, greedy.main_passes, "{id}: decoder passes");
    }
}
