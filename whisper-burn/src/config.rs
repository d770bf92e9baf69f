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
    /// Cross-attention `(layer, head)` pairs that follow the words' timing
    /// (`alignment_heads`); empty when the checkpoint does not list them, see
    /// [`GenerationConfig::alignment_heads_or_default`].
    #[serde(default)]
    pub alignment_heads: Vec<(usize, usize)>,
}

impl GenerationConfig {
    /// The checkpoint's alignment heads, or openai-whisper's default when it lists none:
    /// every head of the second half of the decoder's layers.
    pub fn alignment_heads_or_default(&self, config: &WhisperConfig) -> Vec<(usize, usize)> {
        if !self.alignment_heads.is_empty() {
            return self.alignment_heads.clone();
        }
        let layers = config.decoder_layers / 2..config.decoder_layers;
        layers
            .flat_map(|l| (0..config.decoder_attention_heads).map(move |h| (l, h)))
            .collect()
    }
}

/// `[[layer, head], ...]` as a checkpoint's JSON lists them; anything else is ignored,
/// duplicates are dropped.
pub fn json_alignment_heads(v: Option<&serde_json::Value>) -> Vec<(usize, usize)> {
    let mut heads: Vec<(usize, usize)> = Vec::new();
    for pair in v.and_then(|v| v.as_array()).into_iter().flatten() {
        let pair = pair.as_array().map(|p| p.as_slice()).unwrap_or_default();
        if let [l, h] = pair {
            if let (Some(l), Some(h)) = (l.as_u64(), h.as_u64()) {
                let head = (l as usize, h as usize);
                if !heads.contains(&head) {
                    heads.push(head);
                }
            }
        }
    }
    heads
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
