//! Measured costs of drafting and verifying, to cap the draft length of a batch where a
//! longer draft would cost more time than its expected extra tokens save. On a CPU,
//! verifying grows with the positions fed (rows x tokens) once the products turn
//! compute-bound, so the best length at batch 8 is shorter than at batch 1.
//!
//! Limits: a length is re-measured only when it is chosen, so one slow pass can keep a
//! length out of use until neighbouring measurements pull its interpolation back; and the
//! expected tokens assume a row proposes its whole length, while the confidence floor often
//! stops it earlier (which makes long caps cheaper than estimated, not costlier).

/// Weight of a new measurement in the running averages.
const EMA: f64 = 0.3;
/// Per-position acceptance assumed before a row has been verified (a pseudo-count of
/// `PRIOR_WEIGHT` observations).
const PRIOR_ACCEPT: f64 = 0.75;
const PRIOR_WEIGHT: f64 = 4.0;

/// Running averages of seconds per drafting pass (by rows drafted together, then by the
/// longest proposal: re-synchronising and per-call costs included) and per verification
/// (by positions fed), kept per engine (one process, one device).
#[derive(Debug, Clone, Default)]
pub struct CostModel {
    draft_s: Vec<Vec<Option<f64>>>,
    verify_s: Vec<Option<f64>>,
}

/// What one row has done so far, for its acceptance estimate.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowHistory {
    pub accepted: usize,
    /// Verifications that rejected a proposal.
    pub rejections: usize,
}

impl RowHistory {
    /// Probability that the main model accepts the next proposal given it accepted the
    /// ones before it.
    pub fn accept_prob(&self) -> f64 {
        let (a, r) = (self.accepted as f64, self.rejections as f64);
        (a + PRIOR_ACCEPT * PRIOR_WEIGHT) / (a + r + PRIOR_WEIGHT)
    }

    /// Expected tokens committed by a verification of `k` proposals (the main model's own
    /// token included): `1 + p + ... + p^k`.
    fn expected_tokens(&self, k: usize) -> f64 {
        let p = self.accept_prob();
        (0..=k).map(|i| p.powi(i as i32)).sum()
    }
}

impl CostModel {
    /// Records a pass: `rows` rows drafted (longest proposal `longest`) in `draft_s`, then
    /// `fed` positions were verified in `verify_s`.
    pub fn record(&mut self, rows: usize, longest: usize, draft_s: f64, fed: usize, verify_s: f64) {
        if self.draft_s.len() <= rows {
            self.draft_s.resize(rows + 1, Vec::new());
        }
        update(&mut self.draft_s[rows], longest, draft_s);
        update(&mut self.verify_s, fed, verify_s);
    }

    /// Drafting seconds for `rows` rows proposing up to `longest` tokens: measured at this
    /// row count, else at the nearest one measured, scaled as half fixed cost, half
    /// proportional to the rows (in both directions, unlike [`estimate`]'s lengths).
    fn draft_at(&self, rows: usize, longest: usize) -> Option<f64> {
        let measured = |r: usize| self.draft_s.get(r).and_then(|t| estimate(t, longest));
        if let Some(v) = measured(rows) {
            return Some(v);
        }
        let below = (1..rows.min(self.draft_s.len()))
            .rev()
            .find_map(|r| measured(r).map(|v| (r, v)));
        let above = (rows + 1..self.draft_s.len()).find_map(|r| measured(r).map(|v| (r, v)));
        below
            .or(above)
            .map(|(r, v)| v * (0.5 + 0.5 * rows as f64 / r as f64))
    }

    /// The draft length (at most `max`) that maximises expected committed tokens per
    /// second for these rows, each proposing at most `wanted[i]`; `None` before anything
    /// has been measured.
    pub fn best_cap(&self, rows: &[RowHistory], wanted: &[usize], max: usize) -> Option<usize> {
        let b = rows.len();
        self.draft_at(b, 1)?;
        estimate(&self.verify_s, b)?;
        let rate = |cap: usize| -> f64 {
            let lens: Vec<usize> = wanted.iter().map(|w| (*w).min(cap)).collect();
            let longest = lens.iter().copied().max().unwrap_or(0);
            let tokens: f64 = rows
                .iter()
                .zip(&lens)
                .map(|(r, k)| r.expected_tokens(*k))
                .sum();
            let verify = estimate(&self.verify_s, b * (longest + 1)).unwrap_or(f64::INFINITY);
            let cost = verify + self.draft_at(b, longest).unwrap_or(f64::INFINITY);
            tokens / cost
        };
        (1..=max.max(1)).max_by(|x, y| rate(*x).total_cmp(&rate(*y)))
    }
}

