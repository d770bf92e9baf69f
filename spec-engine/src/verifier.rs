//! The main-model side: check a row's proposals in one forward pass and keep the longest
//! agreeing prefix plus the main model's own next token. When sampling, the main
//! model's token at each position is its own draw with that position's uniform (as
//! plain sampling draws it), and a proposal is kept when it equals that draw.
use crate::error::Result;
use whisper_burn::backend::WhisperBackend;
use whisper_burn::decoding::greedy::host_rows;
use whisper_burn::decoding::logit_filters::log_prob;
use whisper_burn::decoding::sampling::{choose_token, RowSampler};
use whisper_burn::decoding::LogitFilters;
use whisper_burn::{DecoderState, Whisper};

/// What the main model decided for one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The main model's greedy tokens, position by position, up to and including the
    /// first one that differs from the proposal (or the one after the last proposal).
    pub tokens: Vec<u32>,
    /// Log-probability of each of `tokens` under the filtered main logits.
    pub logprobs: Vec<f32>,
    /// How many proposals matched.
    pub accepted: usize,
}

/// One row to verify: the token not yet fed to the main model, the proposals, and the
/// tokens generated so far (for the logit rules).
pub struct VerifyRow<'a> {
    pub pending: u32,
    pub proposals: &'a [u32],
    pub generated: &'a [u32],
    /// The row's sampler (`None`: greedy).
    pub sampling: Option<RowSampler>,
}

/// Feeds `[pending, proposals...]` of every row (padded to one length) through the main
/// decoder, then judges each position with the same rules as greedy decoding.
/// The state advances by the padded length; the caller rolls each row back.
pub fn verify<B: WhisperBackend>(
    model: &Whisper<B>,
    state: &mut DecoderState<B>,
    rows: &[VerifyRow],
    filters: &LogitFilters,
    pad: u32,
) -> Result<Vec<Verdict>> {
    let n_new = rows
        .iter()
        .map(|r| r.proposals.len() + 1)
        .max()
        .unwrap_or(1);
    let feeds: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| {
            let mut f = Vec::with_capacity(n_new);
            f.push(r.pending);
            f.extend_from_slice(r.proposals);
            f.resize(n_new, pad);
            f
        })
        .collect();
    let hidden = model.decoder.forward(&feeds, state)?;
    let mut logits = host_rows(model.decoder.logits(hidden))?;
    Ok(rows
        .iter()
        .zip(logits.chunks_mut(n_new))
        .map(|(r, row_logits)| judge(row_logits, r, filters))
        .collect())
}

/// Accepts proposals while the main model's own choice (greedy, or its draw at that
/// position) agrees.
fn judge(logits: &mut [Vec<f32>], row: &VerifyRow, filters: &LogitFilters) -> Verdict {
    let mut generated = row.generated.to_vec();
    let mut v = Verdict {
        tokens: Vec::new(),
        logprobs: Vec::new(),
        accepted: 0,
    };
    for (pos, l) in logits.iter_mut().take(row.proposals.len() + 1).enumerate() {
        filters.apply(l, &generated);
        let token = choose_token(row.sampling.as_ref(), l, generated.len());
        v.tokens.push(token);
        v.logprobs.push(log_prob(l, token));
        match row.proposals.get(pos) {
            Some(p) if *p == token => {
                v.accepted += 1;
                generated.push(token);
            }
            _ => break,
        }
    }
    v
}
