//! A loaded model ready to transcribe: weights, tokenizer and log-mel frontend.
use crate::backend::{Kernels, WhisperBackend};
use crate::config::WhisperConfig;
use crate::mel::MelFrontend;
use crate::model::Whisper;
use crate::tokenizer::WhisperTokenizer;
use crate::weights::{load_checkpoint, LoadedCheckpoint};
use crate::Result;

/// Model + tokenizer + frontend; shared read-only by every decode.
pub struct Pipeline<B: WhisperBackend> {
    pub model: Whisper<B>,
    pub tokenizer: WhisperTokenizer,
    pub mel: MelFrontend,
    /// What the user called it (directory or hub id).
    pub name: String,
}

impl<B: WhisperBackend> Pipeline<B> {
    /// Loads a local directory (Hugging Face or CTranslate2 layout) or a hub id.
    pub fn load(model: &str, device: &B::Device) -> Result<Self> {
        Self::load_with(model, device, B::default_kernels())
    }

    /// As [`Self::load`], in the given kernels.
    pub fn load_with(model: &str, device: &B::Device, kernels: Kernels) -> Result<Self> {
        let ckpt = load_checkpoint(model)?;
        Self::from_checkpoint_with(model, ckpt, device, kernels)
    }

    pub fn from_checkpoint(name: &str, ckpt: LoadedCheckpoint, device: &B::Device) -> Result<Self> {
        Self::from_checkpoint_with(name, ckpt, device, B::default_kernels())
    }

    pub fn from_checkpoint_with(
        name: &str,
        ckpt: LoadedCheckpoint,
        device: &B::Device,
        kernels: Kernels,
    ) -> Result<Self> {
        let tokenizer =
            WhisperTokenizer::from_file(&ckpt.tokenizer_path, ckpt.config.is_multilingual())?;
        let mel = MelFrontend::new(ckpt.config.num_mel_bins);
        let model = Whisper::from_checkpoint_with(ckpt, device, kernels)?;
        Ok(Self {
            model,
            tokenizer,
            mel,
            name: name.to_string(),
        })
    }

    pub fn config(&self) -> &WhisperConfig {
        &self.model.config
    }
}
