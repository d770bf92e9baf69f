//! Temperature sampling with and without speculation, on tiny random-weight models:
//! reproducible per seed, and speculative sampling gives plain sampling's tokens exactly.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use spec_engine::{DraftLength, DraftSpec, Engine, EngineConfig};
use whisper_burn::backend::CpuBackend;
use whisper_burn::testing::{synthetic_audio, write_hf_checkpoint, TinySpec};
use whisper_burn::{DecodeOptions, Pipeline};

type B = CpuBackend;

fn model(name: &str, spec: &TinySpec) -> Arc<Pipeline<B>> {
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sampling_random")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_hf_checkpoint(&dir, spec).unwrap();
    Arc::new(Pipeline::<B>::load(dir.to_str().unwrap(), &Default::default()).unwrap())
}

fn engine(main: &Arc<Pipeline<B>>, draft: DraftSpec, draft_length: DraftLength) -> Engine<B> {
    Engine::with_main(
        main.clone(),
        EngineConfig {
            draft,
            draft_length,
        },
        &Default::default(),
    )
    .unwrap()
}

fn options(temperature: f32, seed: u64, max_new_tokens: usize) -> DecodeOptions {
    DecodeOptions {
        max_new_tokens,
        language: Some("en".into()),
        no_speech_threshold: None,
        temperature,
        seed,
        ..Default::default()
    }
}

fn main_spec() -> TinySpec {
    TinySpec {
        seed: 31,
        encoder_layers: 1,
        ..Default::default()
    }
}

fn drafts(main: &TinySpec) -> Vec<(&'static str, DraftSpec)> {
    let other = TinySpec {
        seed: 77,
        decoder_layers: 1,
        ..main.clone()
    };
    let other_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sampling_random")
        .join("other_draft");
    let _ = std::fs::remove_dir_all(&other_dir);
    std::fs::create_dir_all(&other_dir).unwrap();
    write_hf_checkpoint(&other_dir, &other).unwrap();
    vec![
        (
            "self-q8, full vocabulary",
            DraftSpec::SelfQuantized {
                bits: 8,
                vocab: usize::MAX,
                margin_frames: None,
            },
        ),
        ("self-q4", "self-q4".parse().unwrap()),
        (
            "separate random model",
            DraftSpec::Model(other_dir.to_str().unwrap().to_string()),
        ),
    ]
}

#[test]
fn sampling_is_reproducible_and_depends_on_the_seed() {
    let main = model("main_repro", &main_spec());
    let audio = synthetic_audio(5, 2.5);
    for (name, draft) in [
        ("plain", DraftSpec::None),
        ("self-q8", "self-q8".parse().unwrap()),
    ] {
        let e = engine(&main, draft, DraftLength::default());
        let run = |seed| {
            e.transcribe(&audio, &options(1.0, seed, 30))
                .unwrap()
                .tokens
        };
        let (a, b) = (run(1), run(1));
        assert_eq!(a, b, "{name}: same seed, different tokens");
        assert!(!a.is_empty(), "{name}: nothing sampled");
        let others: Vec<Vec<u32>> = (2..6).map(run).collect();
        assert!(
            others.iter().any(|o| *o != a),
            "{name}: the seed changes nothing"
        );
    }
}

/// Draft and main model draw each position with the same uniform and a proposal is kept
/// only when it equals the main model's draw, so speculative sampling must give plain
/// sampling's tokens exactly, for any draft (close or unrelated), draft length, batch.
#[test]
fn speculative_sampling_equals_plain_sampling() {
    let spec = main_spec();
    let main = model("main_exact", &spec);
    let audio: Vec<Vec<f32>> = (0..5)
        .map(|i| synthetic_audio(40 + i, 1.0 + 0.7 * i as f32))
        .collect();
    let inputs: Vec<&[f32]> = audio.iter().map(|a| a.as_slice()).collect();
    let plain = engine(&main, DraftSpec::None, DraftLength::default());
    for temperature in [0.3f32, 1.0] {
        let opts = options(temperature, 17, 40);
        let reference: Vec<Vec<u32>> = plain
            .transcribe_batch(&inputs, &opts)
            .unwrap()
            .into_iter()
            .map(|t| t.tokens)
            .collect();
        let singles: Vec<Vec<u32>> = inputs
            .iter()
            .map(|a| plain.transcribe(a, &opts).unwrap().tokens)
            .collect();
        assert_eq!(
            reference, singles,
            "T={temperature}: plain sampling differs batched vs alone"
        );
        for (name, draft) in drafts(&spec) {
            for (policy, batch) in [
                (DraftLength::Fixed(1), 5),
                (DraftLength::Fixed(4), 2),
                (DraftLength::default(), 3),
            ] {
                let e = engine(&main, draft.clone(), policy.clone());
                let (mut drafted, mut accepted) = (0, 0);
                for (c, chunk) in inputs.chunks(batch).enumerate() {
                    for (i, t) in e.transcribe_batch(chunk, &opts).unwrap().iter().enumerate() {
                        assert_eq!(
                            t.tokens,
                            reference[c * batch + i],
                            "T={temperature}, {name}, {policy:?}, batch {batch}: clip {} differs",
                            c * batch + i
                        );
                        drafted += t.drafted;
                        accepted += t.accepted;
                    }
                }
                eprintln!(
                    "T={temperature}, {name}, {policy:?}: {accepted} of {drafted} proposals kept"
                );
                assert!(drafted > 0, "{name}: nothing drafted");
            }
        }
    }
}
