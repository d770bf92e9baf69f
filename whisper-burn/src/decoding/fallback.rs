//! Temperature fallback, as faster-whisper and openai-whisper do it: a window whose text
//! repeats itself (gzip compression ratio above 2.4) or whose tokens are unlikely (average
//! log-probability below -1) is decoded again at the next temperature of the list, unless
//! it is silence (no-speech probability above its threshold with a low log-probability).
//! If every temperature fails, the best attempt is kept: the most likely among those that
//! do not repeat, else among all. Every decoder (greedy, beam, speculative) is run through
//! this one rule, so a draft never changes which attempt wins.
use super::greedy::SequenceResult;
use super::options::DecodeOptions;
use std::io::Write as _;

/// Whisper's compression ratio of a text: its UTF-8 length over its zlib-compressed length
/// (repetitive text compresses well). 0 for empty text.
pub fn compression_ratio(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    if enc.write_all(text.as_bytes()).is_err() {
        return 0.0;
    }
    match enc.finish() {
        Ok(c) if !c.is_empty() => text.len() as f64 / c.len() as f64,
        _ => 0.0,
    }
}

/// One decoding of a window, judged.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub result: SequenceResult,
    pub temperature: f32,
    pub compression_ratio: f64,
    pub needs_fallback: bool,
}

impl Attempt {
    /// Judges `result` (with `text`, its decoded text) under `opts`' thresholds.
    pub fn judge(
        result: SequenceResult,
        text: &str,
        temperature: f32,
        opts: &DecodeOptions,
    ) -> Self {
        let compression_ratio = compression_ratio(text);
        let avg_logprob = result.avg_logprob();
        let repetitive = opts
            .compression_ratio_threshold
            .is_some_and(|t| compression_ratio > t as f64);
        let unlikely = opts.log_prob_threshold.is_some_and(|t| avg_logprob < t);
        let silent = unlikely
            && opts
                .no_speech_threshold
                .is_some_and(|t| result.no_speech_prob > t);
        Self {
            result,
            temperature,
            compression_ratio,
            needs_fallback: (repetitive || unlikely) && !silent,
        }
    }

    fn repetitive(&self, opts: &DecodeOptions) -> bool {
        opts.compression_ratio_threshold
            .is_some_and(|t| self.compression_ratio > t as f64)
    }
}

/// The attempt to keep when every temperature needed a fallback.
pub(crate) fn best_of(attempts: Vec<Attempt>, opts: &DecodeOptions) -> Option<Attempt> {
    let any_fluent = attempts.iter().any(|a| !a.repetitive(opts));
    attempts
        .into_iter()
        .filter(|a| !any_fluent || !a.repetitive(opts))
        .reduce(|best, a| {
            if a.result.avg_logprob() > best.result.avg_logprob() {
                a
            } else {
                best
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(tokens: usize, sum_logprob: f32, no_speech_prob: f32) -> SequenceResult {
        SequenceResult {
            tokens: vec![1; tokens],
            sum_logprob,
            no_speech_prob,
            ..Default::default()
        }
    }

    #[test]
    fn compression() {
        assert!(compression_ratio(&"la ".repeat(200)) > 10.0);
        assert!(compression_ratio("And so my fellow Americans") < 1.5);
        assert_eq!(compression_ratio(""), 0.0);
    }

    #[test]
    fn rules() {
        let opts = DecodeOptions::default();
        let fine = Attempt::judge(result(9, -2.0, 0.1), "Hello there.", 0.0, &opts);
        assert!(!fine.needs_fallback);
        let repeats = Attempt::judge(result(9, -2.0, 0.1), &"la ".repeat(50), 0.0, &opts);
        assert!(repeats.needs_fallback);
        let unlikely = Attempt::judge(result(9, -20.0, 0.1), "Hello there.", 0.0, &opts);
        assert!(unlikely.needs_fallback);
        let silence = Attempt::judge(result(9, -20.0, 0.9), "Hello there.", 0.0, &opts);
        assert!(!silence.needs_fallback, "silence is skipped, not retried");
        // Best: the most likely that does not repeat, even if a repetitive one is likelier.
        let likely_repeat = Attempt::judge(result(9, -1.0, 0.1), &"la ".repeat(50), 0.2, &opts);
        let best = best_of(vec![unlikely.clone(), likely_repeat.clone()], &opts).unwrap();
        assert_eq!(best.temperature, 0.0);
        let best = best_of(vec![repeats, likely_repeat], &opts).unwrap();
        assert_eq!(best.temperature, 0.2, "all repeat: the likeliest");
    }
}
