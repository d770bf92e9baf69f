//! Temperature sampling: each token drawn from `softmax(filtered logits / T)` by inverse
//! CDF with a uniform that depends only on the seed, the sequence's prompt and the
//! token's position. A row samples the same alone or in a batch, and a speculative
//! decoder that draws its draft tokens with the same uniforms, and keeps a proposal when
//! the main model's draw equals it, gives plain sampling's tokens exactly.
use super::logit_filters::argmax;
use crate::{Result, WhisperError};

/// Sampling settings of a decode (`temperature > 0`; 0 is greedy and has no `Sampling`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    pub seed: u64,
}

impl Sampling {
    /// `None` for temperature 0 (greedy); an error for a negative or non-finite one.
    pub fn from_temperature(temperature: f32, seed: u64) -> Result<Option<Self>> {
        if !temperature.is_finite() || temperature < 0.0 {
            return Err(WhisperError::Decode(format!(
                "temperature must be a finite number >= 0, not {temperature}"
            )));
        }
        Ok((temperature > 0.0).then_some(Self { temperature, seed }))
    }
}

/// A sequence's uniforms, addressed by token position (SplitMix64's finalizer of a
/// per-sequence base plus the position): small, fast, reproducible everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleStream(u64);

impl SampleStream {
    /// The stream of the sequence that starts with `prompt` in the window at `window`
    /// (its start, e.g. the seek position in frames), under `seed`: it depends on neither
    /// the batch nor the row's position in it, and differs between windows of one file
    /// even when their prompts are equal.
    pub fn for_sequence(seed: u64, window: u64, prompt: &[u32]) -> Self {
        let mut h =
            (seed ^ 0x9e37_79b9_7f4a_7c15).wrapping_add(window.wrapping_mul(0xd1b5_4a32_d192_ed03));
        for t in prompt {
            h = (h ^ u64::from(*t)).wrapping_mul(0x1000_0000_01b3);
        }
        Self(h)
    }

