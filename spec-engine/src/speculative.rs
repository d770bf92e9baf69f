//! Speculative decoding as a [`WindowDecoder`]: propose, verify, commit, roll back.
//! Every row of the batch accepts its own number of tokens per step; finished rows
//! leave the batch. Greedy requests give greedy's tokens exactly, and sampled ones
//! (temperature > 0) plain sampling's tokens for the same seed exactly: draft and main
//! model draw each position with the same uniform.
use crate::cost::{CostModel, RowHistory};
use crate::policy::{DraftLength, LengthController};
use crate::proposer::{Proposal, ProposeRequest, Proposer};
use crate::stats::SpecStats;
use crate::verifier::{verify, Verdict, VerifyRow};
use burn::prelude::*;
use std::marker::PhantomData;
use std::time::Instant;
use whisper_burn::backend::WhisperBackend;
use whisper_burn::decoding::greedy::{prefill_choose, Chooser};
use whisper_burn::decoding::sampling::RowSampler;
use whisper_burn::decoding::{DecodeRequest, SequenceResult, StopRule, WindowDecoder};
use whisper_burn::DecoderState;
use whisper_burn::{Result as WResult, Whisper, WhisperError};

/// A proposer plus a draft-length policy.
pub struct SpeculativeDecoder<B: WhisperBackend, P: Proposer<B>> {
    proposer: P,
    policy: DraftLength,
    /// Sum over every sequence decoded so far.
    pub totals: SpecStats,
    /// Measured draft and verification costs (recorded on every pass; the adaptive policy
    /// reads them).
    pub costs: CostModel,
    _b: PhantomData<B>,
}

struct Row {
    result: SequenceResult,
    ctrl: LengthController,
    history: RowHistory,
    done: bool,
    /// The row's sampler (`None`: greedy).
    sampler: Option<RowSampler>,
    stop: StopRule,
}

impl<B: WhisperBackend, P: Proposer<B>> SpeculativeDecoder<B, P> {
    pub fn new(proposer: P, policy: DraftLength) -> Self {
        Self::with_costs(proposer, policy, CostModel::default())
    }

    /// Starts from costs measured by an earlier decoder on the same device.
    pub fn with_costs(proposer: P, policy: DraftLength, costs: CostModel) -> Self {
        Self {
            proposer,
            policy,
            totals: SpecStats::default(),
            costs,
            _b: PhantomData,
        }
    }

    /// Prefill, then propose → verify → accept until every row has stopped.
    fn run(
        &mut self,
        model: &Whisper<B>,
        encoder_out: Tensor<B, 3>,
        req: &DecodeRequest,
    ) -> crate::Result<Vec<SequenceResult>> {
        let trace = Trace::from_env();
        let chooser = Chooser::for_request(model, req);
        let (mut state, mut rows, mut active) =
            self.start(model, encoder_out, req, &chooser, &trace)?;
        let max_pos = model.config.max_target_positions;
        while !active.is_empty() {
            let (proposals, draft_s_per_row) =
                self.propose(&rows, &active, req, &state, max_pos)?;
            let (verdicts, main_s) =
                verify_proposals(model, &mut state, &rows, &active, &proposals, req, &chooser)?;
            let longest = proposals.iter().map(Proposal::len).max().unwrap_or(0);
            self.record_costs(active.len(), longest, draft_s_per_row, main_s, &trace);
            let pass = Pass {
                proposals: &proposals,
                verdicts: &verdicts,
                longest,
                draft_s_per_row,
                main_s,
            };
            active = self.accept(&mut rows, &mut state, &active, &pass);
        }
        trace.totals(&self.totals);
        Ok(rows.into_iter().map(|r| r.result).collect())
    }

