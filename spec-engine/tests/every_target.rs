//! The speculative invariants on every implementation of the backend seam
//! (`whisper_burn::on_every_target!`): the host kernels, burn's generic ops on the CPU
//! backend, and with the `wgpu` feature the wgpu backend (Mesa's software Vulkan in CI).
//! On each: speculative == greedy token for token (model draft sharing the encoder,
//! model draft with its own encoder, fixed and adaptive lengths, batch 1 and 4), batch
//! == single, and at most one read-back of logits or decisions per decoder pass.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use spec_engine::{DraftLength, DraftSpec, Engine, EngineConfig};
use whisper_burn::backend::{Kernels, WhisperBackend};
use whisper_burn::decoding::transfers;
use whisper_burn::testing::{synthetic_audio, write_hf_checkpoint, Target, TinySpec};
use whisper_burn::{DecodeOptions, Pipeline, Transcript};

fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("every_target")
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

fn main_spec() -> TinySpec {
    TinySpec {
        seed: 7,
        encoder_layers: 1,
        ..Default::default()
    }
}

fn engine<B: WhisperBackend>(
    t: &Target<B>,
    main: &Arc<Pipeline<B>>,
    draft: DraftSpec,
    draft_length: DraftLength,
) -> spec_engine::Result<Engine<B>> {
    Engine::with_main(
        main.clone(),
        EngineConfig {
            draft,
            draft_length,
        },
        &t.device,
    )
}

fn options(timestamps: bool) -> DecodeOptions {
    DecodeOptions {
        max_new_tokens: 30,
        language: Some("en".into()),
        timestamps,
        no_speech_threshold: None,
        ..Default::default()
    }
}

fn clips() -> Vec<Vec<f32>> {
    (0..4u64)
        .map(|i| synthetic_audio(700 + i, 1.0 + 0.5 * i as f32))
        .collect()
}

fn all_tokens(t: &Transcript) -> Vec<u32> {
    t.segments
        .iter()
        .flat_map(|s| s.tokens.iter().copied())
        .collect()
}

