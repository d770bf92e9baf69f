//! Choosing tokens on the backend's device: the logit rules ([`LogitFilters`]) applied as
//! masks, the timestamp preference, argmax and the chosen token's log-probability, all
//! as tensor ops; only `(token, log-probability)` per position comes back, in one
//! transfer. The rules are the host's: the same [`LogitFilters`] says which tokens each
//! context hides ([`LogitFilters::always_hidden`], [`LogitFilters::hidden_at_start`],
//! [`LogitFilters::hidden_ranges`]), so both paths hide the same tokens.
use super::logit_filters::LogitFilters;
use super::transfers::count_download;
use crate::backend::WhisperBackend;
use crate::{Result, WhisperError};
use burn::prelude::*;

/// The static part of a decode's rules, uploaded once per window.
pub struct DeviceRules<B: WhisperBackend> {
    filters: LogitFilters,
    /// `[1, vocab]`: hidden at every position.
    always: Tensor<B, 2, Bool>,
    /// `[1, vocab]`: hidden at the first position.
    at_start: Tensor<B, 2, Bool>,
    /// `[1, vocab]`: token ids.
    ids: Tensor<B, 2, Int>,
    vocab: usize,
}

/// One row's best `(token, log-probability)` pairs, best first.
pub type TopLogProbs = Vec<(u32, f32)>;

/// One position's choice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub token: u32,
    /// Log-probability of `token` under the filtered logits.
    pub logprob: f32,
    /// Probability of the probe token under the unfiltered probe logits (0 without one).
    pub probe_prob: f32,
}

fn token_mask<B: WhisperBackend>(
    tokens: &[u32],
    vocab: usize,
    device: &B::Device,
) -> Tensor<B, 2, Bool> {
    let mut hidden = vec![false; vocab];
    tokens
        .iter()
        .filter(|t| (**t as usize) < vocab)
        .for_each(|t| hidden[*t as usize] = true);
    Tensor::from_data(TensorData::new(hidden, [1, vocab]), device)
}

impl<B: WhisperBackend> DeviceRules<B> {
    pub fn new(filters: &LogitFilters, device: &B::Device) -> Self {
        let vocab = filters.vocab_size();
        Self {
            always: token_mask(&filters.always_hidden(), vocab, device),
            at_start: token_mask(&filters.hidden_at_start(), vocab, device),
            ids: Tensor::<B, 1, Int>::arange(0..vocab as i64, device).reshape([1, vocab]),
            filters: filters.clone(),
            vocab,
        }
    }

    /// `[m, vocab]`: what the rules hide for each context.
    fn hidden(&self, contexts: &[&[u32]], device: &B::Device) -> Tensor<B, 2, Bool> {
        let (m, v) = (contexts.len(), self.vocab);
        let starts: Vec<bool> = contexts.iter().map(|c| c.is_empty()).collect();
        let starts = Tensor::<B, 2, Bool>::from_data(TensorData::new(starts, [m, 1]), device);
        let mut hidden = self.always.clone().expand([m, v]).bool_or(
            starts
                .expand([m, v])
                .bool_and(self.at_start.clone().expand([m, v])),
        );
        let mut bounds: Vec<i64> = Vec::with_capacity(m * 4);
        for c in contexts {
            for r in self.filters.hidden_ranges(c, v) {
                bounds.extend([r.start as i64, r.end as i64]);
            }
        }
        let bounds = Tensor::<B, 2, Int>::from_data(TensorData::new(bounds, [m, 4]), device);
        let ids = self.ids.clone().expand([m, v]);
        for k in 0..2 {
            let lo = bounds
                .clone()
                .slice([0..m, 2 * k..2 * k + 1])
                .expand([m, v]);
            let hi = bounds
                .clone()
                .slice([0..m, 2 * k + 1..2 * k + 2])
                .expand([m, v]);
            let inside = ids
                .clone()
                .greater_equal(lo)
                .bool_and(ids.clone().lower(hi));
            hidden = hidden.bool_or(inside);
        }
        hidden
    }

