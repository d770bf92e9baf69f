//! Greedy decoding (or temperature sampling) of a batch of windows with the KV cache;
//! finished rows leave the batch.
use super::device::DeviceRules;
use super::logit_filters::{log_prob, LogitFilters};
use super::sampling::{choose_token, RowSampler, SampleStream, Sampling};
use crate::backend::{Kernels, WhisperBackend};
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

    /// Adds the main model's choice for the sequence's next position, under the window's
    /// stop rule: end-of-text ends the sequence (its log-prob counted, the token not kept),
    /// and so does the token that reaches `max_new_tokens` or the model's last position.
    /// Returns whether the sequence goes on. Greedy, sampling and speculative decoding all
    /// commit through here, so they stop at the same token.
    pub fn commit(&mut self, token: u32, logprob: f32, rule: &StopRule) -> bool {
        self.sum_logprob += logprob;
        if token == rule.eot {
            return false;
        }
        self.tokens.push(token);
        let n = self.tokens.len();
        n < rule.max_new_tokens && n < rule.max_tokens_by_position
    }
}

/// When a window's sequence stops (see [`SequenceResult::commit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopRule {
    pub eot: u32,
    pub max_new_tokens: usize,
    /// Most generated tokens before the prompt and they fill the model's positions.
    pub max_tokens_by_position: usize,
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
    /// Row `row`'s stop rule for a model with `max_positions` decoder positions.
    pub fn stop_rule(&self, row: usize, max_positions: usize) -> StopRule {
        StopRule {
            eot: self.eot,
            max_new_tokens: self.max_new_tokens,
            max_tokens_by_position: max_positions.saturating_sub(self.prompts[row].len()),
        }
    }

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
    super::transfers::count_download();
    Ok((0..b * t)
        .map(|i| flat[i * v..(i + 1) * v].to_vec())
        .collect())
}

/// How a decode chooses its tokens: on the host from downloaded logits (the host
/// kernels, where logits already live in host memory, and temperature sampling), or on
/// the device, where only the chosen tokens and their log-probabilities come back.
pub enum Chooser<B: WhisperBackend> {
    Host,
    Device(DeviceRules<B>),
}

impl<B: WhisperBackend> Chooser<B> {
    /// The device on the generic kernels (greedy and sampling); the host otherwise.
    pub fn for_request(model: &Whisper<B>, req: &DecodeRequest) -> Self {
        if model.kernels() == Kernels::Generic {
            Chooser::Device(DeviceRules::new(req.filters, &model.device))
        } else {
            Chooser::Host
        }
    }

    /// The token (and its log-probability under the filtered logits) at each position of
    /// `logits` (`[rows, 1, vocab]`): row `i` after `contexts[i]`, drawn by `samplers[i]`
    /// at position `contexts[i].len()` when it samples.
    pub fn choose(
        &self,
        logits: Tensor<B, 3>,
        contexts: &[&[u32]],
        samplers: &[Option<&RowSampler>],
        filters: &LogitFilters,
    ) -> Result<Vec<(u32, f32)>> {
        match self {
            Chooser::Host => Ok(host_rows(logits)?
                .into_iter()
                .zip(contexts.iter().zip(samplers))
                .map(|(mut l, (ctx, sampler))| choose_on_host(&mut l, ctx, *sampler, filters))
                .collect()),
            Chooser::Device(rules) => {
                let [b, t, v] = logits.dims();
                let draws = device_draws(contexts, samplers);
                Ok(rules
                    .decide_drawing(logits.reshape([b * t, v]), contexts, &draws, None)?
                    .into_iter()
                    .map(|d| (d.token, d.logprob))
                    .collect())
            }
        }
    }
}

/// Each row's `(temperature, uniform)` at its position (`contexts[i].len()`), for
/// [`DeviceRules::decide_drawing`] (`None`: greedy).
pub fn device_draws(
    contexts: &[&[u32]],
    samplers: &[Option<&RowSampler>],
) -> Vec<Option<(f32, f64)>> {
    contexts
        .iter()
        .zip(samplers)
        .map(|(c, s)| s.map(|s| (s.temperature, s.stream.uniform(c.len()))))
        .collect()
}

