//! Core model and loader correctness on tiny random-weight models written by
//! `whisper_burn::testing` in both checkpoint layouts (no downloaded weights needed).
use std::path::{Path, PathBuf};
use std::time::Instant;

use whisper_burn::backend::{CpuBackend, Kernels, WhisperBackend};
use whisper_burn::decoding::greedy::{greedy_decode, host_rows, DecodeRequest};
use whisper_burn::decoding::LogitFilters;
use whisper_burn::testing::Target;
use whisper_burn::testing::{random_mel, write_ct2_checkpoint, write_hf_checkpoint, TinySpec};
use whisper_burn::weights::ct2::Ct2Dtype;
use whisper_burn::weights::safetensors::write_safetensors;
use whisper_burn::weights::HostTensor;
use whisper_burn::{DecoderState, Pipeline, Task, WhisperError};

type B = CpuBackend;

/// A fresh directory for one test under cargo's per-target temporary directory.
fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("model_random")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn load(dir: &Path) -> Pipeline<B> {
    host().load(dir)
}

/// The CPU backend in its default (host) kernels.
fn host() -> Target<B> {
    Target::new(Kernels::Host)
}

fn hf_model<B: WhisperBackend>(name: &str, spec: &TinySpec, t: &Target<B>) -> Pipeline<B> {
    let dir = test_dir(&format!("{name}-{}", t.name()));
    write_hf_checkpoint(&dir, spec).unwrap();
    t.load(&dir)
}

/// The English transcription prompt plus a few text tokens.
fn prompt<B: WhisperBackend>(p: &Pipeline<B>, extra: &[u32]) -> Vec<u32> {
    let mut t = p
        .tokenizer
        .sot_sequence(Some("en"), Task::Transcribe)
        .unwrap();
    t.push(p.tokenizer.special.no_timestamps);
    t.extend_from_slice(extra);
    t
}

fn state_for<B: WhisperBackend>(p: &Pipeline<B>, mels: &[Vec<f32>]) -> DecoderState<B> {
    p.model.decoder.new_state(p.model.encode(mels).unwrap())
}

/// Logits of every fed position (`[b * t][vocab]`).
fn step<B: WhisperBackend>(
    p: &Pipeline<B>,
    tokens: &[Vec<u32>],
    state: &mut DecoderState<B>,
) -> Vec<Vec<f32>> {
    host_rows(
        p.model
            .decoder
            .logits(p.model.decoder.forward(tokens, state).unwrap()),
    )
    .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: position counts differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let d = max_diff(x, y);
        assert!(
            d <= tol,
            "{what}: position {i} differs by {d} (tolerance {tol})"
        );
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |best, (i, x)| if *x > v[best] { i } else { best })
}

#[test]
fn tokenizer_special_ids_match_whisper() {
    for (vocab, eot, nocaptions) in [
        (51865u32, 50257u32, "<|nocaptions|>"),
        (51864, 50256, "<|nocaptions|>"),
        (51866, 50257, "<|nospeech|>"),
    ] {
        let spec = TinySpec {
            vocab_size: vocab as usize,
            ..Default::default()
        };
        let dir = test_dir(&format!("tokenizer_{vocab}"));
        write_hf_checkpoint(&dir, &spec).unwrap();
        let tok =
            whisper_burn::WhisperTokenizer::from_file(&dir.join("tokenizer.json"), vocab >= 51865)
                .unwrap();
        let s = &tok.special;
        let n_lang = if vocab >= 51866 { 100 } else { 99 };
        assert_eq!(s.eot, eot);
        assert_eq!(s.sot, eot + 1);
        assert_eq!(tok.language_token("en"), Some(eot + 2));
        assert_eq!(s.languages.len(), n_lang as usize);
        assert_eq!(s.translate, Some(eot + 2 + n_lang));
        assert_eq!(s.transcribe, Some(eot + 3 + n_lang));
        assert_eq!(s.sot_lm, Some(eot + 4 + n_lang));
        assert_eq!(s.sot_prev, eot + 5 + n_lang);
        assert_eq!(s.no_speech, Some(eot + 6 + n_lang));
        assert_eq!(tok.token_id(nocaptions), s.no_speech);
        assert_eq!(s.no_timestamps, eot + 7 + n_lang);
        assert_eq!(s.timestamp_begin, s.no_timestamps + 1);
        // 1501 timestamps (0.00 to 30.00) fill the rest of the vocabulary.
        assert_eq!(s.timestamp_begin + 1501, vocab);
        assert_eq!(
            tok.decode(&[5, 7, eot, s.timestamp_begin]).unwrap(),
            "w5 w7"
        );
    }
}

