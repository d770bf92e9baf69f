//! The draft side: anything that proposes the next tokens of a sequence.
use crate::error::Result;
use burn::prelude::*;
use whisper_burn::backend::WhisperBackend;
use whisper_burn::decoding::logit_filters::{argmax, log_prob};
use whisper_burn::decoding::sampling::{draw, probabilities, RowSampler};
use whisper_burn::decoding::{DecodeRequest, LogitFilters};
use whisper_burn::{DecoderState, Whisper};

/// A row's proposed tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Proposal {
    pub tokens: Vec<u32>,
}

impl Proposal {
    /// Appends the draft's choice from its filtered `logits` for request `q`: the greedy
    /// token, or one drawn at the temperature. Returns `None` (nothing appended) when
    /// the draft's probability of its choice is below `q.min_confidence` and something
    /// was already proposed.
    pub fn choose(&mut self, logits: &[f32], q: &ProposeRequest) -> Option<u32> {
        let (token, confidence) = Self::pick(logits, q, self.tokens.len());
        self.push(token, confidence, q).then_some(token)
    }

    /// The draft's choice from its filtered `logits` for the `n`-th proposed token of
    /// request `q`, with its probability (1 for greedy without a confidence floor).
    pub fn pick(logits: &[f32], q: &ProposeRequest, n: usize) -> (u32, f32) {
        match &q.sampling {
            None => {
                let t = argmax(logits);
                let confidence = if q.min_confidence > 0.0 {
                    log_prob(logits, t).exp()
                } else {
                    1.0
                };
                (t, confidence)
            }
            Some(s) => {
                let p = probabilities(logits, s.temperature);
                let position = q.committed.len() - q.prompt_len + n;
                let t = draw(&p, s.stream.uniform(position));
                (t, p[t as usize])
            }
        }
    }

    /// Appends `token`, of probability `confidence` under the draft, unless it is below
    /// `q.min_confidence` and something was already proposed (one rule for every draft).
    pub fn push(&mut self, token: u32, confidence: f32, q: &ProposeRequest) -> bool {
        if !self.tokens.is_empty() && confidence < q.min_confidence {
            return false;
        }
        self.tokens.push(token);
        true
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn truncate(&mut self, n: usize) {
        self.tokens.truncate(n);
    }
}

/// One row's request for proposals.
pub struct ProposeRequest<'a> {
    /// Row of the batch (index into the rows given to `begin`, not the active list).
    pub row: usize,
    /// The committed sequence: prompt followed by the generated tokens.
    pub committed: &'a [u32],
    /// Where the generated tokens start in `committed`.
    pub prompt_len: usize,
    /// Largest number of tokens to propose.
    pub max_tokens: usize,
    /// Stop proposing once the draft's top probability is below this.
    pub min_confidence: f32,
    /// End-of-text: nothing is proposed after it.
    pub eot: u32,
    /// The row's sampler when sampling: each token is drawn from the draft's tempered
    /// distribution with the uniform the main model will use at that position, so the
    /// draft proposes what the main model will draw wherever their distributions agree.
    pub sampling: Option<RowSampler>,
}

/// A draft model. It keeps its own per-row cache and re-synchronises with the committed
/// sequence on each call (rolling back what the main model rejected).
pub trait Proposer<B: WhisperBackend> {
    /// Starts a batch of windows. `main_state` is the main model's state after prefill
    /// (its cross-attention keys/values may be shared).
    fn begin(
        &mut self,
        main: &Whisper<B>,
        main_state: &DecoderState<B>,
        encoder_out: &Tensor<B, 3>,
        req: &DecodeRequest,
    ) -> Result<()>;

    /// Proposes tokens for each request, applying `filters` to its own logits.
    fn propose(
        &mut self,
        requests: &[ProposeRequest],
        filters: &LogitFilters,
    ) -> Result<Vec<Proposal>>;
}