    /// Prefills the main model, starts the draft, and commits each row's first token.
    /// Returns the state, the rows and the rows still going (their slots in the state).
    fn start(
        &mut self,
        model: &Whisper<B>,
        encoder_out: Tensor<B, 3>,
        req: &DecodeRequest,
        chooser: &Chooser<B>,
        trace: &Trace,
    ) -> crate::Result<(DecoderState<B>, Vec<Row>, Vec<usize>)> {
        let t0 = Instant::now();
        let (mut state, first, no_speech) =
            prefill_choose(model, encoder_out.clone(), req, chooser)?;
        let t1 = Instant::now();
        self.proposer.begin(model, &state, &encoder_out, req)?;
        trace.start(t1 - t0, t1.elapsed());
        let max_pos = model.config.max_target_positions;
        let mut rows: Vec<Row> = no_speech
            .iter()
            .enumerate()
            .map(|(r, p)| Row {
                result: SequenceResult {
                    no_speech_prob: *p,
                    main_passes: 1,
                    ..Default::default()
                },
                ctrl: LengthController::new(&self.policy),
                history: RowHistory::default(),
                done: false,
                sampler: req.sampler(r),
                stop: req.stop_rule(r, max_pos),
            })
            .collect();
        for (row, (t, logprob)) in rows.iter_mut().zip(first) {
            commit(row, &[t], &[logprob]);
        }
        let active: Vec<usize> = (0..rows.len()).filter(|i| !rows[*i].done).collect();
        if active.len() != rows.len() {
            state.select_rows(&active);
        }
        Ok((state, rows, active))
    }

    /// Feeds the measured costs of one pass to the cost model (the adaptive policy's input).
    fn record_costs(
        &mut self,
        rows: usize,
        longest: usize,
        draft_s_per_row: f64,
        main_s: f64,
        trace: &Trace,
    ) {
        let draft_pass_s = draft_s_per_row * rows as f64;
        self.costs
            .record(rows, longest, draft_pass_s, rows * (longest + 1), main_s);
        trace.pass(rows, longest, draft_pass_s, main_s);
    }

    /// Commits each row's verdict, rolls its cache back to the accepted prefix, and drops
    /// the rows that stopped. Returns the rows still going.
    fn accept(
        &mut self,
        rows: &mut [Row],
        state: &mut DecoderState<B>,
        active: &[usize],
        pass: &Pass,
    ) -> Vec<usize> {
        let mut keep = Vec::new();
        for (slot, (r, v)) in active.iter().zip(pass.verdicts).enumerate() {
            let row = &mut rows[*r];
            row.result.draft_s += pass.draft_s_per_row;
            record(
                row,
                pass.proposals[slot].len(),
                v,
                pass.main_s / active.len() as f64,
                &mut self.totals,
            );
            commit(row, &v.tokens, &v.logprobs);
            // The pass fed the pending token and `longest` proposals; keep the pending
            // token's entry and the accepted ones.
            let fed_valid = state.len(slot) - (pass.longest + 1) + 1 + v.accepted;
            state.truncate(slot, fed_valid);
            if !row.done {
                keep.push(slot);
            }
        }
        if keep.len() != active.len() {
            state.select_rows(&keep);
        }
        keep.iter().map(|s| active[*s]).collect()
    }

    fn propose(
        &mut self,
        rows: &[Row],
        active: &[usize],
        req: &DecodeRequest,
        state: &whisper_burn::DecoderState<B>,
        max_pos: usize,
    ) -> crate::Result<(Vec<Proposal>, f64)> {
        let t = Instant::now();
        let max_start = (0..active.len()).map(|s| state.len(s)).max().unwrap_or(0);
        let room = max_pos.saturating_sub(max_start + 1);
        let committed: Vec<Vec<u32>> = active
            .iter()
            .map(|r| {
                req.prompts[*r]
                    .iter()
                    .chain(&rows[*r].result.tokens)
                    .copied()
                    .collect()
            })
            .collect();
        let wanted: Vec<usize> = active
            .iter()
            .map(|r| {
                let row = &rows[*r];
                let budget = req.max_new_tokens.saturating_sub(row.result.tokens.len());
                row.ctrl.next_len().min(budget).min(room)
            })
            .collect();
        let cap = match self.policy {
            DraftLength::Adaptive { max, .. } => {
                let histories: Vec<RowHistory> = active.iter().map(|r| rows[*r].history).collect();
                self.costs.best_cap(&histories, &wanted, max).unwrap_or(max)
            }
            DraftLength::Fixed(_) => usize::MAX,
        };
        let requests: Vec<ProposeRequest> = active
            .iter()
            .zip(&committed)
            .zip(&wanted)
            .map(|((r, c), w)| ProposeRequest {
                row: *r,
                committed: c,
                prompt_len: req.prompts[*r].len(),
                max_tokens: (*w).min(cap),
                min_confidence: rows[*r].ctrl.min_confidence(),
                eot: req.eot,
                sampling: rows[*r].sampler,
            })
            .collect();
        let mut out = self.proposer.propose(&requests, req.filters)?;
        for (p, q) in out.iter_mut().zip(&requests) {
            p.truncate(q.max_tokens);
        }
        let per_row = t.elapsed().as_secs_f64() / active.len().max(1) as f64;
        self.totals.draft_s += per_row * active.len() as f64;
        Ok((out, per_row))
    }
}