/// The one host rule for a position: filter, choose (argmax or the sampler's draw at
/// this position), and the chosen token's log-probability under the filtered logits.
pub fn choose_on_host(
    logits: &mut [f32],
    context: &[u32],
    sampler: Option<&RowSampler>,
    filters: &LogitFilters,
) -> (u32, f32) {
    filters.apply(logits, context);
    let token = choose_token(sampler, logits, context.len());
    (token, log_prob(logits, token))
}

/// Each row's prompt through the decoder: the joined state and the logits
/// `[rows, 2, vocab]` at each prompt's last position and at `<|startoftranscript|>` (for
/// the no-speech probability). The generic kernels run every row in one pass (shorter
/// prompts padded at their end, cut off the cache after); the host kernels run row by
/// row, where padding would be paid for in arithmetic.
pub(crate) fn prefill_rows<B: WhisperBackend>(
    model: &Whisper<B>,
    encoder_out: Tensor<B, 3>,
    req: &DecodeRequest,
) -> Result<(DecoderState<B>, Tensor<B, 3>)> {
    if req.prompts.is_empty() {
        return Err(WhisperError::Decode("empty batch".into()));
    }
    if model.kernels() == Kernels::Generic {
        return prefill_padded(model, encoder_out, req);
    }
    let [_, frames, d] = encoder_out.dims();
    let mut state: Option<DecoderState<B>> = None;
    let mut picked = Vec::with_capacity(req.prompts.len());
    for (row, prompt) in req.prompts.iter().enumerate() {
        let enc = encoder_out.clone().slice([row..row + 1, 0..frames, 0..d]);
        let mut s = model.decoder.new_state(enc);
        let hidden = model
            .decoder
            .forward(std::slice::from_ref(prompt), &mut s)?;
        let (last, sot) = (prompt.len() - 1, req.sot_index[row]);
        let rows = Tensor::cat(
            vec![
                hidden.clone().slice([0..1, last..last + 1, 0..d]),
                hidden.slice([0..1, sot..sot + 1, 0..d]),
            ],
            1,
        );
        picked.push(model.decoder.logits(rows));
        match &mut state {
            None => state = Some(s),
            Some(st) => st.append(s),
        }
    }
    let state = state.ok_or_else(|| WhisperError::Decode("empty batch".into()))?;
    Ok((state, Tensor::cat(picked, 0)))
}

/// [`prefill_rows`] in one decoder pass: every prompt padded with end-of-text to the
/// longest; causal attention keeps the padding out of the real positions, and each row's
/// cache is cut back to its prompt.
fn prefill_padded<B: WhisperBackend>(
    model: &Whisper<B>,
    encoder_out: Tensor<B, 3>,
    req: &DecodeRequest,
) -> Result<(DecoderState<B>, Tensor<B, 3>)> {
    let b = req.prompts.len();
    let n = req.prompts.iter().map(Vec::len).max().unwrap_or(0);
    let tokens: Vec<Vec<u32>> = req
        .prompts
        .iter()
        .map(|p| {
            let mut row = p.clone();
            row.resize(n, req.eot);
            row
        })
        .collect();
    let mut state = model.decoder.new_state(encoder_out);
    let hidden = model.decoder.forward(&tokens, &mut state)?;
    let mut at: Vec<i64> = Vec::with_capacity(2 * b);
    for (row, prompt) in req.prompts.iter().enumerate() {
        state.truncate(row, prompt.len());
        at.push((row * n + prompt.len() - 1) as i64);
        at.push((row * n + req.sot_index[row]) as i64);
    }
    let d = model.decoder.d_model;
    let at = Tensor::<B, 1, Int>::from_data(TensorData::new(at, [2 * b]), &model.device);
    let rows = hidden.reshape([b * n, d]).select(0, at).reshape([b, 2, d]);
    Ok((state, model.decoder.logits(rows)))
}

/// What prefilling a batch gives: the decoder state (all rows), a `First` per row (the
/// first generated token's logits from [`prefill`], its choice from [`prefill_choose`]),
/// and each row's no-speech probability.
pub type Prefilled<B, First> = (DecoderState<B>, Vec<First>, Vec<f32>);

