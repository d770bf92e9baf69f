//! Per-sequence speculative statistics.
use serde::Serialize;

/// What speculation did for one sequence (or a sum over several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SpecStats {
    /// Tokens the draft proposed.
    pub drafted: usize,
    /// Proposed tokens the main model agreed with.
    pub accepted: usize,
    /// Verification passes of the main model.
    pub main_passes: usize,
    /// Tokens committed (accepted + the main model's own token per pass).
    pub committed: usize,
    pub draft_s: f64,
    pub main_s: f64,
}

impl SpecStats {
    pub fn acceptance_rate(&self) -> f64 {
        if self.drafted == 0 {
            0.0
        } else {
            self.accepted as f64 / self.drafted as f64
        }
    }

    /// Tokens committed per main-model pass (1.0 for plain greedy).
    pub fn tokens_per_pass(&self) -> f64 {
        if self.main_passes == 0 {
            0.0
        } else {
            self.committed as f64 / self.main_passes as f64
        }
    }

    pub fn add(&mut self, o: &SpecStats) {
        self.drafted += o.drafted;
        self.accepted += o.accepted;
        self.main_passes += o.main_passes;
        self.committed += o.committed;
        self.draft_s += o.draft_s;
        self.main_s += o.main_s;
    }
}