fn update(table: &mut Vec<Option<f64>>, at: usize, value: f64) {
    if table.len() <= at {
        table.resize(at + 1, None);
    }
    table[at] = Some(match table[at] {
        Some(old) => old + EMA * (value - old),
        None => value,
    });
}

/// The measured value at `at`, else interpolated between the nearest measured points,
/// else extrapolated from the nearest one: below it in proportion (a lower bound, so
/// shorter lengths not tried yet look worth trying and get measured; with half the cost
/// taken as fixed, a batch that started long never tried short drafts), above it as half
/// fixed cost, half proportional.
fn estimate(table: &[Option<f64>], at: usize) -> Option<f64> {
    let below = (0..=at.min(table.len().saturating_sub(1)))
        .rev()
        .find_map(|i| table.get(i).copied().flatten().map(|v| (i, v)));
    let above = (at..table.len()).find_map(|i| table[i].map(|v| (i, v)));
    match (below, above) {
        (Some((i, v)), _) if i == at => Some(v),
        (Some((i, vi)), Some((j, vj))) => Some(vi + (vj - vi) * (at - i) as f64 / (j - i) as f64),
        (None, Some((i, v))) => Some(v * at as f64 / i.max(1) as f64),
        (Some((i, v)), None) => Some(v * (0.5 + 0.5 * at as f64 / i.max(1) as f64)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(p: f64) -> RowHistory {
        RowHistory {
            accepted: (p * 1000.0) as usize,
            rejections: ((1.0 - p) * 1000.0) as usize,
        }
    }

    #[test]
    fn nothing_measured_means_no_cap() {
        assert_eq!(
            CostModel::default().best_cap(&[history(0.8)], &[6], 6),
            None
        );
    }

    #[test]
    fn cheap_verification_allows_long_drafts_and_costly_one_short() {
        let mut flat = CostModel::default();
        // Verifying costs about the same whatever the positions: drafts should be long.
        for fed in 1..=56 {
            flat.record(
                1,
                fed.min(8),
                0.001 * fed.min(8) as f64,
                fed,
                0.010 + 0.0001 * fed as f64,
            );
        }
        assert_eq!(flat.best_cap(&[history(0.9)], &[6], 6), Some(6));
        // Compute-bound: each position costs as much as a whole step at one row.
        let mut steep = CostModel::default();
        for fed in 1..=56 {
            steep.record(
                8,
                fed.min(8),
                0.010 * fed.min(8) as f64,
                fed,
                0.010 * fed as f64,
            );
        }
        let rows = vec![history(0.7); 8];
        assert_eq!(steep.best_cap(&rows, &[6; 8], 6), Some(1));
    }

    #[test]
    fn a_batch_measured_only_at_long_drafts_tries_short_ones() {
        // Batch 8 started at 5 draft tokens (48 positions verified); shorter lengths are
        // unmeasured and must look cheap enough to be tried (and then measured).
        let mut m = CostModel::default();
        m.record(8, 5, 0.070, 48, 0.113);
        let rows = vec![history(0.75); 8];
        assert_eq!(m.best_cap(&rows, &[6; 8], 6), Some(1));
    }

    #[test]
    fn unmeasured_row_counts_borrow_the_nearest_measured_one() {
        let mut m = CostModel::default();
        m.record(8, 3, 0.030, 32, 0.060);
        assert_eq!(m.draft_at(8, 3), Some(0.030));
        assert!((m.draft_at(4, 3).unwrap() - 0.030 * 0.75).abs() < 1e-12);
        assert!(m
            .best_cap(&[RowHistory::default(); 4], &[6; 4], 6)
            .is_some());
    }

    #[test]
    fn estimates_interpolate_and_extrapolate() {
        let table = vec![None, None, Some(2.0), None, Some(4.0)];
        assert_eq!(estimate(&table, 2), Some(2.0));
        assert_eq!(estimate(&table, 3), Some(3.0));
        assert_eq!(estimate(&table, 8), Some(4.0 * 1.5));
        assert_eq!(estimate(&table, 1), Some(1.0));
        assert_eq!(estimate(&[], 3), None);
    }

    #[test]
    fn acceptance_estimate_starts_at_the_prior_and_follows_the_rows() {
        assert!((RowHistory::default().accept_prob() - PRIOR_ACCEPT).abs() < 1e-9);
        assert!(history(0.95).accept_prob() > 0.9);
        assert!((RowHistory::default().expected_tokens(0) - 1.0).abs() < 1e-9);
    }
}
