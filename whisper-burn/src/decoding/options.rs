//! What a caller can ask of a decode.
use crate::tokenizer::Task;
use serde::{Deserialize, Serialize};

/// Options of one transcription (faster-whisper's names where they exist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodeOptions {
    /// Language code (`en`); `None` detects it per window on multilingual models.
    pub language: Option<String>,
    pub task: Task,
    /// Emit timestamp tokens (segments); off gives `<|notimestamps|>` decoding.
    pub timestamps: bool,
    /// Suppress blank and end-of-text as the first token.
    pub suppress_blank: bool,
    /// Largest number of tokens generated per window (Whisper: 448 / 2).
    pub max_new_tokens: usize,
    /// Previous-text prompt across long-form windows.
    pub condition_on_previous_text: bool,
    /// Initial prompt text, given before the first window.
    pub initial_prompt: Option<String>,
    /// Sampling temperature: 0 is greedy; above 0 each token is drawn from
    /// `softmax(logits / temperature)` (speculative decoding gives the same draws: draft
    /// and main model share each position's uniform).
    pub temperature: f32,
    /// Seed of the per-sequence random streams when sampling.
    #[serde(default)]
    pub seed: u64,
    /// Skip a window whose no-speech probability is above this and average log-prob low.
    pub no_speech_threshold: Option<f32>,
    pub log_prob_threshold: Option<f32>,
    /// Temperatures to decode a window again at, in order, when it fails the quality
    /// checks (faster-whisper's `temperature` list after its first entry: `[0.2, 0.4, 0.6,
    /// 0.8, 1.0]`). Empty: no fallback (the default, so that plain greedy decoding is what
    /// it says).
    #[serde(default)]
    pub temperature_fallback: Vec<f32>,
    /// A window whose text's gzip compression ratio is above this needs a fallback.
    #[serde(default = "default_compression_ratio_threshold")]
    pub compression_ratio_threshold: Option<f32>,
    /// After a window decoded above this temperature, the next window is not prompted with
    /// the previous text (faster-whisper's `prompt_reset_on_temperature`).
    #[serde(default = "default_prompt_reset_on_temperature")]
    pub prompt_reset_on_temperature: f32,
    /// Word-level timestamps from the main model's alignment heads (each segment's
    /// `words`); needs `timestamps`. As faster-whisper, the next window then starts after
    /// the last word.
    #[serde(default)]
    pub word_timestamps: bool,
}

fn default_compression_ratio_threshold() -> Option<f32> {
    Some(2.4)
}

fn default_prompt_reset_on_temperature() -> f32 {
    0.5
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            language: None,
            task: Task::Transcribe,
            timestamps: false,
            suppress_blank: true,
            max_new_tokens: 224,
            condition_on_previous_text: true,
            initial_prompt: None,
            temperature: 0.0,
            seed: 0,
            no_speech_threshold: Some(0.6),
            log_prob_threshold: Some(-1.0),
            temperature_fallback: Vec::new(),
            compression_ratio_threshold: default_compression_ratio_threshold(),
            prompt_reset_on_temperature: default_prompt_reset_on_temperature(),
            word_timestamps: false,
        }
    }
}
