//! The speech audio alone, and the way back to the original audio's times:
//! faster-whisper 1.2.1's `collect_chunks` (with its default `max_duration`, infinite:
//! one concatenation) and `SpeechTimestampsMap`.
use super::timestamps::SpeechChunk;
use crate::audio::SAMPLE_RATE;

/// The samples of `chunks` (in order, each clamped to the audio) concatenated, and the
/// map from times in that audio back to times in `audio`. No chunks: no samples.
pub fn collect_chunks(audio: &[f32], chunks: &[SpeechChunk]) -> (Vec<f32>, TimestampMap) {
    let mut speech = Vec::with_capacity(chunks.iter().map(|c| c.len()).sum());
    for c in chunks {
        let end = c.end.min(audio.len());
        speech.extend_from_slice(&audio[c.start.min(end)..end]);
    }
    (speech, TimestampMap::new(chunks, SAMPLE_RATE))
}

/// faster-whisper's `SpeechTimestampsMap`: maps a time in the concatenated speech audio
/// back to the original audio by adding the silence removed before its chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct TimestampMap {
    sampling_rate: u32,
    /// Decimals of the returned times (2 in faster-whisper).
    time_precision: usize,
    /// Where each chunk ends in the concatenated audio, in samples.
    chunk_end_sample: Vec<i64>,
    /// Seconds of audio removed before each chunk.
    total_silence_before: Vec<f64>,
}

impl TimestampMap {
    pub fn new(chunks: &[SpeechChunk], sampling_rate: u32) -> Self {
        let mut chunk_end_sample = Vec::with_capacity(chunks.len());
        let mut total_silence_before = Vec::with_capacity(chunks.len());
        let (mut previous_end, mut silent) = (0i64, 0i64);
        for c in chunks {
            silent += c.start as i64 - previous_end;
            previous_end = c.end as i64;
            chunk_end_sample.push(c.end as i64 - silent);
            total_silence_before.push(silent as f64 / sampling_rate as f64);
        }
        Self {
            sampling_rate,
            time_precision: 2,
            chunk_end_sample,
            total_silence_before,
        }
    }

    /// `get_original_time`: `time` (seconds in the speech audio) in the original audio,
    /// rounded to 2 decimals. `chunk_index` forces the chunk (faster-whisper passes the
    /// chunk of a word's middle for both its ends); `is_end` puts a time that falls
    /// exactly on a chunk's end in that chunk rather than the next. Without chunks the
    /// time is returned unchanged (rounded).
    pub fn original_time(&self, time: f64, chunk_index: Option<usize>, is_end: bool) -> f64 {
        let silence = if self.total_silence_before.is_empty() {
            0.0
        } else {
            let i = chunk_index.unwrap_or_else(|| self.chunk_index(time, is_end));
            self.total_silence_before[i.min(self.total_silence_before.len() - 1)]
        };
        round_half_even(silence + time, self.time_precision)
    }

    /// `get_chunk_index`: the chunk a time (seconds in the speech audio) belongs to.
    pub fn chunk_index(&self, time: f64, is_end: bool) -> usize {
        let sample = (time * self.sampling_rate as f64) as i64; // int() truncates
        if is_end {
            if let Some(i) = self.chunk_end_sample.iter().position(|&e| e == sample) {
                return i;
            }
        }
        // bisect.bisect (right), capped at the last chunk.
        let i = self.chunk_end_sample.partition_point(|&e| e <= sample);
        i.min(self.chunk_end_sample.len().saturating_sub(1))
    }

    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.chunk_end_sample.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunk_end_sample.is_empty()
    }
}

/// Python's `round(x, digits)`: the decimal nearest to the double's exact value, ties to
/// even (Rust's formatting rounds the exact value the same way).
fn round_half_even(x: f64, digits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.digits$}").parse().unwrap_or(x)
}