#[test]
fn hf_and_ct2_layouts_load_the_same_model() {
    let spec = TinySpec {
        seed: 11,
        ..Default::default()
    };
    let hf_dir = test_dir("layouts_hf");
    write_hf_checkpoint(&hf_dir, &spec).unwrap();
    let hf = load(&hf_dir);
    assert_eq!(hf.config(), &spec.config());
    let mel = vec![random_mel(3, spec.n_mels)];
    let p = prompt(&hf, &[100, 2000, 30000]);
    let reference = step(&hf, std::slice::from_ref(&p), &mut state_for(&hf, &mel));
    let scale = reference.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    // (dtype, tolerance relative to the largest logit)
    for (dtype, rel_tol) in [
        (Ct2Dtype::F32, 1e-6),
        (Ct2Dtype::F16, 5e-3),
        (Ct2Dtype::BF16, 5e-2),
        (Ct2Dtype::I8, 8e-2),
    ] {
        let dir = test_dir(&format!("layouts_ct2_{dtype:?}"));
        write_ct2_checkpoint(&dir, &spec, dtype).unwrap();
        let ct2 = load(&dir);
        assert_eq!(ct2.config(), hf.config(), "{dtype:?} config");
        assert_eq!(
            ct2.model.generation, hf.model.generation,
            "{dtype:?} suppression lists"
        );
        assert_eq!(ct2.tokenizer.special, hf.tokenizer.special);
        let logits = step(&ct2, std::slice::from_ref(&p), &mut state_for(&ct2, &mel));
        let worst = reference
            .iter()
            .zip(&logits)
            .map(|(a, b)| max_diff(a, b))
            .fold(0.0, f32::max);
        eprintln!("{dtype:?}: largest logit {scale:.3}, largest difference {worst:.2e}");
        assert!(
            worst <= rel_tol * scale.max(1.0),
            "{dtype:?}: logits differ by {worst} (largest logit {scale})"
        );
        if dtype == Ct2Dtype::F32 {
            assert!(
                worst <= 1e-5,
                "f32 CTranslate2 and Hugging Face logits differ by {worst}"
            );
        }
        if dtype == Ct2Dtype::F16 {
            let same = reference
                .iter()
                .zip(&logits)
                .filter(|(a, b)| argmax(a) == argmax(b))
                .count();
            assert!(
                same + 1 >= reference.len(),
                "f16 changes the greedy token at {} positions",
                reference.len() - same
            );
        }
    }
}

fn random_model_tokens_vary_with_audio_and_position<B: WhisperBackend>(t: &Target<B>) {
    let spec = TinySpec {
        seed: 5,
        ..Default::default()
    };
    let p = hf_model("vary", &spec, t);
    let results = greedy(
        &p,
        &[random_mel(1, 80), random_mel(2, 80), random_mel(3, 80)],
        30,
    );
    for r in &results {
        let distinct: std::collections::HashSet<_> = r.iter().collect();
        assert!(
            distinct.len() >= 5,
            "random model loops on too few tokens: {r:?}"
        );
    }
    eprintln!("{results:?}");
    // The audio decides from the first tokens on, not only after a long shared prefix.
    for a in 0..3 {
        for b in a + 1..3 {
            let shared = results[a]
                .iter()
                .zip(&results[b])
                .take_while(|(x, y)| x == y)
                .count();
            assert!(
                shared < 5,
                "rows {a} and {b} share {shared} leading tokens: {results:?}"
            );
        }
    }
}

fn kv_cache_step_by_step_equals_whole_sequence<B: WhisperBackend>(t: &Target<B>) {
    let p = hf_model(
        "kv_cache",
        &TinySpec {
            seed: 21,
            ..Default::default()
        },
        t,
    );
    let mel = vec![random_mel(7, 80)];
    let seq = prompt(&p, &[17, 4242, 999, 31000, 5, 50000, 123, 7777]);
    let whole = step(&p, std::slice::from_ref(&seq), &mut state_for(&p, &mel));
    let mut state = state_for(&p, &mel);
    let mut one_by_one = Vec::new();
    for t in &seq {
        one_by_one.extend(step(&p, &[vec![*t]], &mut state));
    }
    assert_eq!(state.len(0), seq.len());
    assert_close(
        &whole,
        &one_by_one,
        1e-4,
        "whole sequence vs token by token",
    );
    // Mixed chunk sizes too.
    let mut state = state_for(&p, &mel);
    let mut chunked = Vec::new();
    for chunk in seq.chunks(3) {
        chunked.extend(step(&p, &[chunk.to_vec()], &mut state));
    }
    assert_close(&whole, &chunked, 1e-4, "whole sequence vs chunks of 3");
}