fn record(row: &mut Row, drafted: usize, v: &Verdict, main_s: f64, totals: &mut SpecStats) {
    row.result.drafted += drafted;
    row.result.accepted += v.accepted;
    row.result.main_passes += 1;
    row.ctrl.update(drafted, v.accepted);
    row.history.accepted += v.accepted;
    row.history.rejections += usize::from(v.accepted < drafted);
    totals.drafted += drafted;
    totals.accepted += v.accepted;
    totals.main_passes += 1;
    totals.committed += v.tokens.len();
    totals.main_s += main_s;
}

/// Appends the main model's tokens under the window's one stop rule
/// ([`SequenceResult::commit`], which greedy decoding uses too).
fn commit(row: &mut Row, tokens: &[u32], logprobs: &[f32]) {
    for (t, lp) in tokens.iter().zip(logprobs) {
        if !row.result.commit(*t, *lp, &row.stop) {
            row.done = true;
            return;
        }
    }
}

/// One verification pass over the rows still going.
struct Pass<'a> {
    proposals: &'a [Proposal],
    verdicts: &'a [Verdict],
    /// Longest proposal: every row was fed this many tokens plus its pending one.
    longest: usize,
    draft_s_per_row: f64,
    main_s: f64,
}

/// Runs the main model once over each row's pending token and proposals; returns the
/// verdicts and the seconds it took.
fn verify_proposals<B: WhisperBackend>(
    model: &Whisper<B>,
    state: &mut DecoderState<B>,
    rows: &[Row],
    active: &[usize],
    proposals: &[Proposal],
    req: &DecodeRequest,
    chooser: &Chooser<B>,
) -> crate::Result<(Vec<Verdict>, f64)> {
    let t = Instant::now();
    let verify_rows: Vec<VerifyRow> = active
        .iter()
        .zip(proposals)
        .map(|(r, p)| VerifyRow {
            pending: *rows[*r].result.tokens.last().unwrap_or(&req.eot),
            proposals: &p.tokens,
            generated: &rows[*r].result.tokens,
            sampling: rows[*r].sampler,
        })
        .collect();
    let verdicts = verify(model, state, &verify_rows, req.filters, chooser, req.eot)?;
    Ok((verdicts, t.elapsed().as_secs_f64()))
}

/// `SPEC_DEBUG=1`: per-pass timings on stderr.
struct Trace {
    enabled: bool,
    t0: Instant,
}

impl Trace {
    fn from_env() -> Self {
        Self {
            enabled: std::env::var_os("SPEC_DEBUG").is_some(),
            t0: Instant::now(),
        }
    }

    fn start(&self, prefill: std::time::Duration, draft_begin: std::time::Duration) {
        if self.enabled {
            eprintln!(
                "prefill {:.1} ms, draft begin {:.1} ms",
                prefill.as_secs_f64() * 1e3,
                draft_begin.as_secs_f64() * 1e3
            );
        }
    }

    fn pass(&self, rows: usize, longest: usize, draft_s: f64, main_s: f64) {
        if self.enabled {
            eprintln!(
                "pass: rows {rows} longest {longest} draft {:.1} ms verify {:.1} ms",
                draft_s * 1e3,
                main_s * 1e3
            );
        }
    }

    fn totals(&self, totals: &SpecStats) {
        if self.enabled {
            eprintln!(
                "spec totals: {totals:?}; run {:.1} ms",
                self.t0.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}

impl<B: WhisperBackend, P: Proposer<B>> WindowDecoder<B> for SpeculativeDecoder<B, P> {
    fn decode(
        &mut self,
        model: &Whisper<B>,
        encoder_out: Tensor<B, 3>,
        req: &DecodeRequest,
    ) -> WResult<Vec<SequenceResult>> {
        self.run(model, encoder_out, req).map_err(|e| match e {
            crate::SpecError::Whisper(w) => w,
            other => WhisperError::Decode(other.to_string()),
        })
    }
}
