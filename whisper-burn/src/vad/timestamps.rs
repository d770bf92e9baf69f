//! Speech chunks from window probabilities: faster-whisper 1.2.1's
//! `get_speech_timestamps` (`faster_whisper/vad.py`), line for line.
use super::model::{SileroVad, WINDOW};
use crate::audio::SAMPLE_RATE;
use crate::error::{Result, WhisperError};

/// faster-whisper's `VadOptions`, same names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct VadOptions {
    /// Windows with a probability at or above this are speech.
    pub threshold: f32,
    /// Below this a window is silence; in between it continues speech already started.
    /// `None`: `max(threshold - 0.15, 0.01)`.
    pub neg_threshold: Option<f32>,
    /// Speech chunks this short or shorter are dropped (0 in faster-whisper 1.2.1; its
    /// 1.0 releases had 250).
    pub min_speech_duration_ms: u32,
    /// Longer chunks are split at the last silence over 98 ms, else cut just before.
    pub max_speech_duration_s: f64,
    /// Silence this long ends a chunk.
    pub min_silence_duration_ms: u32,
    /// Padding added to each side of a chunk (halved silences between close chunks).
    pub speech_pad_ms: u32,
}

impl Default for VadOptions {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: None,
            min_speech_duration_ms: 0,
            max_speech_duration_s: f64::INFINITY,
            min_silence_duration_ms: 2000,
            speech_pad_ms: 400,
        }
    }
}

impl VadOptions {
    /// The silence threshold in effect.
    pub fn neg_threshold(&self) -> f32 {
        self.neg_threshold
            .unwrap_or_else(|| ((self.threshold as f64 - 0.15).max(0.01)) as f32)
    }

    /// Refuses options outside their ranges (a clear error, before any audio is read).
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(WhisperError::Vad(what));
        if !(0.0..=1.0).contains(&self.threshold) {
            return bad(format!("threshold {} is not in [0, 1]", self.threshold));
        }
        if let Some(t) = self.neg_threshold {
            if !(0.0..=1.0).contains(&t) {
                return bad(format!("neg_threshold {t} is not in [0, 1]"));
            }
        }
        if self.max_speech_duration_s.is_nan() || self.max_speech_duration_s <= 0.0 {
            return bad(format!(
                "max_speech_duration_s {} is not positive",
                self.max_speech_duration_s
            ));
        }
        Ok(())
    }
}

/// A stretch of speech, in samples of the 16 kHz audio (`end` exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpeechChunk {
    pub start: usize,
    pub end: usize,
}