fn truncate_then_reappend_equals_fresh_run<B: WhisperBackend>(t: &Target<B>) {
    let p = hf_model(
        "truncate",
        &TinySpec {
            seed: 22,
            ..Default::default()
        },
        t,
    );
    let mel = vec![random_mel(8, 80)];
    let first = prompt(&p, &[10, 20, 30, 40, 50, 60]);
    let keep = first.len() - 4;
    let tail = vec![700u32, 800, 900];
    let mut state = state_for(&p, &mel);
    step(&p, std::slice::from_ref(&first), &mut state);
    state.truncate(0, keep);
    assert_eq!(state.len(0), keep);
    let mut after = step(&p, &[tail[..1].to_vec()], &mut state);
    after.extend(step(&p, &[tail[1..].to_vec()], &mut state));
    let mut fresh_seq = first[..keep].to_vec();
    fresh_seq.extend_from_slice(&tail);
    let fresh = step(&p, &[fresh_seq], &mut state_for(&p, &mel));
    assert_close(
        &after,
        &fresh[keep..],
        1e-4,
        "re-appended after truncate vs fresh",
    );
    // truncate_all rolls every row back.
    let mut state = state_for(&p, &mel);
    step(&p, std::slice::from_ref(&first), &mut state);
    state.truncate_all(keep);
    let again = step(&p, std::slice::from_ref(&tail), &mut state);
    assert_close(&again, &fresh[keep..], 1e-4, "after truncate_all vs fresh");
}

/// Greedy tokens of each mel window decoded together in one batch.
fn greedy<B: WhisperBackend>(
    p: &Pipeline<B>,
    mels: &[Vec<f32>],
    max_new_tokens: usize,
) -> Vec<Vec<u32>> {
    let g = &p.model.generation;
    let filters = LogitFilters::new(
        &p.tokenizer,
        &g.suppress_tokens,
        &g.begin_suppress_tokens,
        true,
        false,
        p.config().vocab_size,
    );
    let req = DecodeRequest {
        filters: &filters,
        prompts: vec![prompt(p, &[]); mels.len()],
        sot_index: vec![0; mels.len()],
        eot: p.tokenizer.special.eot,
        no_speech: p.tokenizer.special.no_speech,
        max_new_tokens,
        mel_windows: mels,
        audio_mel_frames: vec![3000; mels.len()],
        sampling: None,
        window_start_frames: vec![0; mels.len()],
    };
    greedy_decode(&p.model, p.model.encode(mels).unwrap(), &req)
        .unwrap()
        .into_iter()
        .map(|r| r.tokens)
        .collect()
}

fn batch_rows_decode_like_single_rows<B: WhisperBackend>(t: &Target<B>) {
    let p = hf_model(
        "batch_rows",
        &TinySpec {
            seed: 23,
            ..Default::default()
        },
        t,
    );
    let mels: Vec<Vec<f32>> = (0..3).map(|s| random_mel(100 + s, 80)).collect();
    let batched = greedy(&p, &mels, 40);
    for (i, mel) in mels.iter().enumerate() {
        let alone = greedy(&p, std::slice::from_ref(mel), 40).remove(0);
        assert_eq!(batched[i], alone, "row {i} decodes differently in a batch");
    }
}

fn select_rows_reorders_and_repeats_rows<B: WhisperBackend>(t: &Target<B>) {
    let p = hf_model(
        "select_rows",
        &TinySpec {
            seed: 24,
            ..Default::default()
        },
        t,
    );
    let mels: Vec<Vec<f32>> = (0..3).map(|s| random_mel(200 + s, 80)).collect();
    let mut state = state_for(&p, &mels);
    let prompts: Vec<Vec<u32>> = (0..3).map(|r| prompt(&p, &[100 + r, 200 + r])).collect();
    step(&p, &prompts, &mut state);
    let next: Vec<Vec<u32>> = (0..3).map(|r| vec![3000 + r]).collect();
    let reference = step(&p, &next, &mut state.clone());
    let order = [2usize, 0, 0, 1];
    let mut selected = state.clone();
    selected.select_rows(&order);
    assert_eq!(selected.batch_size(), 4);
    let tokens: Vec<Vec<u32>> = order.iter().map(|r| next[*r].clone()).collect();
    let logits = step(&p, &tokens, &mut selected);
    for (slot, r) in order.iter().enumerate() {
        assert!(
            max_diff(&logits[slot], &reference[*r]) <= 1e-4,
            "slot {slot} is not row {r}"
        );
    }
    // `row` splits one row off.
    let single = step(&p, &[next[1].clone()], &mut state.row(1));
    assert!(max_diff(&single[0], &reference[1]) <= 1e-4);
}