fn speculative_equals_greedy<B: WhisperBackend>(t: &Target<B>) {
    let name = t.name();
    let spec = main_spec();
    let main = Arc::new(t.load(Path::new(&write_hf(&format!("main-{name}"), &spec))));
    let close = TinySpec {
        decoder_noise: Some((1007, 0.03)),
        ..spec.clone()
    };
    let other = TinySpec {
        seed: 507,
        decoder_layers: 1,
        ..spec.clone()
    };
    let drafts = [
        (
            "model draft sharing the encoder",
            write_hf(&format!("close-{name}"), &close),
        ),
        (
            "model draft with its own encoder",
            write_hf(&format!("other-{name}"), &other),
        ),
    ];
    let audio = clips();
    let all: Vec<&[f32]> = audio.iter().map(|a| a.as_slice()).collect();
    // On software Vulkan every configuration costs minutes: there, timestamps on (the
    // rules with most branches) and two policies, so CI stays within its time.
    let cpu = B::supports_host_kernels();
    let timestamp_cases: &[bool] = if cpu { &[false, true] } else { &[true] };
    let policies: Vec<DraftLength> = if cpu {
        vec![
            DraftLength::Fixed(1),
            DraftLength::Fixed(4),
            DraftLength::default(),
        ]
    } else {
        vec![DraftLength::Fixed(3), DraftLength::default()]
    };
    for &timestamps in timestamp_cases {
        let opts = options(timestamps);
        let greedy = engine(t, &main, DraftSpec::None, DraftLength::default()).unwrap();
        let reference: Vec<Vec<u32>> = greedy
            .transcribe_batch(&all, &opts)
            .unwrap()
            .iter()
            .map(all_tokens)
            .collect();
        assert!(
            reference.iter().all(|r| !r.is_empty()),
            "{name}: {reference:?}"
        );
        for (i, a) in all.iter().enumerate() {
            let alone = all_tokens(&greedy.transcribe(a, &opts).unwrap());
            assert_eq!(alone, reference[i], "{name}: clip {i} alone vs in a batch");
        }
        for (what, dir) in &drafts {
            let mut e = engine(
                t,
                &main,
                DraftSpec::Model(dir.clone()),
                DraftLength::default(),
            )
            .unwrap();
            let mut drafted = 0;
            for policy in policies.clone() {
                e.config.draft_length = policy.clone();
                for batch in [1usize, 4] {
                    let out = e.transcribe_batch(&all[..batch], &opts).unwrap();
                    for (i, tr) in out.iter().enumerate() {
                        assert_eq!(
                            all_tokens(tr),
                            reference[i],
                            "{name}, {what}, {policy:?}, batch {batch}, timestamps {timestamps}: clip {i}"
                        );
                        drafted += tr.drafted;
                    }
                }
            }
            assert!(drafted > 0, "{name}, {what}: nothing drafted");
        }
    }
    // Self-drafts run on the host kernels' CPU code: refused where that is not the
    // backend's memory, never a silent fall-back.
    let self_draft = engine(t, &main, "self-q8".parse().unwrap(), DraftLength::default());
    match (B::supports_host_kernels(), self_draft) {
        (true, Ok(e)) => {
            // It starts from the main model's cached prompt keys/values (host caches or
            // backend tensors) and still gives greedy's tokens.
            let opts = DecodeOptions {
                initial_prompt: Some("a previous text".into()),
                ..options(true)
            };
            let greedy = engine(t, &main, DraftSpec::None, DraftLength::default()).unwrap();
            let reference = greedy.transcribe_batch(&all, &opts).unwrap();
            let out = e.transcribe_batch(&all, &opts).unwrap();
            for (i, (a, b)) in reference.iter().zip(&out).enumerate() {
                assert_eq!(all_tokens(b), all_tokens(a), "{name}, self-q8: clip {i}");
            }
            assert!(out.iter().map(|t| t.drafted).sum::<usize>() > 0);
        }
        (true, Err(e)) => panic!("{name}: {e}"),
        (false, Ok(_)) => panic!("{name}: a self-draft was accepted on a GPU backend"),
        (false, Err(e)) => assert!(e.to_string().contains("model draft"), "{e}"),
    }
}

fn one_read_back_per_pass<B: WhisperBackend>(t: &Target<B>) {
    let name = t.name();
    let main = Arc::new(t.load(Path::new(&write_hf(&format!("reads-{name}"), &main_spec()))));
    let close = TinySpec {
        decoder_noise: Some((1007, 0.03)),
        ..main_spec()
    };
    let draft = DraftSpec::Model(write_hf(&format!("reads-close-{name}"), &close));
    let audio = clips();
    let all: Vec<&[f32]> = audio.iter().map(|a| a.as_slice()).collect();
    for (what, spec) in [("greedy", DraftSpec::None), ("model draft", draft)] {
        let e = engine(t, &main, spec, DraftLength::Fixed(3)).unwrap();
        transfers::reset();
        let out = e.transcribe_batch(&all, &options(true)).unwrap();
        let c = transfers::counts();
        let tokens: usize = out.iter().map(|t| t.tokens.len()).sum();
        eprintln!("{name}, {what}: {c:?} for {tokens} tokens");
        assert!(c.passes > 0 && tokens > 0);
        assert!(
            c.downloads <= c.passes,
            "{name}, {what}: {} read-backs for {} decoder passes",
            c.downloads,
            c.passes
        );
        if t.kernels == Kernels::Generic && what == "greedy" {
            // Prefill reads all rows back at once, so fewer reads than passes.
            assert!(c.downloads < c.passes, "{name}: {c:?}");
        }
    }
}

whisper_burn::on_every_target!(speculative_equals_greedy, one_read_back_per_pass);
