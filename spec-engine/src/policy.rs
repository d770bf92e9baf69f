//! How many tokens the draft proposes per verification.
use serde::{Deserialize, Serialize};

/// Draft length policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DraftLength {
    /// Always propose `k` tokens.
    Fixed(usize),
    /// Grow on full acceptance, shrink on early rejection, and stop drafting when the
    /// draft's own top probability drops below `min_confidence`; the batch's length is
    /// also capped where measured draft and verification costs say longer drafts stop
    /// paying (see [`crate::cost`]); that cap may go below `min` (down to 1 token).
    Adaptive {
        start: usize,
        min: usize,
        max: usize,
        min_confidence: f32,
    },
}

impl Default for DraftLength {
    fn default() -> Self {
        DraftLength::Adaptive {
            start: 5,
            min: 2,
            max: 6,
            min_confidence: 0.1,
        }
    }
}

/// The per-sequence state of the policy.
#[derive(Debug, Clone)]
pub struct LengthController {
    policy: DraftLength,
    current: usize,
}

impl LengthController {
    pub fn new(policy: &DraftLength) -> Self {
        let current = match policy {
            DraftLength::Fixed(k) => (*k).max(1),
            DraftLength::Adaptive { start, .. } => (*start).max(1),
        };
        Self {
            policy: policy.clone(),
            current,
        }
    }

    /// Tokens to propose next.
    pub fn next_len(&self) -> usize {
        self.current
    }

    /// Draft stops early when its confidence falls below this (0 = never).
    pub fn min_confidence(&self) -> f32 {
        match &self.policy {
            DraftLength::Fixed(_) => 0.0,
            DraftLength::Adaptive { min_confidence, .. } => *min_confidence,
        }
    }

    /// Updates after a verification: `accepted` of `drafted` proposals were kept.
    pub fn update(&mut self, drafted: usize, accepted: usize) {
        if let DraftLength::Adaptive { min, max, .. } = &self.policy {
            if drafted > 0 && accepted == drafted {
                self.current = (self.current + 2).min(*max);
            } else if accepted + 1 < drafted / 2 {
                self.current = (self.current.saturating_sub(1)).max(*min);
            }
        }
    }
}
