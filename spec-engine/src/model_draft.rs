//! A separate smaller Whisper (same tokenizer) as the draft, run with the burn backend.
use crate::compat::same_encoder;
use crate::error::Result;
use crate::proposer::{Proposal, ProposeRequest, Proposer};
use burn::prelude::*;
use std::sync::Arc;
use whisper_burn::backend::WhisperBackend;
use whisper_burn::decoding::greedy::host_rows;
use whisper_burn::decoding::{DecodeRequest, LogitFilters};
use whisper_burn::{DecoderState, Pipeline, Whisper};

/// The draft model and whether it shares the main encoder.
pub struct ModelDraft<B: WhisperBackend> {
    pub pipeline: Pipeline<B>,
    pub shares_encoder: bool,
}

impl<B: WhisperBackend> ModelDraft<B> {
    pub fn new(pipeline: Pipeline<B>, main: &Pipeline<B>) -> Self {
        let shares_encoder = same_encoder(main, &pipeline);
        Self {
            pipeline,
            shares_encoder,
        }
    }

    pub fn proposer(self: &Arc<Self>) -> ModelProposer<B> {
        ModelProposer {
            draft: self.clone(),
            rows: Vec::new(),
        }
    }
}

struct RowCache<B: WhisperBackend> {
    state: DecoderState<B>,
    /// Tokens whose keys/values are in `state`.
    cached: Vec<u32>,
}

/// Per-batch state of a [`ModelDraft`].
pub struct ModelProposer<B: WhisperBackend> {
    draft: Arc<ModelDraft<B>>,
    rows: Vec<RowCache<B>>,
}

impl<B: WhisperBackend> Proposer<B> for ModelProposer<B> {
    fn begin(
        &mut self,
        _main: &Whisper<B>,
        _main_state: &DecoderState<B>,
        encoder_out: &Tensor<B, 3>,
        req: &DecodeRequest,
    ) -> Result<()> {
        let model = &self.draft.pipeline.model;
        let enc = if self.draft.shares_encoder {
            encoder_out.clone()
        } else {
            model.encode(req.mel_windows)?
        };
        let [b, f, d] = enc.dims();
        self.rows = (0..b)
            .map(|r| RowCache {
                state: model
                    .decoder
                    .new_state(enc.clone().slice([r..r + 1, 0..f, 0..d])),
                cached: Vec::new(),
            })
            .collect();
        Ok(())
    }

    fn propose(
        &mut self,
        requests: &[ProposeRequest],
        filters: &LogitFilters,
    ) -> Result<Vec<Proposal>> {
        let model = &self.draft.pipeline.model;
        requests
            .iter()
            .map(|q| propose_row(model, &mut self.rows[q.row], q, filters))
            .collect()
    }
}

fn propose_row<B: WhisperBackend>(
    model: &Whisper<B>,
    row: &mut RowCache<B>,
    q: &ProposeRequest,
    filters: &LogitFilters,
) -> Result<Proposal> {
    let mut out = Proposal::default();
    if q.max_tokens == 0 {
        return Ok(out);
    }
    let common = row
        .cached
        .iter()
        .zip(q.committed)
        .take_while(|(a, b)| a == b)
        .count();
    let keep = common.min(q.committed.len() - 1);
    row.state.truncate(0, keep);
    row.cached.truncate(keep);
    let mut feed = q.committed[keep..].to_vec();
    let mut generated = q.committed[q.prompt_len..].to_vec();
    while out.len() < q.max_tokens {
        let hidden = model.decoder.forward(&[feed.clone()], &mut row.state)?;
        row.cached.extend_from_slice(&feed);
        let n = feed.len();
        let d = hidden.dims()[2];
        let last = hidden.slice([0..1, n - 1..n, 0..d]);
        let mut logits = host_rows(model.decoder.logits(last))?.remove(0);
        filters.apply(&mut logits, &generated);
        let Some(t) = out.choose(&logits, q) else {
            break;
        };
        generated.push(t);
        if t == q.eot {
            break;
        }
        feed = vec![t];
    }
    Ok(out)
}