    /// Chooses the greedy token of each row of `logits` (`[m, vocab]`) after the rules
    /// for `contexts[i]` (the tokens generated before row `i`'s position). With a probe
    /// (`[m, vocab]` unfiltered logits and a token), also that token's probability.
    /// One device-to-host transfer.
    pub fn decide(
        &self,
        logits: Tensor<B, 2>,
        contexts: &[&[u32]],
        probe: Option<(Tensor<B, 2>, u32)>,
    ) -> Result<Vec<Decision>> {
        self.decide_drawing(logits, contexts, &[], probe)
    }

    /// As [`Self::decide`], with row `i` drawn at `draws[i]` = `(temperature, uniform)`
    /// instead of its argmax where given (missing or `None`: greedy): inverse CDF of
    /// `softmax(filtered / temperature)`, as the host's [`super::sampling::draw`]. The
    /// log-probability stays the untempered one, as in Whisper.
    pub fn decide_drawing(
        &self,
        logits: Tensor<B, 2>,
        contexts: &[&[u32]],
        draws: &[Option<(f32, f64)>],
        probe: Option<(Tensor<B, 2>, u32)>,
    ) -> Result<Vec<Decision>> {
        let [m, v] = logits.dims();
        if m != contexts.len() || v != self.vocab {
            return Err(WhisperError::Decode(format!(
                "{m} x {v} logits for {} contexts of a {}-token vocabulary",
                contexts.len(),
                self.vocab
            )));
        }
        let device = logits.device();
        let mut logits = logits.mask_fill(self.hidden(contexts, &device), f32::NEG_INFINITY);
        if let Some(tb) = self.filters.timestamp_begin() {
            logits = self.prefer_timestamps(logits, tb as usize);
        }
        let mut token = logits.clone().argmax(1);
        if draws.iter().any(Option::is_some) {
            token = self.draw(logits.clone(), draws, token);
        }
        let logprob = log_softmax_rows(logits).gather(1, token.clone());
        let mut columns = vec![token.float(), logprob];
        if let Some((raw, t)) = probe {
            let t = (t as usize).min(v - 1);
            columns.push(log_softmax_rows(raw).slice([0..m, t..t + 1]).exp());
        }
        let n = columns.len();
        let values = read_rows(Tensor::cat(columns, 1))?;
        Ok(values
            .chunks(n)
            .map(|c| Decision {
                token: c[0] as u32,
                logprob: c[1],
                probe_prob: c.get(2).copied().unwrap_or(0.0),
            })
            .collect())
    }

    /// The `k` best filtered log-probabilities of each row of `logits` (`[m, vocab]`,
    /// row `i` after `contexts[i]`) with their token ids, best first, for beam search;
    /// with a probe (as [`Self::decide`]) also that token's probability per row. One
    /// device-to-host transfer.
    pub fn top_log_probs(
        &self,
        logits: Tensor<B, 2>,
        contexts: &[&[u32]],
        k: usize,
        probe: Option<(Tensor<B, 2>, u32)>,
    ) -> Result<(Vec<TopLogProbs>, Vec<f32>)> {
        let [m, v] = logits.dims();
        if m != contexts.len() || v != self.vocab || k == 0 || k > v {
            return Err(WhisperError::Decode(format!(
                "top {k} of {m} x {v} logits for {} contexts of a {}-token vocabulary",
                contexts.len(),
                self.vocab
            )));
        }
        let device = logits.device();
        let mut logits = logits.mask_fill(self.hidden(contexts, &device), f32::NEG_INFINITY);
        if let Some(tb) = self.filters.timestamp_begin() {
            logits = self.prefer_timestamps(logits, tb as usize);
        }
        let (values, ids) = log_softmax_rows(logits).topk_with_indices(k, 1);
        let mut columns = vec![values, ids.float()];
        if let Some((raw, t)) = probe {
            let t = (t as usize).min(v - 1);
            columns.push(log_softmax_rows(raw).slice([0..m, t..t + 1]).exp());
        }
        let width = columns.iter().map(|c| c.dims()[1]).sum::<usize>();
        let values = read_rows(Tensor::cat(columns, 1))?;
        let tops = values
            .chunks(width)
            .map(|r| (0..k).map(|j| (r[k + j] as u32, r[j])).collect())
            .collect();
        let probe_probs = values
            .chunks(width)
            .map(|r| r.get(2 * k).copied().unwrap_or(0.0))
            .collect();
        Ok((tops, probe_probs))
    }