fn ragged_rows_match_rows_alone<B: WhisperBackend>(t: &Target<B>) {
    let p = hf_model(
        "ragged",
        &TinySpec {
            seed: 25,
            ..Default::default()
        },
        t,
    );
    let mels: Vec<Vec<f32>> = (0..3).map(|s| random_mel(300 + s, 80)).collect();
    let prompts: Vec<Vec<u32>> = vec![
        prompt(&p, &[]),
        prompt(&p, &[1, 2, 3, 4, 5]),
        prompt(&p, &[9, 8]),
    ];
    let new: Vec<Vec<u32>> = vec![vec![11, 12, 13], vec![21, 22, 23], vec![31, 32, 33]];
    // One state per row, prefilled separately, then joined: rows of different lengths.
    let mut batch: Option<DecoderState<B>> = None;
    let mut alone = Vec::new();
    for r in 0..3 {
        let mut s = state_for(&p, &mels[r..r + 1]);
        step(&p, &[prompts[r].clone()], &mut s);
        let mut solo = s.clone();
        alone.push(step(&p, &[new[r].clone()], &mut solo));
        match &mut batch {
            None => batch = Some(s),
            Some(b) => b.append(s),
        }
    }
    let mut batch = batch.unwrap();
    assert_eq!(
        batch.lens,
        prompts.iter().map(|p| p.len()).collect::<Vec<_>>()
    );
    let logits = step(&p, &new, &mut batch);
    for r in 0..3 {
        assert_close(
            &logits[r * 3..(r + 1) * 3],
            &alone[r],
            1e-4,
            &format!("ragged row {r}"),
        );
    }
    // A second ragged step after rolling one row back.
    batch.truncate(1, prompts[1].len() + 1);
    let more: Vec<Vec<u32>> = vec![vec![41, 42], vec![51, 52], vec![61, 62]];
    let logits = step(&p, &more, &mut batch);
    let mut s = state_for(&p, &mels[1..2]);
    let mut seq = prompts[1].clone();
    seq.push(new[1][0]);
    seq.extend_from_slice(&more[1]);
    let fresh = step(&p, &[seq.clone()], &mut s);
    assert_close(
        &logits[2..4],
        &fresh[seq.len() - 2..],
        1e-4,
        "rolled-back ragged row",
    );
}

fn later_tokens_do_not_change_earlier_logits<B: WhisperBackend>(t: &Target<B>) {
    let p = hf_model(
        "causal",
        &TinySpec {
            seed: 26,
            ..Default::default()
        },
        t,
    );
    let mel = vec![random_mel(9, 80)];
    let a = prompt(&p, &[5, 6, 7, 8, 9]);
    let mut b = a.clone();
    *b.last_mut().unwrap() = 40000;
    b[a.len() - 2] = 123;
    let la = step(&p, std::slice::from_ref(&a), &mut state_for(&p, &mel));
    let lb = step(&p, std::slice::from_ref(&b), &mut state_for(&p, &mel));
    let n = a.len() - 2;
    assert_close(&la[..n], &lb[..n], 1e-6, "positions before the change");
    assert!(
        max_diff(&la[n], &lb[n]) > 1e-3,
        "a changed token must change its own logits"
    );
    // Two rows at once: padding one row with different tokens does not leak into the other.
    let lab = step(
        &p,
        &[a.clone(), b.clone()],
        &mut state_for(&p, &[mel[0].clone(), mel[0].clone()]),
    );
    assert_close(&lab[..a.len()], &la, 1e-4, "row 0 beside another row");
    assert_close(&lab[a.len()..], &lb, 1e-4, "row 1 beside another row");
}

