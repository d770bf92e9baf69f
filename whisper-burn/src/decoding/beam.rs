//! Beam search with the semantics of CTranslate2 4.x (`BeamSearch` in `decoding.cc`) as
//! faster-whisper drives it for Whisper:
//!
//! - the first step expands only the single prefill row of each input (all beams would be
//!   identical); the state rows are duplicated by the row select that follows it;
//! - each step takes the `2 * beam_size` best candidates over beam x vocabulary of
//!   `beam score + log_softmax(filtered logits)`;
//! - an end-of-text among the first `beam_size` candidates finishes that hypothesis (the
//!   end-of-text is not part of its tokens but its log-prob is in its score) and the next
//!   unused non-end candidate from the second half takes its place;
//! - an input is done when `round(beam_size * patience)` hypotheses are finished (checked
//!   after the whole step, so a step may finish more), or at the last allowed step, where
//!   every live beam is registered;
//! - the winner has the best `score / length ^ length_penalty`, the length counting the
//!   generated tokens without end-of-text.
//!
//! Inputs of a batch advance together; an input that is done leaves the batch.
use super::device::DeviceRules;
use super::greedy::{host_rows, prefill, prefill_rows, DecodeRequest, SequenceResult};
use super::longform::WindowDecoder;
use crate::backend::{Kernels, WhisperBackend};
use crate::model::{DecoderState, Whisper};
use crate::{Result, WhisperError};
use burn::prelude::*;

/// Beam search decoder (faster-whisper's `beam_size`, `patience`, `length_penalty`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamSearchDecoder {
    pub beam_size: usize,
    /// Finished hypotheses to collect, as a multiple of `beam_size` (rounded).
    pub patience: f32,
    /// Exponent of the length normalisation `score / length ^ length_penalty`;
    /// `None` is CTranslate2's and faster-whisper's default, 1.0.
    pub length_penalty: Option<f32>,
}

impl Default for BeamSearchDecoder {
    /// faster-whisper's defaults: beam 5, patience 1, length penalty 1.
    fn default() -> Self {
        Self {
            beam_size: 5,
            patience: 1.0,
            length_penalty: None,
        }
    }
}

impl BeamSearchDecoder {
    pub fn new(beam_size: usize) -> Self {
        Self {
            beam_size,
            ..Default::default()
        }
    }

    /// Finished hypotheses that end the search of one input.
    fn max_candidates(&self) -> usize {
        ((self.beam_size as f32 * self.patience).round() as usize).max(1)
    }
}

/// A live hypothesis.
#[derive(Debug, Clone)]
struct Beam {
    tokens: Vec<u32>,
    score: f32,
}

/// A candidate continuation: which live beam (index within its input) and which token.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f32,
    beam: usize,
    token: u32,
}

/// Each state row's scores for the next token: filtered logits on the host, or (on the
/// generic kernels) the `2 * beam_size` best log-probabilities chosen on the device.
enum StepScores {
    Host(Vec<Vec<f32>>),
    Device(Vec<Vec<(u32, f32)>>),
}

/// The search of one input of the batch.
struct Group {
    row: usize,
    beams: Vec<Beam>,
    finished: Vec<Beam>,
    /// Largest number of generated tokens (end-of-text included).
    max_steps: usize,
}

impl<B: WhisperBackend> WindowDecoder<B> for BeamSearchDecoder {
    fn decode(
        &mut self,
        model: &Whisper<B>,
        encoder_out: Tensor<B, 3>,
        req: &DecodeRequest,
    ) -> Result<Vec<SequenceResult>> {
        beam_search(self, model, encoder_out, req)
    }
}

