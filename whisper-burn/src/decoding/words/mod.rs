//! Word-level timestamps: the main model's alignment heads, DTW, and the rules
//! faster-whisper (after openai-whisper) applies to the words of each window.
pub mod align;
pub mod dtw;
pub mod split;

use super::longform::Segment;
use serde::{Deserialize, Serialize};
use split::{merge_punctuations, APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS};

/// A word with its time in the audio (OpenAI's `verbose_json` names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub word: String,
    #[serde(rename = "start", serialize_with = "shortest_f32")]
    pub start_s: f32,
    #[serde(rename = "end", serialize_with = "shortest_f32")]
    pub end_s: f32,
    /// Mean probability of the word's tokens.
    #[serde(serialize_with = "shortest_f32")]
    pub probability: f32,
}

/// An `f32` as the shortest decimal that reads back as it (`0.44`, not the
/// `0.4399999976158142` of its widening to `f64`), for JSON.
fn shortest_f32<S: serde::Serializer>(x: &f32, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(x.to_string().parse::<f64>().unwrap_or(*x as f64))
}

/// A word as alignment finds it, before the window's rules: times from the window start.
#[derive(Debug, Clone, PartialEq)]
pub struct WordTiming {
    pub word: String,
    pub tokens: Vec<u32>,
    pub start_s: f32,
    pub end_s: f32,
    pub probability: f32,
}

/// Longest a typical word is taken to be, and the marks that end a sentence.
const MAX_MEDIAN_WORD_S: f32 = 0.7;
const SENTENCE_END_MARKS: &str = ".。!！?？";

/// Gives `segments` (one window's, in order) their words from the window's alignment,
/// with faster-whisper's rules: over-long words cut at sentence ends, punctuation merged,
/// the first words after a pause and the segment edges kept plausible. Segment starts and
/// ends move to their words'. `last_speech_s` is the end of the last speech before this
/// window; returns the new one. Segment tokens at or above `eot` are not text.
pub fn assign_words(
    segments: &mut [Segment],
    mut alignment: Vec<WordTiming>,
    window_offset_s: f32,
    mut last_speech_s: f32,
    eot: u32,
) -> f32 {
    let durations: Vec<f32> = alignment
        .iter()
        .map(|w| w.end_s - w.start_s)
        .filter(|d| *d != 0.0)
        .collect();
    let median_s = median(&durations).min(MAX_MEDIAN_WORD_S);
    let max_s = median_s * 2.0;
    if !durations.is_empty() {
        truncate_at_sentence_ends(&mut alignment, max_s);
    }
    merge_punctuations(&mut alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS);
    let mut timings = alignment.into_iter().peekable();
    for segment in segments.iter_mut() {
        let text_tokens = segment.tokens.iter().filter(|t| **t < eot).count();
        let mut saved = 0;
        let mut words = Vec::new();
        while saved < text_tokens {
            let Some(t) = timings.next() else { break };
            saved += t.tokens.len();
            if !t.word.is_empty() {
                words.push(Word {
                    word: t.word,
                    start_s: round_cs(window_offset_s + t.start_s),
                    end_s: round_cs(window_offset_s + t.end_s),
                    probability: t.probability,
                });
            }
        }
        if !words.is_empty() {
            fix_segment_edges(segment, &mut words, last_speech_s, median_s, max_s);
            last_speech_s = segment.end_s;
        }
        segment.words = words;
    }
    last_speech_s
}

fn truncate_at_sentence_ends(words: &mut [WordTiming], max_s: f32) {
    for i in 1..words.len() {
        if words[i].end_s - words[i].start_s > max_s {
            if SENTENCE_END_MARKS.contains(words[i].word.as_str()) {
                words[i].end_s = words[i].start_s + max_s;
            } else if SENTENCE_END_MARKS.contains(words[i - 1].word.as_str()) {
                words[i].start_s = words[i].end_s - max_s;
            }
        }
    }
}

/// The first word after a pause and the segment's first and last words kept within
/// plausible lengths; the segment's times follow its words otherwise.
fn fix_segment_edges(
    segment: &mut Segment,
    words: &mut [Word],
    last_speech_s: f32,
    median_s: f32,
    max_s: f32,
) {
    let n = words.len();
    let first_too_long = words[0].end_s - words[0].start_s > max_s
        || (n > 1 && words[1].end_s - words[0].start_s > max_s * 2.0);
    if words[0].end_s - last_speech_s > median_s * 4.0 && first_too_long {
        if n > 1 && words[1].end_s - words[1].start_s > max_s {
            let boundary = (words[1].end_s / 2.0).max(words[1].end_s - max_s);
            words[0].end_s = boundary;
            words[1].start_s = boundary;
        }
        words[0].start_s = (words[0].end_s - max_s).max(0.0);
    }
    if segment.start_s < words[0].end_s && segment.start_s - 0.5 > words[0].start_s {
        words[0].start_s = (words[0].end_s - median_s).min(segment.start_s).max(0.0);
    } else {
        segment.start_s = words[0].start_s;
    }
    let last = &mut words[n - 1];
    if segment.end_s > last.start_s && segment.end_s + 0.5 < last.end_s {
        last.end_s = (last.start_s + median_s).max(segment.end_s);
    } else {
        segment.end_s = last.end_s;
    }
}

/// numpy's median (the mean of the middle two of an even count); 0 when empty.
fn median(values: &[f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_unstable_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Rounded to centiseconds, as faster-whisper reports word times.
fn round_cs(s: f32) -> f32 {
    (s * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(word: &str, start_s: f32, end_s: f32) -> WordTiming {
        WordTiming {
            word: word.into(),
            tokens: vec![1],
            start_s,
            end_s,
            probability: 0.9,
        }
    }

    fn segment(start_s: f32, end_s: f32, n_tokens: usize) -> Segment {
        Segment {
            start_s,
            end_s,
            text: String::new(),
            tokens: vec![1; n_tokens],
            words: Vec::new(),
        }
    }

    #[test]
    fn words_go_to_their_segments_with_the_window_offset() {
        let alignment = vec![
            timing(" a", 0.0, 0.4),
            timing(" b", 0.4, 0.8),
            timing(" c", 1.0, 1.4),
        ];
        let mut segs = vec![segment(0.0 + 30.0, 0.8 + 30.0, 2), segment(31.0, 31.4, 1)];
        let last = assign_words(&mut segs, alignment, 30.0, 29.9, 100);
        assert_eq!(segs[0].words.len(), 2);
        assert_eq!(segs[1].words[0].word, " c");
        assert_eq!(segs[1].words[0].start_s, 31.0);
        assert_eq!(last, 31.4);
    }

    #[test]
    fn a_long_word_after_a_sentence_end_is_cut_to_twice_the_median() {
        let mut w = vec![
            timing(" a", 0.0, 0.2),
            timing(".", 0.2, 0.4),
            timing(" b", 0.4, 3.0),
        ];
        truncate_at_sentence_ends(&mut w, 0.4);
        assert!((w[2].start_s - 2.6).abs() < 1e-6);
        assert_eq!(median(&[0.2, 0.2, 2.6, 1.0]), 0.6);
    }
}