/// The alignment heads' captured scores are `q·k / sqrt(dh)` of those heads, the same on
/// every target as on the host kernels, and capturing changes nothing else.
fn captured_cross_attention_matches_the_host<B: WhisperBackend>(t: &Target<B>) {
    let spec = TinySpec {
        seed: 31,
        ..Default::default()
    };
    let p = hf_model("capture", &spec, t);
    let reference = hf_model("capture-ref", &spec, &host());
    let mels = vec![random_mel(3, 80), random_mel(4, 80)];
    let toks = vec![prompt(&p, &[11, 12, 13]), prompt(&p, &[21, 22, 23])];
    let heads = [(0, 1), (1, 0)];
    let run = |p: &Pipeline<B>| {
        let mut state = state_for(p, &mels);
        p.model
            .decoder
            .forward_capturing(&toks, &mut state, &heads)
            .unwrap()
    };
    let (hidden, scores) = run(&p);
    let mut plain_state = state_for(&p, &mels);
    let plain = p.model.decoder.forward(&toks, &mut plain_state).unwrap();
    assert_eq!(
        hidden.into_data().to_vec::<f32>().unwrap(),
        plain.into_data().to_vec::<f32>().unwrap(),
        "capturing changed the hidden states"
    );
    let mut ref_state = state_for(&reference, &mels);
    let (_, want) = reference
        .model
        .decoder
        .forward_capturing(&toks, &mut ref_state, &heads)
        .unwrap();
    assert_eq!(scores.len(), heads.len());
    for (got, want) in scores.iter().zip(&want) {
        // [rows][tokens][frames]: 2 rows of 6 tokens over 1500 frames.
        assert_eq!(got.len(), 2 * toks[0].len() * 1500);
        assert!(
            max_diff(got, want) < 1e-3,
            "scores differ by {}",
            max_diff(got, want)
        );
    }
    assert!(
        max_diff(&scores[0], &scores[1]) > 1e-3,
        "two heads gave the same scores"
    );
    let mut state = state_for(&p, &mels);
    let err = p
        .model
        .decoder
        .forward_capturing(&toks, &mut state, &[(99, 0)])
        .unwrap_err();
    assert!(err.to_string().contains("alignment head"), "{err}");
}

fn load_err(dir: &Path) -> WhisperError {
    match Pipeline::<B>::load(dir.to_str().unwrap(), &Default::default()) {
        Ok(_) => panic!("{} loaded, expected an error", dir.display()),
        Err(e) => e,
    }
}

fn expect_weights_error(e: WhisperError, needle: &str) {
    match e {
        WhisperError::Weights(msg) => assert!(
            msg.contains(needle),
            "message `{msg}` does not mention `{needle}`"
        ),
        other => panic!("expected a weights error mentioning `{needle}`, got {other:?}"),
    }
}

