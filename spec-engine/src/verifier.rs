//! The main-model side: check a row's proposals in one forward pass and keep the longest
//! agreeing prefix plus the main model's own next token. When sampling, the main
//! model's token at each position is its own draw with that position's uniform (as
//! plain sampling draws it), and a proposal is kept when it equals that draw.
use crate::error::Result;
use whisper_burn::backend::WhisperBackend;
use whisper_burn::decoding::device::Decision;
use whisper_burn::decoding::greedy::{choose_on_host, device_draws, host_rows, Chooser};
use whisper_burn::decoding::sampling::RowSampler;
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
    chooser: &Chooser<B>,
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
    let logits = model.decoder.logits(hidden);
    let Chooser::Device(device_rules) = chooser else {
        let mut logits = host_rows(logits)?;
        return Ok(rows
            .iter()
            .zip(logits.chunks_mut(n_new))
            .map(|(r, row_logits)| judge(row_logits, r, filters))
            .collect());
    };
    // On the device every position is decided at once, each after the context it has if
    // the proposals before it are kept (positions after a rejection are ignored).
    let contexts: Vec<Vec<u32>> = rows
        .iter()
        .flat_map(|r| {
            (0..n_new).map(move |pos| {
                let mut c = r.generated.to_vec();
                c.extend_from_slice(&r.proposals[..pos.min(r.proposals.len())]);
                c
            })
        })
        .collect();
    let refs: Vec<&[u32]> = contexts.iter().map(|c| c.as_slice()).collect();
    let samplers: Vec<Option<&RowSampler>> = rows
        .iter()
        .flat_map(|r| std::iter::repeat_n(r.sampling.as_ref(), n_new))
        .collect();
    let draws = device_draws(&refs, &samplers);
    let [b, t, v] = logits.dims();
    let decided = device_rules.decide_drawing(logits.reshape([b * t, v]), &refs, &draws, None)?;
    Ok(rows
        .iter()
        .zip(decided.chunks(n_new))
        .map(|(r, d)| judge_decided(d, r))
        .collect())
}

/// Accepts proposals while the main model's own choice (greedy, or its draw at that
/// position) agrees: the one acceptance rule, whichever side chose the tokens.
/// `choose_at(pos, context)` is the main model's `(token, log-prob)` at position `pos`
/// after `context` (the generated tokens plus the proposals kept so far).
fn accept_while_equal(
    row: &VerifyRow,
    mut choose_at: impl FnMut(usize, &[u32]) -> (u32, f32),
) -> Verdict {
    let mut generated = row.generated.to_vec();
    let mut v = Verdict {
        tokens: Vec::new(),
        logprobs: Vec::new(),
        accepted: 0,
    };
    for pos in 0..=row.proposals.len() {
        let (token, logprob) = choose_at(pos, &generated);
        v.tokens.push(token);
        v.logprobs.push(logprob);
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

/// [`accept_while_equal`] over host logits (one row's positions): each position is
/// filtered and chosen on the host only when reached.
fn judge(logits: &mut [Vec<f32>], row: &VerifyRow, filters: &LogitFilters) -> Verdict {
    accept_while_equal(row, |pos, context| {
        choose_on_host(&mut logits[pos], context, row.sampling.as_ref(), filters)
    })
}

/// [`accept_while_equal`] over choices made on the device for every position.
fn judge_decided(decided: &[Decision], row: &VerifyRow) -> Verdict {
    accept_while_equal(row, |pos, _| (decided[pos].token, decided[pos].logprob))
}
