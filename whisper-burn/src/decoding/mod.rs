//! Decoding: Whisper's logit rules, greedy and beam search, long-form transcription.
pub mod beam;
pub mod device;
pub mod fallback;
pub mod greedy;
pub mod language;
pub mod logit_filters;
pub mod longform;
pub mod options;
pub mod sampling;
pub mod transfers;
pub mod words;

pub use greedy::{greedy_decode, DecodeRequest, SequenceResult, StopRule};
pub use logit_filters::LogitFilters;
pub use longform::{Segment, Transcript, WindowDecoder};
pub use options::DecodeOptions;
pub use sampling::Sampling;
pub use words::Word;

use crate::backend::WhisperBackend;
use crate::model::Whisper;
use crate::Result;
use burn::prelude::*;

/// Plain decoding as a [`WindowDecoder`]: greedy, or temperature sampling when the
/// request asks for it.
#[derive(Debug, Clone, Copy, Default)]
pub struct GreedyDecoder;

impl<B: WhisperBackend> WindowDecoder<B> for GreedyDecoder {
    fn decode(
        &mut self,
        model: &Whisper<B>,
        encoder_out: Tensor<B, 3>,
        req: &DecodeRequest,
    ) -> Result<Vec<SequenceResult>> {
        greedy_decode(model, encoder_out, req)
    }
}