#[test]
fn broken_checkpoints_give_weight_errors() {
    let spec = TinySpec {
        seed: 30,
        encoder_layers: 1,
        decoder_layers: 1,
        ..Default::default()
    };
    // Missing tensor.
    let dir = test_dir("broken_missing");
    write_hf_checkpoint(&dir, &spec).unwrap();
    let mut tensors = spec.hf_tensors();
    tensors.retain(|(n, _)| n != "model.decoder.layers.0.fc2.weight");
    write_safetensors(&dir.join("model.safetensors"), &tensors).unwrap();
    expect_weights_error(load_err(&dir), "model.decoder.layers.0.fc2.weight");
    // Wrong shape.
    let dir = test_dir("broken_shape");
    write_hf_checkpoint(&dir, &spec).unwrap();
    let mut tensors = spec.hf_tensors();
    for (n, t) in tensors.iter_mut() {
        if n == "model.encoder.layers.0.self_attn.v_proj.weight" {
            *t = HostTensor::new(vec![32, 64], t.data[..32 * 64].to_vec());
        }
    }
    write_safetensors(&dir.join("model.safetensors"), &tensors).unwrap();
    expect_weights_error(load_err(&dir), "v_proj.weight");
    // Not a safetensors file at all.
    let dir = test_dir("broken_safetensors");
    write_hf_checkpoint(&dir, &spec).unwrap();
    std::fs::write(
        dir.join("model.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json",
    )
    .unwrap();
    expect_weights_error(load_err(&dir), "model.safetensors");
    // Truncated model.bin, cut at several places.
    let dir = test_dir("broken_truncated");
    write_ct2_checkpoint(&dir, &spec, Ct2Dtype::F16).unwrap();
    let bytes = std::fs::read(dir.join("model.bin")).unwrap();
    for cut in [3, 10, 40, bytes.len() / 2, bytes.len() - 3] {
        std::fs::write(dir.join("model.bin"), &bytes[..cut]).unwrap();
        expect_weights_error(load_err(&dir), "truncated");
    }
    // Another spec in model.bin.
    let mut other = bytes.clone();
    let at = other.windows(11).position(|w| w == b"WhisperSpec").unwrap();
    other[at..at + 11].copy_from_slice(b"BartSpec\0\0\0");
    other[at - 2..at].copy_from_slice(&9u16.to_le_bytes());
    other.drain(at + 9..at + 12);
    std::fs::write(dir.join("model.bin"), &other).unwrap();
    expect_weights_error(load_err(&dir), "BartSpec");
    // A variable missing from model.bin.
    let dir = test_dir("broken_ct2_missing");
    let (mut vars, aliases) = whisper_burn::testing::ct2_variables(&spec, Ct2Dtype::F32).unwrap();
    vars.retain(|v| v.name != "decoder/layer_0/attention/linear_1/weight");
    write_ct2_checkpoint(&dir, &spec, Ct2Dtype::F32).unwrap();
    whisper_burn::weights::ct2::write_model_bin(&dir.join("model.bin"), &vars, &aliases).unwrap();
    expect_weights_error(load_err(&dir), "decoder/layer_0/attention/linear_1/weight");
    // An int8 weight without its scale.
    let dir = test_dir("broken_ct2_scale");
    let (mut vars, aliases) = whisper_burn::testing::ct2_variables(&spec, Ct2Dtype::I8).unwrap();
    vars.retain(|v| v.name != "encoder/layer_0/ffn/linear_0/weight_scale");
    write_ct2_checkpoint(&dir, &spec, Ct2Dtype::I8).unwrap();
    whisper_burn::weights::ct2::write_model_bin(&dir.join("model.bin"), &vars, &aliases).unwrap();
    expect_weights_error(load_err(&dir), "weight_scale");
}

/// One test owns the process environment (HF_HOME, HF_HUB_OFFLINE): no other test here
/// reads it.
#[test]
fn hub_ids_resolve_through_the_offline_cache() {
    let home = test_dir("hf_home");
    std::env::set_var("HF_HOME", &home);
    std::env::set_var("HF_HUB_OFFLINE", "1");
    match Pipeline::<B>::load("org/not-cached", &Default::default()) {
        Err(WhisperError::Hub(msg)) => assert!(msg.contains("org/not-cached"), "{msg}"),
        Err(other) => panic!("expected a hub error, got {other}"),
        Ok(_) => panic!("an uncached hub id loaded offline"),
    }
    let spec = TinySpec {
        seed: 31,
        ..Default::default()
    };
    let rev = "0123456789abcdef0123456789abcdef01234567";
    let repo = home.join("hub").join("models--org--tiny-random");
    let snapshot = repo.join("snapshots").join(rev);
    write_hf_checkpoint(&snapshot, &spec).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs").join("main"), rev).unwrap();
    let t = Instant::now();
    let from_hub = Pipeline::<B>::load("org/tiny-random", &Default::default()).unwrap();
    eprintln!(
        "loaded from the hub cache in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(from_hub.name, "org/tiny-random");
    assert_eq!(from_hub.config(), &spec.config());
    let local = load(&snapshot);
    let mel = vec![random_mel(4, 80)];
    let p = prompt(&local, &[1, 2, 3]);
    let a = step(
        &from_hub,
        std::slice::from_ref(&p),
        &mut state_for(&from_hub, &mel),
    );
    let b = step(
        &local,
        std::slice::from_ref(&p),
        &mut state_for(&local, &mel),
    );
    assert_close(&a, &b, 0.0, "hub snapshot vs directory");
    // A snapshot without model.safetensors is not a cached model.
    std::fs::remove_file(snapshot.join("model.safetensors")).unwrap();
    assert!(matches!(
        Pipeline::<B>::load("org/tiny-random", &Default::default()),
        Err(WhisperError::Hub(_))
    ));
}

whisper_burn::on_every_target!(
    kv_cache_step_by_step_equals_whole_sequence,
    truncate_then_reappend_equals_fresh_run,
    batch_rows_decode_like_single_rows,
    select_rows_reorders_and_repeats_rows,
    ragged_rows_match_rows_alone,
    later_tokens_do_not_change_earlier_logits,
    random_model_tokens_vary_with_audio_and_position,
    captured_cross_attention_matches_the_host,
);
