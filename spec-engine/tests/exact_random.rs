//! Speculative decoding gives greedy's tokens exactly, on tiny random-weight models
//! (written by `whisper_burn::testing`, no downloads): several seeds, fixed draft lengths
//! 1 to 8 and the adaptive policy, batches of 1 to 8, self-drafts and model drafts.
//! Also: which drafts are refused as incompatible, and encoder sharing.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use spec_engine::model_draft::ModelDraft;
use spec_engine::{DraftLength, DraftSpec, Engine, EngineConfig, SpecError};
use whisper_burn::backend::CpuBackend;
use whisper_burn::testing::{synthetic_audio, write_ct2_checkpoint, write_hf_checkpoint, TinySpec};
use whisper_burn::weights::ct2::Ct2Dtype;
use whisper_burn::{DecodeOptions, Pipeline, Transcript};

type B = CpuBackend;

const CLIPS: usize = 8;

fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("exact_random")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_hf(name: &str, spec: &TinySpec) -> String {
    let dir = test_dir(name);
    write_hf_checkpoint(&dir, spec).unwrap();
    dir.to_str().unwrap().to_string()
}

fn load(dir: &str) -> Arc<Pipeline<B>> {
    Arc::new(Pipeline::<B>::load(dir, &Default::default()).unwrap())
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
    .unwrap_or_else(|e| panic!("engine: {e}"))
}

fn options() -> DecodeOptions {
    DecodeOptions {
        max_new_tokens: 40,
        language: Some("en".into()),
        no_speech_threshold: None,
        ..Default::default()
    }
}

/// Clips of 1 to 4.5 s, different per seed.
fn clips(seed: u64) -> Vec<Vec<f32>> {
    (0..CLIPS as u64)
        .map(|i| synthetic_audio(seed * 100 + i, 1.0 + 0.5 * i as f32))
        .collect()
}

fn policies() -> Vec<DraftLength> {
    let mut p: Vec<DraftLength> = (1..=8).map(DraftLength::Fixed).collect();
    p.push(DraftLength::default());
    p
}

/// Every generated token of a transcript, special and timestamp tokens included (the
/// transcript's `tokens` leave those out).
fn all_tokens(t: &Transcript) -> Vec<u32> {
    t.segments
        .iter()
        .flat_map(|s| s.tokens.iter().copied())
        .collect()
}

/// One draft to check against greedy.
struct DraftCase {
    name: &'static str,
    spec: DraftSpec,
    /// Must the main model accept a good share of its proposals?
    must_accept: bool,
    policies: Vec<DraftLength>,
}

/// The drafts to check for one main model.
fn drafts(seed: u64, main_spec: &TinySpec) -> Vec<DraftCase> {
    // Same encoder, decoder nudged: mostly agrees with the main model. In f32 the draft
    // shares the main encoder; in f16 its encoder differs by rounding and runs itself.
    let close = TinySpec {
        decoder_noise: Some((seed + 1000, 0.03)),
        ..main_spec.clone()
    };
    let close_f32 = write_hf(&format!("close_draft_{seed}"), &close);
    let close_f16 = test_dir(&format!("close_draft_f16_{seed}"));
    write_ct2_checkpoint(&close_f16, &close, Ct2Dtype::F16).unwrap();
    let close_f16 = close_f16.to_str().unwrap().to_string();
    // A separate random model (other seed, one decoder layer): rejects nearly everything.
    let other = TinySpec {
        seed: seed + 500,
        decoder_layers: 1,
        ..main_spec.clone()
    };
    let other_dir = write_hf(&format!("other_draft_{seed}"), &other);
    let all = policies();
    // Bounded work for the slow cases (a burn decoder step per proposal).
    let some = |n: usize| -> Vec<DraftLength> {
        all.iter()
            .skip(seed as usize % 3)
            .step_by(3)
            .take(n)
            .cloned()
            .collect()
    };
    vec![
        DraftCase {
            name: "self-q8",
            spec: "self-q8".parse().unwrap(),
            must_accept: false,
            policies: all.clone(),
        },
        DraftCase {
            name: "self-q4",
            spec: "self-q4".parse().unwrap(),
            must_accept: false,
            policies: all.clone(),
        },
        DraftCase {
            name: "self-q8, full vocabulary",
            spec: DraftSpec::SelfQuantized {
                bits: 8,
                vocab: usize::MAX,
                margin_frames: None,
            },
            must_accept: true,
            policies: all.clone(),
        },
        DraftCase {
            name: "model draft sharing the encoder",
            spec: DraftSpec::Model(close_f32),
            must_accept: true,
            policies: all.clone(),
        },
        DraftCase {
            name: "model draft with its own encoder",
            spec: DraftSpec::Model(close_f16),
            must_accept: true,
            policies: some(3),
        },
        DraftCase {
            name: "separate random model draft",
            spec: DraftSpec::Model(other_dir),
            must_accept: false,
            policies: vec![DraftLength::Fixed(2), DraftLength::default()],
        },
    ]
}

