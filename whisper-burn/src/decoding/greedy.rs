//! Greedy decoding (or temperature sampling) of a batch of windows with the KV cache;
//! finished rows leave the batch.
use super::logit_filters::{log_prob, LogitFilters};
use super::sampling::{choose_token, RowSampler, SampleStream, Sampling};
use crate::backend::WhisperBackend;
use crate::model::{DecoderState, Whisper};
use crate::{Result, WhisperError};
use burn::prelude::*;

/// What one sequence produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SequenceResult {
    /// Generated tokens after the prompt, without the final end-of-text.
    pub tokens: Vec<u32>,
    pub sum_logprob: f32,
    /// Probability of `<|nospeech|>` at the start-of-transcript position.
    pub no_speech_prob: f32,
    /// Decoder forward passes of the main model for this sequence (prefill included).
    pub main_passes: usize,
    /// Tokens proposed by a draft model and how many of them the main model accepted
    /// (zero for plain decoding).
    pub drafted: usize,
    pub accepted: usize,
    /// Seconds spent in the draft model (speculative decoding only).
    pub draft_s: f64,
}

impl SequenceResult {
    pub fn avg_logprob(&self) -> f32 {
        self.sum_logprob / (self.tokens.len() as f32 + 1.0)
    }
}

/// The decoding problem of one batch: prompts, stop token, rules.
pub struct DecodeRequest<'a> {
    pub filters: &'a LogitFilters,
    /// Full prompt of each row (previous text, start sequence, `<|notimestamps|>`).
    pub prompts: Vec<Vec<u32>>,
    /// Index of `<|startoftranscript|>` in each prompt.
    pub sot_index: Vec<usize>,
    pub eot: u32,
    pub no_speech: Option<u32>,
    pub max_new_tokens: usize,
    /// The log-mel windows behind `encoder_out` (`[n_mels][3000]` each), for drafts that
    /// run an encoder of their own.
    pub mel_windows: &'a [Vec<f32>],
    /// Mel frames of real audio (not padding) at the start of each row's window. Drafts
    /// may attend to these only; the main model always sees the whole window.
    pub audio_mel_frames: Vec<usize>,
    /// Temperature sampling instead of greedy choice (`None`: greedy).
    pub sampling: Option<Sampling>,
    /// Where each row's window starts in its audio (mel frames): with the seed and the
    /// prompt it keys the row's [`SampleStream`].
    pub window_start_frames: Vec<usize>,
}

impl DecodeRequest<'_> {
    /// Row `row`'s sampler (`None` when greedy).
    pub fn sampler(&self, row: usize) -> Option<RowSampler> {
        let start = self.window_start_frames.get(row).copied().unwrap_or(0) as u64;
        self.sampling.map(|s| RowSampler {
            temperature: s.temperature,
            stream: SampleStream::for_sequence(s.seed, start, &self.prompts[row]),
        })
    }
}

/// Logits of each (row, position), copied to the host as `f32` (whatever the backend's
/// float type).
pub fn host_rows<B: WhisperBackend>(logits: Tensor<B, 3>) -> Result<Vec<Vec<f32>>> {
    let [b, t, v] = logits.dims();
    let flat = logits
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| WhisperError::Decode(format!("reading logits: {e:?}")))?;
    Ok((0..b * t)
        .map(|i| flat[i * v..(i + 1) * v].to_vec())
        .collect())
}

/// Runs each row's prompt through the decoder. Returns the state (all rows), the logits
/// for the first generated token of each row, and each row's no-speech probability.
pub fn prefill<B: WhisperBackend>(
    model: &Whisper<B>,
    encoder_out: Tensor<B, 3>,
    req: &DecodeRequest,
) -> Result<(DecoderState<B>, Vec<Vec<f32>>, Vec<f32>)> {
    let b = req.prompts.len();
    let [_, frames, d] = encoder_out.dims();
    let mut state: Option<DecoderState<B>> = None;
    let (mut first, mut no_speech) = (Vec::with_capacity(b), Vec::with_capacity(b));
    for row in 0..b {
        let enc = encoder_out.clone().slice([row..row + 1, 0..frames, 0..d]);
        let mut s = model.decoder.new_state(enc);
        let prompt = &req.prompts[row];
        let hidden = model
            .decoder
            .forward(std::slice::from_ref(prompt), &mut s)?;
        let last = prompt.len() - 1;
        let sot = req.sot_index[row];
        let picked = Tensor::cat(
            vec![
                hidden.clone().slice([0..1, last..last + 1, 0..d]),
                hidden.slice([0..1, sot..sot + 1, 0..d]),
            ],
            1,
        );
        let mut rows = host_rows(model.decoder.logits(picked))?;
        let sot_logits = rows.pop().unwrap_or_default();
        first.push(rows.pop().unwrap_or_default());
        no_speech.push(
            req.no_speech
                .map(|t| log_prob(&sot_logits, t).exp())
                .unwrap_or(0.0),
        );
        match &mut state {
            None => state = Some(s),
            Some(st) => st.append(s),
        }
    }
    let state = state.ok_or_else(|| WhisperError::Decode("empty batch".into()))?;
    Ok((state, first, no_speech))
}

/// Greedy decoding of every row to end-of-text or `max_new_tokens`; with
/// `req.sampling`, each token is drawn at the temperature instead, with the uniform of
/// its position in the row's [`SampleStream`]. `sum_logprob` is always under the
/// untempered filtered logits, as in Whisper.
pub fn greedy_decode<B: WhisperBackend>(
    model: &Whisper<B>,
    encoder_out: Tensor<B, 3>,
    req: &DecodeRequest,
) -> Result<Vec<SequenceResult>> {
    let samplers: Vec<Option<RowSampler>> =
        (0..req.prompts.len()).map(|r| req.sampler(r)).collect();
    let (mut state, first_logits, no_speech) = prefill(model, encoder_out, req)?;
    let mut results: Vec<SequenceResult> = no_speech
        .iter()
        .map(|p| SequenceResult {
            no_speech_prob: *p,
            main_passes: 1,
            ..Default::default()
        })
        .collect();
    let mut active: Vec<usize> = (0..results.len()).collect();
    let mut logits = first_logits;
    let max_len = model.config.max_target_positions;
    loop {
        let mut still = Vec::new();
        for (slot, row) in active.iter().enumerate() {
            let r = &mut results[*row];
            let mut l = std::mem::take(&mut logits[slot]);
            req.filters.apply(&mut l, &r.tokens);
            let next = choose_token(samplers[*row].as_ref(), &l, r.tokens.len());
            r.sum_logprob += log_prob(&l, next);
            let full = req.prompts[*row].len() + r.tokens.len() + 1 >= max_len;
            if next == req.eot {
                continue;
            }
            r.tokens.push(next);
            if r.tokens.len() < req.max_new_tokens && !full {
                still.push(slot);
            }
        }
        if still.is_empty() {
            break;
        }
        if still.len() != active.len() {
            state.select_rows(&still);
        }
        active = still.iter().map(|s| active[*s]).collect();
        let step: Vec<Vec<u32>> = active
            .iter()
            .map(|r| vec![*results[*r].tokens.last().unwrap_or(&req.eot)])
            .collect();
        let hidden = model.decoder.forward(&step, &mut state)?;
        logits = host_rows(model.decoder.logits(hidden))?;
        active.iter().for_each(|r| results[*r].main_passes += 1);
    }
    Ok(results)
}