/// Runs each row's prompt through the decoder. Returns the state (all rows), the logits
/// for the first generated token of each row, and each row's no-speech probability.
pub fn prefill<B: WhisperBackend>(
    model: &Whisper<B>,
    encoder_out: Tensor<B, 3>,
    req: &DecodeRequest,
) -> Result<Prefilled<B, Vec<f32>>> {
    let (state, picked) = prefill_rows(model, encoder_out, req)?;
    let (mut first, mut no_speech) = (Vec::new(), Vec::new());
    let mut rows = host_rows(picked)?.into_iter();
    while let (Some(last), Some(sot_logits)) = (rows.next(), rows.next()) {
        first.push(last);
        no_speech.push(
            req.no_speech
                .map(|t| log_prob(&sot_logits, t).exp())
                .unwrap_or(0.0),
        );
    }
    Ok((state, first, no_speech))
}

/// [`prefill`] plus the choice of each row's first token: the state, each row's
/// `(token, log-probability)` and no-speech probability. On the device this reads back
/// one small tensor for all rows.
pub fn prefill_choose<B: WhisperBackend>(
    model: &Whisper<B>,
    encoder_out: Tensor<B, 3>,
    req: &DecodeRequest,
    chooser: &Chooser<B>,
) -> Result<Prefilled<B, (u32, f32)>> {
    let Chooser::Device(rules) = chooser else {
        let (state, first, no_speech) = prefill(model, encoder_out, req)?;
        let samplers: Vec<Option<RowSampler>> = (0..first.len()).map(|r| req.sampler(r)).collect();
        let choices = first
            .into_iter()
            .zip(&samplers)
            .map(|(mut l, s)| choose_on_host(&mut l, &[], s.as_ref(), req.filters))
            .collect();
        return Ok((state, choices, no_speech));
    };
    let (state, picked) = prefill_rows(model, encoder_out, req)?;
    let [b, _, v] = picked.dims();
    let lasts = picked.clone().slice([0..b, 0..1, 0..v]).reshape([b, v]);
    let probe = req
        .no_speech
        .map(|t| (picked.slice([0..b, 1..2, 0..v]).reshape([b, v]), t));
    let contexts: Vec<&[u32]> = vec![&[]; b];
    let samplers: Vec<Option<RowSampler>> = (0..b).map(|r| req.sampler(r)).collect();
    let samplers: Vec<Option<&RowSampler>> = samplers.iter().map(Option::as_ref).collect();
    let draws = device_draws(&contexts, &samplers);
    let decided = rules.decide_drawing(lasts, &contexts, &draws, probe)?;
    Ok((
        state,
        decided.iter().map(|d| (d.token, d.logprob)).collect(),
        decided.iter().map(|d| d.probe_prob).collect(),
    ))
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
    let chooser = Chooser::for_request(model, req);
    let (mut state, mut choices, no_speech) = prefill_choose(model, encoder_out, req, &chooser)?;
    let mut results: Vec<SequenceResult> = no_speech
        .iter()
        .map(|p| SequenceResult {
            no_speech_prob: *p,
            main_passes: 1,
            ..Default::default()
        })
        .collect();
    let mut active: Vec<usize> = (0..results.len()).collect();
    let rules: Vec<StopRule> = (0..results.len())
        .map(|r| req.stop_rule(r, model.config.max_target_positions))
        .collect();
    loop {
        let mut still = Vec::new();
        for (slot, row) in active.iter().enumerate() {
            let (next, logprob) = choices[slot];
            if results[*row].commit(next, logprob, &rules[*row]) {
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
        let contexts: Vec<&[u32]> = active
            .iter()
            .map(|r| results[*r].tokens.as_slice())
            .collect();
        let row_samplers: Vec<Option<&RowSampler>> =
            active.iter().map(|r| samplers[*r].as_ref()).collect();
        choices = chooser.choose(
            model.decoder.logits(hidden),
            &contexts,
            &row_samplers,
            req.filters,
        )?;
        active.iter().for_each(|r| results[*r].main_passes += 1);
    }
    Ok(results)
}
