//! Times a self-draft step against a main decoder step, side by side, at 1 and 8 rows:
//! the ratio the draft must keep small for speculative decoding to pay.
//! `cargo run --release -p spec-engine --example draft_timing -- weights/models/base`
//! (`DRAFT_BITS=4|8`, `DRAFT_REPS=20`, `AUDIO_FRAMES=1000` mel frames of audio per row,
//! `DRAFT_ONLY=1` to time the draft alone, for a profiler; long-form windows:
//! `AUDIO_FRAMES=3000 PREV_TOKENS=200 COMMITTED=100`, a previous-text prompt of that many
//! tokens and that many tokens already generated).
use spec_engine::proposer::{ProposeRequest, Proposer};
use spec_engine::self_draft::{SelfDraft, WeightBits, DRAFT_MARGIN_FRAMES};
use std::sync::Arc;
use std::time::Instant;
use whisper_burn::backend::CpuBackend as B;
use whisper_burn::decoding::greedy::{host_rows, prefill, DecodeRequest};
use whisper_burn::decoding::LogitFilters;
use whisper_burn::{Pipeline, Task};

/// Draft tokens per proposal (each one draft step). The confidence floor is the smallest
/// positive one: the draft computes its confidence each step, as in the engine, but never
/// stops early.
const DRAFTED: usize = 5;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or("weights/models/base".into());
    let p = Pipeline::<B>::load(&dir, &Default::default()).expect("load");
    let (reps, audio_frames) = (env("DRAFT_REPS", 20), env("AUDIO_FRAMES", 1000));
    // DRAFT_ONLY=1: time the draft alone (for a profiler).
    let draft_only = env("DRAFT_ONLY", 0) == 1;
    let bits = WeightBits::from_bits(env("DRAFT_BITS", 4) as u8).expect("bits");
    let draft =
        Arc::new(SelfDraft::from_main(&p, bits, 16384, Some(DRAFT_MARGIN_FRAMES)).expect("draft"));
    let g = &p.model.generation;
    let filters = LogitFilters::new(
        &p.tokenizer,
        &g.suppress_tokens,
        &g.begin_suppress_tokens,
        true,
        false,
        p.config().vocab_size,
    );
    // Generated tokens already committed before the timed steps, and previous-text tokens.
    let (n_committed, n_prev) = (env("COMMITTED", 20), env("PREV_TOKENS", 0));
    let mut prompt: Vec<u32> = if n_prev > 0 {
        std::iter::once(p.tokenizer.special.sot_prev)
            .chain((0..n_prev as u32).map(|i| 300 + i))
            .collect()
    } else {
        Vec::new()
    };
    let sot_index = prompt.len();
    prompt.extend(
        p.tokenizer
            .sot_sequence(Some("en"), Task::Transcribe)
            .expect("prompt"),
    );
    prompt.push(p.tokenizer.special.no_timestamps);
    let window: Vec<f32> = (0..p.config().num_mel_bins * 3000)
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 1.5)
        .collect();
    let committed: Vec<u32> = prompt
        .iter()
        .copied()
        .chain((0..n_committed as u32).map(|i| 440 + i))
        .collect();
    for batch in [1usize, 8] {
        let mels = vec![window.clone(); batch];
        let req = DecodeRequest {
            filters: &filters,
            prompts: vec![prompt.clone(); batch],
            sot_index: vec![sot_index; batch],
            eot: p.tokenizer.special.eot,
            no_speech: p.tokenizer.special.no_speech,
            max_new_tokens: 224,
            mel_windows: &mels,
            audio_mel_frames: vec![audio_frames; batch],
            sampling: None,
            window_start_frames: vec![0; batch],
        };
        let enc = p.model.encode(&mels).expect("encode");
        let (mut state, _, _) = prefill(&p.model, enc.clone(), &req).expect("prefill");
        let generated: Vec<Vec<u32>> = vec![committed[prompt.len()..].to_vec(); batch];
        p.model
            .decoder
            .forward(&generated, &mut state)
            .expect("main forward");
        let mut proposer = draft.proposer();
        proposer.begin(&p.model, &state, &enc, &req).expect("begin");
        let requests: Vec<ProposeRequest> = (0..batch)
            .map(|row| ProposeRequest {
                row,
                committed: &committed,
                prompt_len: prompt.len(),
                max_tokens: DRAFTED,
                min_confidence: f32::MIN_POSITIVE,
                eot: u32::MAX,
                sampling: None,
            })
            .collect();
        Proposer::<B>::propose(&mut proposer, &requests, &filters).expect("propose");
        let (mut draft_ms, mut main_ms) = (f64::MAX, f64::MAX);
        for _ in 0..reps {
            let t = Instant::now();
            Proposer::<B>::propose(&mut proposer, &requests, &filters).expect("propose");
            draft_ms = draft_ms.min(t.elapsed().as_secs_f64() * 1e3 / DRAFTED as f64);
            if draft_only {
                continue;
            }
            (0..batch).for_each(|r| state.truncate(r, committed.len()));
            let t = Instant::now();
            let h = p
                .model
                .decoder
                .forward(&vec![vec![440]; batch], &mut state)
                .expect("main step");
            let _ = host_rows(p.model.decoder.logits(h));
            main_ms = main_ms.min(t.elapsed().as_secs_f64() * 1e3);
        }
        if draft_only {
            println!("{batch} row(s): draft step {draft_ms:.2} ms (best of {reps})");
            continue;
        }
        println!("{batch} row(s): draft step {draft_ms:.2} ms, main step {main_ms:.2} ms, ratio {:.0}% (best of {reps})", 100.0 * draft_ms / main_ms);
    }
}
