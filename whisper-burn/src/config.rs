//! Model hyper-parameters, named as in Hugging Face's `config.json` for Whisper.
use serde::{Deserialize, Serialize};

/// Architecture of a Whisper model (field names as in Hugging Face `WhisperConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhisperConfig {
    pub vocab_size: usize,
    pub num_mel_bins: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_layers: usize,
    pub decoder_attention_heads: usize,
    pub decoder_ffn_dim: usize,
    #[serde(default = "default_source_positions")]
    pub max_source_positions: usize,
    #[serde(default = "default_target_positions")]
    pub max_target_positions: usize,
}

fn default_source_positions() -> usize {
    1500
}
fn default_target_positions() -> usize {
    448
}

/// Token-suppression settings from the checkpoint (Hugging Face `generation_config.json`
/// or CTranslate2 `config.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationConfig {
    /// Tokens never generated (`suppress_tokens` / `suppress_ids`).
    pub suppress_tokens: Vec<u32>,
    /// Tokens not generated as the first token (`begin_suppress_tokens` / `suppress_ids_begin`).
    pub begin_suppress_tokens: Vec<u32>,
}

impl WhisperConfig {
    /// Multilingual checkpoints have 51865+ tokens; English-only ones 51864 (Whisper's rule).
    pub fn is_multilingual(&self) -> bool {
        self.vocab_size >= 51865
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.decoder_attention_heads
    }
}
