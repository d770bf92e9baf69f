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
        }
    }
}