/// Beam search of every row of `req`; one result per row (its best hypothesis).
pub fn beam_search<B: WhisperBackend>(
    opts: &BeamSearchDecoder,
    model: &Whisper<B>,
    encoder_out: Tensor<B, 3>,
    req: &DecodeRequest,
) -> Result<Vec<SequenceResult>> {
    if req.sampling.is_some() {
        return Err(WhisperError::Decode(
            "beam search is deterministic: use temperature 0 with a beam size above 1".into(),
        ));
    }
    if opts.beam_size == 0 {
        return Err(WhisperError::Decode("beam size must be at least 1".into()));
    }
    let beam_size = opts.beam_size;
    let n_candidates = 2 * beam_size;
    let max_candidates = opts.max_candidates();
    let length_penalty = opts.length_penalty.unwrap_or(1.0);
    let max_pos = model.config.max_target_positions;

    let rules =
        (model.kernels() == Kernels::Generic).then(|| DeviceRules::new(req.filters, &model.device));
    let (mut state, mut scores, no_speech) = match &rules {
        None => {
            let (state, first, no_speech) = prefill(model, encoder_out, req)?;
            (state, StepScores::Host(first), no_speech)
        }
        Some(rules) => {
            let (state, picked) = prefill_rows(model, encoder_out, req)?;
            let [b, _, v] = picked.dims();
            let lasts = picked.clone().slice([0..b, 0..1, 0..v]).reshape([b, v]);
            let probe = req
                .no_speech
                .map(|t| (picked.slice([0..b, 1..2, 0..v]).reshape([b, v]), t));
            let contexts: Vec<&[u32]> = vec![&[]; b];
            let (tops, no_speech) = rules.top_log_probs(lasts, &contexts, n_candidates, probe)?;
            (state, StepScores::Device(tops), no_speech)
        }
    };
    let mut results: Vec<SequenceResult> = no_speech
        .iter()
        .map(|p| SequenceResult {
            no_speech_prob: *p,
            main_passes: 1,
            ..Default::default()
        })
        .collect();
    // Every row starts with one live (empty) beam; its prefill row is the only state row.
    let mut groups: Vec<Group> = (0..results.len())
        .map(|row| {
            // CTranslate2: max_length = min(448 / 2, 448 - start_step), start_step = prompt - 1.
            let by_positions = (max_pos + 1).saturating_sub(req.prompts[row].len());
            Group {
                row,
                beams: vec![Beam {
                    tokens: Vec::new(),
                    score: 0.0,
                }],
                finished: Vec::new(),
                max_steps: req.max_new_tokens.min(by_positions).max(1),
            }
        })
        .collect();
    let mut step = 0usize;
    loop {
        // State rows of group `g` are `offset..offset + groups[g].beams.len()` in `logits`.
        let mut offset = 0;
        let mut select = Vec::new();
        let mut next_groups = Vec::with_capacity(groups.len());
        for mut group in groups {
            let n_live = group.beams.len();
            let cands = match &mut scores {
                StepScores::Host(logits) => top_candidates(
                    &mut logits[offset..offset + n_live],
                    &group.beams,
                    req,
                    n_candidates,
                ),
                StepScores::Device(tops) => {
                    merge_candidates(&tops[offset..offset + n_live], &group.beams, n_candidates)
                }
            };
            let last_step = step + 1 >= group.max_steps;
            let mut next_beams = Vec::with_capacity(beam_size);
            let mut secondary = beam_size;
            for k in 0..beam_size.min(cands.len()) {
                let c = cands[k];
                let mut next = k;
                if c.token == req.eot || last_step {
                    let mut tokens = group.beams[c.beam].tokens.clone();
                    if c.token != req.eot {
                        tokens.push(c.token);
                    }
                    group.finished.push(Beam {
                        tokens,
                        score: c.score,
                    });
                    if let Some(j) = (secondary..cands.len()).find(|j| cands[*j].token != req.eot) {
                        next = j;
                        secondary = j + 1;
                    }
                }
                next_beams.push(cands[next]);
            }
            if last_step || group.finished.len() >= max_candidates {
                results[group.row] = finalize(&group, &results[group.row], length_penalty);
            } else {
                group.beams = next_beams
                    .iter()
                    .map(|c| {
                        select.push(offset + c.beam);
                        let mut tokens = group.beams[c.beam].tokens.clone();
                        tokens.push(c.token);
                        Beam {
                            tokens,
                            score: c.score,
                        }
                    })
                    .collect();
                next_groups.push(group);
            }
            offset += n_live;
        }
        groups = next_groups;
        if groups.is_empty() {
            break;
        }
        // Reorder (and on the first step duplicate) the state rows to follow the beams.
        reorder_beams(&mut state, &select, step == 0);
        let tokens: Vec<Vec<u32>> = groups
            .iter()
            .flat_map(|g| {
                g.beams
                    .iter()
                    .map(|b| vec![*b.tokens.last().unwrap_or(&req.eot)])
            })
            .collect();
        let hidden = model.decoder.forward(&tokens, &mut state)?;
        let logits = model.decoder.logits(hidden);
        scores = match &rules {
            None => StepScores::Host(host_rows(logits)?),
            Some(rules) => {
                let [b, t, v] = logits.dims();
                let contexts: Vec<&[u32]> = groups
                    .iter()
                    .flat_map(|g| g.beams.iter().map(|b| b.tokens.as_slice()))
                    .collect();
                let logits = logits.reshape([b * t, v]);
                StepScores::Device(
                    rules
                        .top_log_probs(logits, &contexts, n_candidates, None)?
                        .0,
                )
            }
        };
        groups.iter().for_each(|g| results[g.row].main_passes += 1);
        step += 1;
    }
    Ok(results)
}