    fn bits(&self, position: usize) -> u64 {
        let mut z = self
            .0
            .wrapping_add((position as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The uniform in `[0, 1)` (53 random bits) of generated token `position`.
    pub fn uniform(&self, position: usize) -> f64 {
        (self.bits(position) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `softmax(logits / temperature)`; suppressed (`-inf`) logits get probability 0. The
/// largest logit always gets `e^0` before normalizing (dividing, not multiplying by an
/// inverse that may overflow), so any positive temperature gives a distribution.
pub fn probabilities(logits: &[f32], temperature: f32) -> Vec<f32> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    if max == f32::NEG_INFINITY {
        // Nothing allowed (no filter does this): the same choice as greedy's argmax.
        let mut p = vec![0f32; logits.len()];
        if let Some(first) = p.first_mut() {
            *first = 1.0;
        }
        return p;
    }
    let mut p: Vec<f32> = logits
        .iter()
        .map(|v| {
            if *v == max {
                1.0
            } else {
                ((v - max) / temperature).exp()
            }
        })
        .collect();
    let sum: f32 = p.iter().sum();
    p.iter_mut().for_each(|v| *v /= sum);
    p
}

/// The index whose cumulative probability first exceeds `u` (in `[0, 1)`), scaled by the
/// total so rounding in `weights` cannot run off the end; zero weights are never drawn.
pub fn draw(weights: &[f32], u: f64) -> u32 {
    let total: f64 = weights.iter().map(|w| f64::from(*w)).sum();
    let target = u * total;
    let mut acc = 0f64;
    let mut last = 0;
    for (i, w) in weights.iter().enumerate() {
        if *w <= 0.0 {
            continue;
        }
        acc += f64::from(*w);
        last = i;
        if acc > target {
            return i as u32;
        }
    }
    last as u32
}

/// Generated token `position` of `stream`, drawn from filtered `logits` at `temperature`.
pub fn sample_at(logits: &[f32], temperature: f32, stream: &SampleStream, position: usize) -> u32 {
    draw(
        &probabilities(logits, temperature),
        stream.uniform(position),
    )
}

/// One sequence's sampling: the temperature and its stream of uniforms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowSampler {
    pub temperature: f32,
    pub stream: SampleStream,
}

/// The token for generated `position` from filtered `logits`: greedy's argmax, or the
/// sampler's draw. Plain decoding, the speculative verifier and its first token all
/// choose through this, so they choose alike.
pub fn choose_token(sampler: Option<&RowSampler>, logits: &[f32], position: usize) -> u32 {
    match sampler {
        None => argmax(logits),
        Some(s) => sample_at(logits, s.temperature, &s.stream, position),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Total variation distance between an empirical histogram and `p`.
    fn tv(counts: &[usize], p: &[f32]) -> f64 {
        let n: usize = counts.iter().sum();
        counts
            .iter()
            .zip(p)
            .map(|(c, p)| (*c as f64 / n as f64 - f64::from(*p)).abs())
            .sum::<f64>()
            / 2.0
    }

    #[test]
    fn draws_follow_the_tempered_distribution() {
        let logits = [1.0f32, f32::NEG_INFINITY, 0.0, 2.5, -1.0];
        for t in [0.5f32, 1.0, 2.0] {
            let p = probabilities(&logits, t);
            assert_eq!(p[1], 0.0);
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            let stream = SampleStream::for_sequence(7, 0, &[1, 2, 3]);
            let mut counts = [0usize; 5];
            for n in 0..200_000 {
                counts[sample_at(&logits, t, &stream, n) as usize] += 1;
            }
            assert_eq!(counts[1], 0, "a suppressed token was drawn");
            assert!(tv(&counts, &p) < 0.01, "T={t}: {counts:?} vs {p:?}");
        }
    }

    #[test]
    fn streams_are_reproducible_and_differ_by_seed_and_prompt() {
        let take = |seed, window, prompt: &[u32]| {
            let s = SampleStream::for_sequence(seed, window, prompt);
            (0..4).map(|n| s.uniform(n)).collect::<Vec<_>>()
        };
        assert_eq!(take(1, 0, &[5, 6]), take(1, 0, &[5, 6]));
        assert_ne!(take(1, 0, &[5, 6]), take(2, 0, &[5, 6]));
        assert_ne!(take(1, 0, &[5, 6]), take(1, 0, &[6, 5]));
        assert_ne!(take(1, 0, &[5, 6]), take(1, 3000, &[5, 6]));
        let s = SampleStream::for_sequence(0, 0, &[]);
        let us: Vec<f64> = (0..10_000).map(|n| s.uniform(n)).collect();
        assert!(us.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = us.iter().sum::<f64>() / us.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn vanishing_temperatures_give_the_argmax() {
        let logits = [0.5f32, 2.0, f32::NEG_INFINITY, 1.999];
        for t in [1e-6f32, 1e-30, 1e-45] {
            let p = probabilities(&logits, t);
            assert_eq!(p, vec![0.0, 1.0, 0.0, 0.0], "T={t}");
            assert_eq!(
                sample_at(&logits, t, &SampleStream::for_sequence(1, 0, &[]), 3),
                1
            );
        }
        assert_eq!(
            probabilities(&[f32::NEG_INFINITY; 3], 1.0),
            vec![1.0, 0.0, 0.0]
        );
    }

    #[test]
    fn draw_never_returns_a_zero_weight() {
        assert_eq!(draw(&[0.0, 0.3, 0.0, 0.7, 0.0], 0.999_999_999), 3);
        assert_eq!(draw(&[0.0, 0.3, 0.0, 0.7, 0.0], 0.0), 1);
    }

    #[test]
    fn temperature_is_checked() {
        assert_eq!(Sampling::from_temperature(0.0, 1).unwrap(), None);
        assert!(Sampling::from_temperature(0.7, 1).unwrap().is_some());
        assert!(Sampling::from_temperature(-1.0, 1).is_err());
        assert!(Sampling::from_temperature(f32::NAN, 1).is_err());
    }
}
