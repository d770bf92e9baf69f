//! Word error rate: Levenshtein alignment of whitespace-separated words.

use crate::normalizer::normalize_english;
use serde::Serialize;

/// Edit counts of one or more aligned (reference, hypothesis) pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WerStats {
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
    /// Words in the reference(s).
    pub ref_words: usize,
    /// Words in the hypothesis(es).
    pub hyp_words: usize,
}

impl WerStats {
    /// Substitutions + deletions + insertions.
    pub fn errors(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// `errors / ref_words`.
    ///
    /// With an empty reference the denominator is taken as 1: the WER is 0.0
    /// when the hypothesis is empty too, and otherwise the number of inserted
    /// words (1.0 per inserted word), so a hallucination on silence is
    /// penalised instead of giving NaN or infinity.
    pub fn wer(&self) -> f64 {
        self.errors() as f64 / self.ref_words.max(1) as f64
    }

    /// Accumulate another pair's counts (corpus-level WER is the WER of the sum).
    pub fn add(&mut self, other: &WerStats) {
        self.substitutions += other.substitutions;
        self.deletions += other.deletions;
        self.insertions += other.insertions;
        self.ref_words += other.ref_words;
        self.hyp_words += other.hyp_words;
    }
}

impl std::ops::AddAssign for WerStats {
    fn add_assign(&mut self, other: WerStats) {
        self.add(&other);
    }
}

/// Align the whitespace-separated words of `hypothesis` to `reference` with
/// a minimum-edit (Levenshtein) alignment and count the edits by kind.
///
/// The total number of errors is the edit distance. Where several minimal
/// alignments exist, the backtrace prefers a match or substitution, then a
/// deletion, then an insertion. Words are compared exactly (no case folding:
/// normalise first if needed).
pub fn word_errors(reference: &str, hypothesis: &str) -> WerStats {
    let r: Vec<&str> = reference.split_whitespace().collect();
    let h: Vec<&str> = hypothesis.split_whitespace().collect();
    let (n, m) = (r.len(), h.len());
    let width = m + 1;
    // d[i * width + j] = distance between r[..i] and h[..j]
    let mut d = vec![0usize; (n + 1) * width];
    for (j, dj) in d[..width].iter_mut().enumerate() {
        *dj = j;
    }
    for i in 1..=n {
        d[i * width] = i;
        for j in 1..=m {
            let sub = d[(i - 1) * width + j - 1] + usize::from(r[i - 1] != h[j - 1]);
            let del = d[(i - 1) * width + j] + 1;
            let ins = d[i * width + j - 1] + 1;
            d[i * width + j] = sub.min(del).min(ins);
        }
    }

    let mut stats = WerStats {
        ref_words: n,
        hyp_words: m,
        ..WerStats::default()
    };
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        let here = d[i * width + j];
        if i > 0 && j > 0 {
            let same = r[i - 1] == h[j - 1];
            if here == d[(i - 1) * width + j - 1] + usize::from(!same) {
                if !same {
                    stats.substitutions += 1;
                }
                i -= 1;
                j -= 1;
                continue;
            }
        }
        if i > 0 && here == d[(i - 1) * width + j] + 1 {
            stats.deletions += 1;
            i -= 1;
        } else {
            stats.insertions += 1;
            j -= 1;
        }
    }
    stats
}

/// Corpus-level WER counts over (reference, hypothesis) pairs: the edits and
/// words of all pairs are summed, so `corpus_wer(..).wer()` is total edits /
/// total reference words (not a mean of per-utterance WERs). With
/// `normalize`, both sides go through [`normalize_english`] first.
pub fn corpus_wer<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
    normalize: bool,
) -> WerStats {
    let mut total = WerStats::default();
    for (reference, hypothesis) in pairs {
        let stats = if normalize {
            word_errors(
                &normalize_english(reference),
                &normalize_english(hypothesis),
            )
        } else {
            word_errors(reference, hypothesis)
        };
        total.add(&stats);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_is_zero() {
        let s = word_errors("a b c", "a  b\tc");
        assert_eq!(
            s,
            WerStats {
                ref_words: 3,
                hyp_words: 3,
                ..Default::default()
            }
        );
        assert_eq!(s.wer(), 0.0);
    }

    #[test]
    fn backtrace_counts_kinds() {
        // b->x (S), d deleted (D), g inserted (I); all-substitution alignments cost 4
        let s = word_errors("a b c d e f", "a x c e f g");
        assert_eq!((s.substitutions, s.deletions, s.insertions), (1, 1, 1));
        assert_eq!(s.errors(), 3);
        assert!((s.wer() - 0.5).abs() < 1e-12);
        assert_eq!((s.ref_words, s.hyp_words), (6, 6));
    }
}