impl SpeechChunk {
    pub fn start_s(&self) -> f64 {
        self.start as f64 / SAMPLE_RATE as f64
    }
    pub fn end_s(&self) -> f64 {
        self.end as f64 / SAMPLE_RATE as f64
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// The speech chunks of `audio` (16 kHz mono): the model's probabilities, then
/// [`chunks_from_probs`].
pub fn speech_timestamps(
    vad: &SileroVad,
    audio: &[f32],
    opts: &VadOptions,
) -> Result<Vec<SpeechChunk>> {
    opts.check()?;
    let probs = vad.speech_probs(audio)?;
    chunks_from_probs(&probs, audio.len(), opts)
}

/// The speech chunks of `n_samples` samples whose 512-sample windows have the speech
/// probabilities `probs` (as [`SileroVad::speech_probs`] returns them): faster-whisper's
/// state machine with hysteresis, minimum silence, maximum length splitting, minimum
/// length, then padding.
pub fn chunks_from_probs(
    probs: &[f32],
    n_samples: usize,
    opts: &VadOptions,
) -> Result<Vec<SpeechChunk>> {
    opts.check()?;
    let sr = SAMPLE_RATE as f64;
    let window = WINDOW;
    // The same float arithmetic as vad.py (all whole numbers for whole milliseconds).
    let min_speech_samples = sr * opts.min_speech_duration_ms as f64 / 1000.0;
    let speech_pad_samples = sr * opts.speech_pad_ms as f64 / 1000.0;
    let max_speech_samples =
        sr * opts.max_speech_duration_s - window as f64 - 2.0 * speech_pad_samples;
    let min_silence_samples = sr * opts.min_silence_duration_ms as f64 / 1000.0;
    let min_silence_samples_at_max_speech = sr * 98.0 / 1000.0;
    // NumPy 2 compares float32 probabilities with Python floats in float32.
    let threshold = opts.threshold;
    let neg_threshold = opts.neg_threshold();

    // Positions in samples, as i64 so every difference is signed as in Python.
    let mut triggered = false;
    let mut speeches: Vec<(i64, i64)> = Vec::new();
    // `current_speech`: its start when it has one (its end is only set when pushed).
    let mut current: Option<i64> = None;
    let mut temp_end = 0i64;
    let mut prev_end = 0i64;
    let mut next_start = 0i64;

    for (i, &p) in probs.iter().enumerate() {
        let at = (window * i) as i64;
        if p >= threshold && temp_end != 0 {
            temp_end = 0;
            if next_start < prev_end {
                next_start = at;
            }
        }
        if p >= threshold && !triggered {
            triggered = true;
            current = Some(at);
            continue;
        }
        // While triggered a chunk has a start (vad.py indexes it unconditionally).
        if let (true, Some(start)) = (triggered, current) {
            if (at - start) as f64 > max_speech_samples {
                if prev_end != 0 {
                    speeches.push((start, prev_end));
                    current = None;
                    // Reached silence (< neg_threshold) and still not speech (< threshold).
                    if next_start < prev_end {
                        triggered = false;
                    } else {
                        current = Some(next_start);
                    }
                    prev_end = 0;
                    next_start = 0;
                    temp_end = 0;
                } else {
                    speeches.push((start, at));
                    current = None;
                    prev_end = 0;
                    next_start = 0;
                    temp_end = 0;
                    triggered = false;
                    continue;
                }
            }
        }
        if p < neg_threshold && triggered {
            if temp_end == 0 {
                temp_end = at;
            }
            // Avoid cutting in very short silences.
            if (at - temp_end) as f64 > min_silence_samples_at_max_speech {
                prev_end = temp_end;
            }
            if ((at - temp_end) as f64) < min_silence_samples {
                continue;
            }
            if let Some(start) = current.take() {
                if (temp_end - start) as f64 > min_speech_samples {
                    speeches.push((start, temp_end));
                }
            }
            prev_end = 0;
            next_start = 0;
            temp_end = 0;
            triggered = false;
            continue;
        }
    }
    let n = n_samples as i64;
    if let Some(start) = current {
        if (n - start) as f64 > min_speech_samples {
            speeches.push((start, n));
        }
    }

    // Padding: `speech_pad_samples` each side, or half the silence between close chunks.
    let count = speeches.len();
    for i in 0..count {
        if i == 0 {
            speeches[0].0 = (speeches[0].0 as f64 - speech_pad_samples).max(0.0) as i64;
        }
        if i + 1 != count {
            let silence = speeches[i + 1].0 - speeches[i].1;
            if (silence as f64) < 2.0 * speech_pad_samples {
                let half = silence.div_euclid(2);
                speeches[i].1 += half;
                speeches[i + 1].0 = (speeches[i + 1].0 - half).max(0);
            } else {
                speeches[i].1 = (n as f64).min(speeches[i].1 as f64 + speech_pad_samples) as i64;
                speeches[i + 1].0 = (speeches[i + 1].0 as f64 - speech_pad_samples).max(0.0) as i64;
            }
        } else {
            speeches[i].1 = (n as f64).min(speeches[i].1 as f64 + speech_pad_samples) as i64;
        }
    }
    let chunks = speeches
        .into_iter()
        .map(|(start, end)| SpeechChunk {
            start: start as usize,
            end: end as usize,
        })
        .collect();
    Ok(chunks)
}