/// For one seed: every draft, its policies, batch sizes cycling over 1..=8 clips.
fn speculative_equals_greedy(seed: u64) {
    let t0 = Instant::now();
    // One encoder layer: the encoder is most of the time here and not what is tested.
    let spec = TinySpec {
        seed,
        encoder_layers: 1,
        ..Default::default()
    };
    let main = load(&write_hf(&format!("main_{seed}"), &spec));
    let audio = clips(seed);
    let all: Vec<&[f32]> = audio.iter().map(|a| a.as_slice()).collect();
    let opts = options();
    let greedy = engine(&main, DraftSpec::None, DraftLength::default());
    let greedy_out = greedy.transcribe_batch(&all, &opts).unwrap();
    let (enc, dec): (f64, f64) = greedy_out
        .iter()
        .fold((0.0, 0.0), |(e, d), t| (e + t.encode_s, d + t.decode_s));
    eprintln!("seed {seed}: greedy encode {enc:.2} s, decode {dec:.2} s for {CLIPS} clips");
    let reference: Vec<Vec<u32>> = greedy_out.iter().map(all_tokens).collect();
    let lengths: Vec<usize> = reference.iter().map(|r| r.len()).collect();
    eprintln!("seed {seed}: greedy lengths {lengths:?}");
    for (i, r) in reference.iter().enumerate() {
        assert!(!r.is_empty(), "seed {seed}: clip {i} decodes to nothing");
    }
    let distinct: std::collections::HashSet<_> = reference.iter().collect();
    assert!(
        distinct.len() >= CLIPS / 2,
        "seed {seed}: clips decode alike: {reference:?}"
    );
    let mut checked = 0;
    let mut runs = 0;
    for case in drafts(seed, &spec) {
        let (mut drafted, mut accepted) = (0, 0);
        let t = Instant::now();
        let name = case.name;
        // One engine per draft (loaded once), its policy changed between runs.
        let mut e = engine(&main, case.spec.clone(), DraftLength::default());
        for policy in case.policies {
            e.config.draft_length = policy.clone();
            let batch = 1 + (runs + seed as usize) % CLIPS;
            let start = (3 * runs + seed as usize) % CLIPS;
            runs += 1;
            let idx: Vec<usize> = (0..batch).map(|j| (start + j) % CLIPS).collect();
            let inputs: Vec<&[f32]> = idx.iter().map(|i| all[*i]).collect();
            let out = e.transcribe_batch(&inputs, &opts).unwrap();
            for (t, i) in out.iter().zip(&idx) {
                assert_eq!(
                    all_tokens(t), reference[*i],
                    "seed {seed}, draft {name}, {policy:?}, batch {batch}: clip {i} differs from greedy"
                );
                drafted += t.drafted;
                accepted += t.accepted;
                checked += 1;
            }
        }
        eprintln!(
            "seed {seed}, {name}: {accepted} of {drafted} proposals accepted, {:.1} s",
            t.elapsed().as_secs_f64()
        );
        assert!(drafted > 0, "seed {seed}, {name}: nothing was drafted");
        if case.must_accept {
            assert!(
                accepted * 3 > drafted,
                "seed {seed}, {name}: only {accepted} of {drafted} proposals accepted"
            );
        }
    }
    eprintln!(
        "seed {seed}: {checked} sequences in {runs} batches equal to greedy, {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn speculative_equals_greedy_seed_1() {
    speculative_equals_greedy(1);
}

#[test]
fn speculative_equals_greedy_seed_2() {
    speculative_equals_greedy(2);
}

#[test]
fn speculative_equals_greedy_seed_3() {
    speculative_equals_greedy(3);
}

/// With timestamps on, the logit rules depend on the generated tokens and the long-form
/// loop seeks by the last timestamp; speculative decoding must still match greedy.
#[test]
fn speculative_equals_greedy_with_timestamps() {
    let spec = TinySpec {
        seed: 4,
        ..Default::default()
    };
    let main = load(&write_hf("main_timestamps", &spec));
    let audio = clips(4);
    let inputs: Vec<&[f32]> = audio.iter().take(5).map(|a| a.as_slice()).collect();
    let opts = DecodeOptions {
        timestamps: true,
        ..options()
    };
    let reference = engine(&main, DraftSpec::None, DraftLength::default())
        .transcribe_batch(&inputs, &opts)
        .unwrap();
    let tb = main.tokenizer.special.timestamp_begin;
    let timestamps: usize = reference
        .iter()
        .map(|t| all_tokens(t).iter().filter(|x| **x >= tb).count())
        .sum();
    let windows: Vec<usize> = reference.iter().map(|t| t.windows).collect();
    eprintln!("timestamps: {timestamps} timestamp tokens, windows {windows:?}");
    assert!(
        timestamps > 0,
        "no timestamp tokens: the timestamp rules are not exercised"
    );
    for (draft, policy) in [
        (
            DraftSpec::SelfQuantized {
                bits: 8,
                vocab: usize::MAX,
                margin_frames: None,
            },
            DraftLength::Fixed(5),
        ),
        ("self-q4".parse().unwrap(), DraftLength::default()),
    ] {
        let out = engine(&main, draft.clone(), policy)
            .transcribe_batch(&inputs, &opts)
            .unwrap();
        for (i, (a, b)) in reference.iter().zip(&out).enumerate() {
            assert_eq!(a.tokens, b.tokens, "{draft}: clip {i} text tokens differ");
            let seg = |t: &whisper_burn::Transcript| {
                t.segments
                    .iter()
                    .map(|s| s.tokens.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(seg(a), seg(b), "{draft}: clip {i} segments differ");
        }
    }
}

fn incompatible(main: &Arc<Pipeline<B>>, draft_dir: String) -> (String, String) {
    match Engine::with_main(
        main.clone(),
        EngineConfig {
            draft: DraftSpec::Model(draft_dir),
            ..Default::default()
        },
        &Default::default(),
    ) {
        Err(e) => match &e {
            SpecError::Incompatible { reason, .. } => (reason.clone(), e.to_string()),
            other => panic!("expected an incompatibility, got {other}"),
        },
        Ok(_) => panic!("an incompatible draft was accepted"),
    }
}

#[test]
fn incompatible_drafts_are_refused() {
    let main = load(&write_hf(
        "incompat_main",
        &TinySpec {
            seed: 40,
            ..Default::default()
        },
    ));
    let mels = write_hf(
        "incompat_mels",
        &TinySpec {
            seed: 41,
            n_mels: 128,
            ..Default::default()
        },
    );
    let (reason, message) = incompatible(&main, mels);
    assert!(
        reason.contains("mel bins") && reason.contains("128") && reason.contains("80"),
        "{reason}"
    );
    assert!(message.contains("incompat_mels"), "{message}");
    let english = write_hf(
        "incompat_vocab",
        &TinySpec {
            seed: 42,
            vocab_size: 51864,
            ..Default::default()
        },
    );
    let (reason, _) = incompatible(&main, english);
    assert!(
        reason.contains("vocabularies") && reason.contains("51864") && reason.contains("51865"),
        "{reason}"
    );
}

#[test]
fn encoder_sharing_is_detected() {
    let spec = TinySpec {
        seed: 50,
        ..Default::default()
    };
    let main = load(&write_hf("share_main", &spec));
    let dev = Default::default();
    let same_encoder = [
        TinySpec {
            decoder_noise: Some((51, 0.2)),
            ..spec.clone()
        },
        TinySpec {
            decoder_layers: 1,
            decoder_noise: Some((52, 0.2)),
            ..spec.clone()
        },
    ];
    for (i, s) in same_encoder.iter().enumerate() {
        let draft = Pipeline::<B>::load(&write_hf(&format!("share_yes_{i}"), s), &dev).unwrap();
        assert!(
            ModelDraft::new(draft, &main).shares_encoder,
            "draft {i} has the main encoder"
        );
    }
    // Same encoder in the CTranslate2 layout (f32 values are identical).
    let dir = test_dir("share_yes_ct2");
    write_ct2_checkpoint(&dir, &same_encoder[0], Ct2Dtype::F32).unwrap();
    let draft = Pipeline::<B>::load(dir.to_str().unwrap(), &dev).unwrap();
    assert!(
        ModelDraft::new(draft, &main).shares_encoder,
        "f32 CTranslate2 copy of the encoder"
    );
    let different = [
        TinySpec {
            seed: 53,
            ..spec.clone()
        },
        TinySpec {
            encoder_layers: 1,
            ..spec.clone()
        },
        TinySpec {
            d_model: 32,
            ..spec.clone()
        },
    ];
    for (i, s) in different.iter().enumerate() {
        let draft = Pipeline::<B>::load(&write_hf(&format!("share_no_{i}"), s), &dev).unwrap();
        assert!(
            !ModelDraft::new(draft, &main).shares_encoder,
            "draft {i} has an encoder of its own"
        );
    }
}

/// Several windows per file (previous text as prompt, files of different lengths leaving
/// the batch at different rounds): still greedy's tokens.
#[test]
fn speculative_equals_greedy_long_form() {
    let spec = TinySpec {
        seed: 3,
        encoder_layers: 1,
        ..Default::default()
    };
    let main = load(&write_hf("main_long_form", &spec));
    let close = TinySpec {
        decoder_noise: Some((77, 0.03)),
        ..spec.clone()
    };
    let close_dir = write_hf("close_long_form", &close);
    let audio = [
        synthetic_audio(900, 65.0),
        synthetic_audio(901, 35.0),
        synthetic_audio(902, 8.0),
    ];
    let inputs: Vec<&[f32]> = audio.iter().map(|a| a.as_slice()).collect();
    let opts = DecodeOptions {
        max_new_tokens: 100,
        ..options()
    };
    let reference = engine(&main, DraftSpec::None, DraftLength::default())
        .transcribe_batch(&inputs, &opts)
        .unwrap();
    let windows: Vec<usize> = reference.iter().map(|t| t.windows).collect();
    eprintln!(
        "long form: windows {windows:?}, lengths {:?}",
        reference
            .iter()
            .map(|t| all_tokens(t).len())
            .collect::<Vec<_>>()
    );
    assert_eq!(windows, vec![3, 2, 1]);
    for (draft, policy) in [
        (
            DraftSpec::SelfQuantized {
                bits: 8,
                vocab: usize::MAX,
                margin_frames: None,
            },
            DraftLength::Fixed(6),
        ),
        (DraftSpec::Model(close_dir), DraftLength::default()),
    ] {
        let out = engine(&main, draft.clone(), policy)
            .transcribe_batch(&inputs, &opts)
            .unwrap();
        for (i, (a, b)) in reference.iter().zip(&out).enumerate() {
            assert_eq!(
                all_tokens(a),
                all_tokens(b),
                "{draft}: file {i} differs from greedy"
            );
            assert_eq!(a.windows, b.windows);
        }
    }
}

/// Token budgets of 1 to 3: rows finish on the first committed tokens (the batch can
/// empty right after prefill), with and without blank suppression.
#[test]
fn tiny_token_budgets() {
    let spec = TinySpec {
        seed: 1,
        encoder_layers: 1,
        ..Default::default()
    };
    let main = load(&write_hf("main_budgets", &spec));
    let audio = clips(7);
    let inputs: Vec<&[f32]> = audio.iter().take(4).map(|a| a.as_slice()).collect();
    let greedy = engine(&main, DraftSpec::None, DraftLength::default());
    let drafts = [
        engine(
            &main,
            DraftSpec::SelfQuantized {
                bits: 8,
                vocab: usize::MAX,
                margin_frames: None,
            },
            DraftLength::Fixed(4),
        ),
        engine(&main, "self-q4".parse().unwrap(), DraftLength::default()),
    ];
    for max_new_tokens in [1, 2, 3] {
        for suppress_blank in [true, false] {
            let opts = DecodeOptions {
                max_new_tokens,
                suppress_blank,
                ..options()
            };
            let reference: Vec<Vec<u32>> = greedy
                .transcribe_batch(&inputs, &opts)
                .unwrap()
                .iter()
                .map(all_tokens)
                .collect();
            for r in &reference {
                assert!(r.len() <= max_new_tokens);
            }
            for e in &drafts {
                let out: Vec<Vec<u32>> = e
                    .transcribe_batch(&inputs, &opts)
                    .unwrap()
                    .iter()
                    .map(all_tokens)
                    .collect();
                assert_eq!(
                    out,
                    reference,
                    "{}: budget {max_new_tokens}, suppress_blank {suppress_blank}",
                    e.draft_name()
                );
            }
        }
    }
}

/// A previous-text prompt of 223 tokens and a budget of 224: decoding runs into the
/// decoder's 448 positions, where drafts must be cut short.
#[test]
fn position_limit() {
    let spec = TinySpec {
        seed: 2,
        encoder_layers: 1,
        length_prior: false,
        ..Default::default()
    };
    let main = load(&write_hf("main_position_limit", &spec));
    let close_dir = write_hf(
        "close_position_limit",
        &TinySpec {
            decoder_noise: Some((78, 0.03)),
            ..spec.clone()
        },
    );
    let audio = clips(2);
    let inputs: Vec<&[f32]> = audio.iter().take(3).map(|a| a.as_slice()).collect();
    let words: Vec<String> = (0..300).map(|i| format!("w{}", 1000 + 37 * i)).collect();
    let opts = DecodeOptions {
        max_new_tokens: 224,
        initial_prompt: Some(words.join(" ")),
        ..options()
    };
    let reference: Vec<Vec<u32>> = engine(&main, DraftSpec::None, DraftLength::default())
        .transcribe_batch(&inputs, &opts)
        .unwrap()
        .iter()
        .map(all_tokens)
        .collect();
    let lengths: Vec<usize> = reference.iter().map(|r| r.len()).collect();
    eprintln!("position limit: lengths {lengths:?}");
    // <|startofprev|> + 223 previous tokens + 4 start tokens + generated tokens reach the
    // 448 positions.
    assert!(
        lengths.iter().any(|l| 228 + l >= 448),
        "no sequence reached the position limit: {lengths:?}"
    );
    for (draft, policy) in [
        (
            DraftSpec::SelfQuantized {
                bits: 8,
                vocab: usize::MAX,
                margin_frames: None,
            },
            DraftLength::Fixed(8),
        ),
        (
            DraftSpec::Model(close_dir),
            DraftLength::Adaptive {
                start: 8,
                min: 4,
                max: 16,
                min_confidence: 0.0,
            },
        ),
    ] {
        let out: Vec<Vec<u32>> = engine(&main, draft.clone(), policy)
            .transcribe_batch(&inputs, &opts)
            .unwrap()
            .iter()
            .map(all_tokens)
            .collect();
        assert_eq!(out, reference, "{draft}");
    }
}

/// Temperature fallback (faster-whisper's rule: a window that repeats or is unlikely is
/// decoded again at the next temperature, the best attempt kept) gives the same windows
/// and tokens with a draft as without: the fallback runs through the one rule whatever
/// the decoder, and each temperature's sampling is exact.
#[test]
fn speculative_equals_plain_with_temperature_fallback() {
    let spec = TinySpec {
        seed: 5,
        encoder_layers: 1,
        ..Default::default()
    };
    let main = load(&write_hf("main_fallback", &spec));
    let close = TinySpec {
        decoder_noise: Some((78, 0.03)),
        ..spec.clone()
    };
    let close_dir = write_hf("close_fallback", &close);
    let audio = [
        synthetic_audio(910, 40.0),
        synthetic_audio(911, 12.0),
        synthetic_audio(912, 3.0),
    ];
    let inputs: Vec<&[f32]> = audio.iter().map(|a| a.as_slice()).collect();
    let opts = DecodeOptions {
        max_new_tokens: 60,
        temperature_fallback: vec![0.2, 0.4, 0.6, 0.8, 1.0],
        seed: 7,
        ..options()
    };
    let reference = engine(&main, DraftSpec::None, DraftLength::default())
        .transcribe_batch(&inputs, &opts)
        .unwrap();
    let fallbacks: Vec<usize> = reference.iter().map(|t| t.fallbacks).collect();
    eprintln!("fallbacks per file {fallbacks:?}");
    assert!(
        fallbacks.iter().sum::<usize>() > 0,
        "random weights should fail the quality checks somewhere"
    );
    let no_fallback = engine(&main, DraftSpec::None, DraftLength::default())
        .transcribe_batch(
            &inputs,
            &DecodeOptions {
                temperature_fallback: Vec::new(),
                ..opts.clone()
            },
        )
        .unwrap();
    assert_ne!(
        reference.iter().map(all_tokens).collect::<Vec<_>>(),
        no_fallback.iter().map(all_tokens).collect::<Vec<_>>(),
        "the fallback changed nothing"
    );
    for (draft, policy) in [
        (
            DraftSpec::SelfQuantized {
                bits: 8,
                vocab: usize::MAX,
                margin_frames: None,
            },
            DraftLength::Fixed(4),
        ),
        (DraftSpec::Model(close_dir), DraftLength::default()),
    ] {
        let out = engine(&main, draft.clone(), policy)
            .transcribe_batch(&inputs, &opts)
            .unwrap();
        for (i, (a, b)) in reference.iter().zip(&out).enumerate() {
            assert_eq!(all_tokens(a), all_tokens(b), "{draft}: file {i} differs");
            assert_eq!(a.fallbacks, b.fallbacks, "{draft}: file {i}");
            assert_eq!(a.windows, b.windows);
        }
    }
}