    /// Each drawing row's token (`[m, 1]`), by inverse CDF over the cumulative sum of
    /// `exp((x - max) / T)`: the first token whose cumulative weight exceeds `u * total`,
    /// never past the last token of non-zero weight. Greedy rows keep `argmax`.
    fn draw(
        &self,
        logits: Tensor<B, 2>,
        draws: &[Option<(f32, f64)>],
        argmax: Tensor<B, 2, Int>,
    ) -> Tensor<B, 2, Int> {
        let [m, v] = logits.dims();
        let device = logits.device();
        let column = |f: &dyn Fn(Option<(f32, f64)>) -> f32| {
            let values: Vec<f32> = (0..m).map(|i| f(draws.get(i).copied().flatten())).collect();
            Tensor::<B, 2>::from_data(TensorData::new(values, [m, 1]), &device)
        };
        let temperature = column(&|d| d.map_or(1.0, |(t, _)| t));
        // The largest f32 below 1 at most, so the target stays inside the total.
        let uniform = column(&|d| d.map_or(0.0, |(_, u)| (u as f32).min(1.0 - f32::EPSILON / 2.0)));
        let drawing = column(&|d| if d.is_some() { 1.0 } else { 0.0 }).equal_elem(1.0);
        let max = logits.clone().max_dim(1).clamp_min(-1e30);
        let weights = ((logits - max) / temperature).exp();
        let cumulative = weights.clone().cumsum(1);
        let total = cumulative.clone().slice([0..m, v - 1..v]);
        let target = (total * uniform).expand([m, v]);
        let below = cumulative.lower_equal(target).int().sum_dim(1);
        let ids = self.ids.clone().expand([m, v]);
        let last_weighted = ids.mask_fill(weights.equal_elem(0.0), -1).max_dim(1);
        let sampled = below
            .clone()
            .mask_where(below.greater(last_weighted.clone()), last_weighted);
        argmax.mask_where(drawing, sampled)
    }

    /// The timestamp rule that reads the logits: where the total probability of the
    /// timestamps beats the most probable text token, every text token is hidden.
    fn prefer_timestamps(&self, logits: Tensor<B, 2>, tb: usize) -> Tensor<B, 2> {
        let [m, v] = logits.dims();
        let ts_mass = logsumexp_rows(logits.clone().slice([0..m, tb..v]));
        let text_max = logits.clone().slice([0..m, 0..tb]).max_dim(1);
        let prefer = ts_mass.greater(text_max).expand([m, v]);
        let text = self.ids.clone().lower_elem(tb as i64).expand([m, v]);
        logits.mask_fill(prefer.bool_and(text), f32::NEG_INFINITY)
    }
}

/// A small tensor of results, read back in one counted transfer.
fn read_rows<B: WhisperBackend>(t: Tensor<B, 2>) -> Result<Vec<f32>> {
    let values = t
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| WhisperError::Decode(format!("reading decisions: {e:?}")))?;
    count_download();
    Ok(values)
}

/// `log(sum(exp(x)))` per row (`[m, n]` -> `[m, 1]`); `-inf` for a row of `-inf`.
fn logsumexp_rows<B: WhisperBackend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let max = x.clone().max_dim(1).clamp_min(-1e30);
    (x - max.clone()).exp().sum_dim(1).log() + max
}

fn log_softmax_rows<B: WhisperBackend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let lse = logsumexp_rows(x.clone());
    x - lse
}