/// Makes row `i` of `state` a copy of row `select[i]`. After the first step every input
/// keeps `beam_size` consecutive rows, and while no input leaves the batch a select only
/// permutes rows within an input: the cross-attention keys/values (identical for the
/// beams of one input) stay, and only the used prefix of the self-attention cache moves.
fn reorder_beams<B: WhisperBackend>(
    state: &mut DecoderState<B>,
    select: &[usize],
    first_step: bool,
) {
    let n = state.batch_size();
    if select.len() == n && select.iter().enumerate().all(|(i, s)| i == *s) {
        return;
    }
    if first_step || select.len() != n || state.on_host() {
        state.select_rows(select);
        return;
    }
    let Some(device) = state.layers.first().map(|l| l.self_k.device()) else {
        return;
    };
    let used = state.lens.iter().copied().max().unwrap_or(0);
    let idx: Vec<i64> = select.iter().map(|i| *i as i64).collect();
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [n]), &device);
    for l in &mut state.layers {
        for cache in [&mut l.self_k, &mut l.self_v] {
            let [b, h, _, dh] = cache.dims();
            let range = [0..b, 0..h, 0..used, 0..dh];
            let moved = cache.clone().slice(range.clone()).select(0, idx.clone());
            let full = std::mem::replace(cache, moved.clone());
            *cache = full.slice_assign(range, moved);
        }
    }
    state.lens = select.iter().map(|i| state.lens[*i]).collect();
}

/// The `k` best `beam score + log_softmax(filtered logits)` over the live beams of one
/// input, best first (equal scores: lower beam, then lower token id, first).
fn top_candidates(
    logits: &mut [Vec<f32>],
    beams: &[Beam],
    req: &DecodeRequest,
    k: usize,
) -> Vec<Candidate> {
    let mut top: Vec<Candidate> = Vec::with_capacity(k + 1);
    for (b, (l, beam)) in logits.iter_mut().zip(beams).enumerate() {
        req.filters.apply(l, &beam.tokens);
        let max = l.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        // As `log_prob`: (v - max) - ln(sum(exp(v - max))).
        let ln_z = l.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
        for (token, v) in l.iter().enumerate() {
            let score = beam.score + (v - max - ln_z);
            if score.is_nan() || (top.len() == k && score <= top[k - 1].score) {
                continue;
            }
            let at = top.partition_point(|c| c.score >= score);
            top.insert(
                at,
                Candidate {
                    score,
                    beam: b,
                    token: token as u32,
                },
            );
            top.truncate(k);
        }
    }
    top
}

/// [`top_candidates`] from each live beam's best log-probabilities (chosen on the
/// device): the `k` best `beam score + log-probability`, in the same order (equal scores:
/// lower beam, then lower token id, first). Each beam's `k` best hold the input's.
fn merge_candidates(tops: &[Vec<(u32, f32)>], beams: &[Beam], k: usize) -> Vec<Candidate> {
    let mut all: Vec<Candidate> = tops
        .iter()
        .zip(beams)
        .enumerate()
        .flat_map(|(b, (top, beam))| {
            top.iter().map(move |(token, lp)| Candidate {
                score: beam.score + lp,
                beam: b,
                token: *token,
            })
        })
        .filter(|c| !c.score.is_nan())
        .collect();
    all.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.beam.cmp(&b.beam))
            .then(a.token.cmp(&b.token))
    });
    all.truncate(k);
    all
}

/// The best finished hypothesis by `score / length ^ length_penalty`.
fn finalize(group: &Group, base: &SequenceResult, length_penalty: f32) -> SequenceResult {
    let normalised = |h: &Beam| h.score / (h.tokens.len() as f32).powf(length_penalty);
    let mut best: Option<(&Beam, f32)> = None;
    for h in &group.finished {
        let s = normalised(h);
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((h, s));
        }
    }
    let mut r = base.clone();
    if let Some((h, _)) = best {
        r.tokens = h.tokens.clone();
        r.sum_logprob = h.score;
    }
    r
}
