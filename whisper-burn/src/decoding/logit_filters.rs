//! Whisper's rules on next-token logits: suppressed tokens, blank suppression at the
//! start, and the timestamp rules. Pure functions of the generated tokens, so greedy,
//! beam search and speculative verification apply exactly the same rules.
use crate::tokenizer::WhisperTokenizer;
use std::ops::Range;

/// Seconds per timestamp token.
pub const TIMESTAMP_STEP_S: f32 = 0.02;
/// Largest first timestamp, in timestamp steps (1.0 s, as Whisper).
pub const MAX_INITIAL_TIMESTAMP_STEPS: u32 = 50;

/// The rules for one decode (one prompt configuration).
#[derive(Debug, Clone)]
pub struct LogitFilters {
    suppress: Vec<u32>,
    begin_suppress: Vec<u32>,
    suppress_blank: bool,
    timestamps: Option<TimestampRules>,
    vocab_size: usize,
}

#[derive(Debug, Clone)]
struct TimestampRules {
    eot: u32,
    no_timestamps: u32,
    timestamp_begin: u32,
}

impl LogitFilters {
    pub fn new(
        tokenizer: &WhisperTokenizer,
        checkpoint_suppress: &[u32],
        begin_suppress: &[u32],
        suppress_blank: bool,
        timestamps: bool,
        vocab_size: usize,
    ) -> Self {
        let mut suppress: Vec<u32> = checkpoint_suppress.to_vec();
        suppress.extend(tokenizer.always_suppressed());
        suppress.retain(|t| (*t as usize) < vocab_size);
        suppress.sort_unstable();
        suppress.dedup();
        let mut begin: Vec<u32> = begin_suppress.to_vec();
        if begin.is_empty() {
            begin.extend(tokenizer.encode(" ").unwrap_or_default());
            begin.push(tokenizer.special.eot);
        }
        let s = &tokenizer.special;
        Self {
            suppress,
            begin_suppress: begin,
            suppress_blank,
            timestamps: timestamps.then_some(TimestampRules {
                eot: s.eot,
                no_timestamps: s.no_timestamps,
                timestamp_begin: s.timestamp_begin,
            }),
            vocab_size,
        }
    }

    /// Applies every rule to `logits` (one position) given the tokens generated so far
    /// in this window (after the start sequence).
    pub fn apply(&self, logits: &mut [f32], generated: &[u32]) {
        for t in self.always_hidden() {
            logits[t as usize] = f32::NEG_INFINITY;
        }
        if generated.is_empty() {
            for t in self.hidden_at_start() {
                logits[t as usize] = f32::NEG_INFINITY;
            }
        }
        for r in self.hidden_ranges(generated, logits.len()) {
            logits[r].iter_mut().for_each(|l| *l = f32::NEG_INFINITY);
        }
        if let Some(rules) = &self.timestamps {
            rules.prefer_timestamps(logits);
        }
    }

    /// Tokens hidden at every position: the suppressed ones, and `<|notimestamps|>` when
    /// timestamps are on.
    pub fn always_hidden(&self) -> Vec<u32> {
        let mut v = self.suppress.clone();
        if let Some(r) = &self.timestamps {
            v.push(r.no_timestamps);
        }
        v
    }

    /// Tokens hidden at the first generated position (blank suppression).
    pub fn hidden_at_start(&self) -> Vec<u32> {
        if !self.suppress_blank {
            return Vec::new();
        }
        self.begin_suppress
            .iter()
            .copied()
            .filter(|t| (*t as usize) < self.vocab_size)
            .collect()
    }

    /// Token ranges the timestamp rules hide after `generated` (at most two; empty ranges
    /// where fewer apply), for a vocabulary of `n` tokens.
    pub fn hidden_ranges(&self, generated: &[u32], n: usize) -> [Range<usize>; 2] {
        match &self.timestamps {
            Some(rules) => rules.hidden_ranges(generated, n),
            None => [0..0, 0..0],
        }
    }

    /// The first timestamp token, when the timestamp rules are on (the device applies
    /// [`TimestampRules::prefer_timestamps`] from it).
    pub fn timestamp_begin(&self) -> Option<u32> {
        self.timestamps.as_ref().map(|r| r.timestamp_begin)
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

impl TimestampRules {
    fn hidden_ranges(&self, generated: &[u32], n: usize) -> [Range<usize>; 2] {
        let tb = self.timestamp_begin as usize;
        let mut out = [0..0, 0..0];
        let is_ts = |t: &u32| *t >= self.timestamp_begin;
        if generated.is_empty() {
            out[0] = 0..tb;
            let max_initial = tb + MAX_INITIAL_TIMESTAMP_STEPS as usize;
            if max_initial + 1 < n {
                out[1] = max_initial + 1..n;
            }
            return out;
        }
        let last_ts = generated.last().is_some_and(is_ts);
        let penultimate_ts = generated.len() < 2 || is_ts(&generated[generated.len() - 2]);
        if last_ts {
            out[0] = if penultimate_ts {
                tb..n
            } else {
                0..self.eot as usize
            };
        }
        if let Some(last) = generated.iter().rev().find(|t| is_ts(t)) {
            let floor = if last_ts && !penultimate_ts {
                *last
            } else {
                *last + 1
            };
            out[1] = tb..(floor as usize).min(n).max(tb);
        }
        out
    }

    /// If the probability mass on timestamps beats the best text token, force a timestamp.
    fn prefer_timestamps(&self, logits: &mut [f32]) {
        let tb = self.timestamp_begin as usize;
        let max_all = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        if !max_all.is_finite() {
            return;
        }
        let log_z = max_all + logits.iter().map(|l| (l - max_all).exp()).sum::<f32>().ln();
        let ts_max = logits[tb..]
            .iter()
            .cloned()
            .fold(f32::NEG_INFINITY, f32::max);
        if !ts_max.is_finite() {
            return;
        }
        let ts_logsum = ts_max
            + logits[tb..]
                .iter()
                .map(|l| (l - ts_max).exp())
                .sum::<f32>()
                .ln()
            - log_z;
        let text_max = logits[..tb]
            .iter()
            .cloned()
            .fold(f32::NEG_INFINITY, f32::max)
            - log_z;
        if ts_logsum > text_max {
            logits[..tb].iter_mut().for_each(|l| *l = f32::NEG_INFINITY);
        }
    }
}

/// Index of the largest value (first one on ties, as `argmax` in NumPy and CTranslate2).
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// `log_softmax(values)[index]`.
pub fn log_prob(values: &[f32], index: u32) -> f32 {
    crate::cpu::math::log_softmax_at(values, index as usize)
}
