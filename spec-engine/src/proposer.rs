//! The draft side: anything that proposes the next tokens of a sequence.
use crate::error::Result;
use burn::prelude::*;
use whisper_burn::decoding::{DecodeRequest, LogitFilters};
use whisper_burn::{DecoderState, Whisper};

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
}

/// A draft model. It keeps its own per-row cache and re-synchronises with the committed
/// sequence on each call (rolling back what the main model rejected).
pub trait Proposer<B: Backend> {
    /// Starts a batch of windows. `main_state` is the main model's state after prefill
    /// (its cross-attention keys/values may be shared).
    fn begin(&mut self, main: &Whisper<B>, main_state: &DecoderState<B>, encoder_out: &Tensor<B, 3>, req: &DecodeRequest) -> Result<()>;

    /// Proposes tokens for each request, applying `filters` to its own logits.
    fn propose(&mut self, requests: &[ProposeRequest], filters: &LogitFilters) -> Result<Vec<Vec<u32>>>;
}
