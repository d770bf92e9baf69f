//! The Whisper model: weights only, shared read-only across sequences.
pub mod decoder;
pub mod encoder;
pub mod kv_cache;
pub mod layers;

pub use decoder::Decoder;
pub use encoder::Encoder;
pub use kv_cache::DecoderState;

use crate::backend::{Kernels, WhisperBackend};
use crate::config::{GenerationConfig, WhisperConfig};
use crate::weights::{LoadedCheckpoint, TensorStore};
use crate::{Result, WhisperError};
use burn::prelude::*;

/// Encoder + decoder weights of one checkpoint on one device.
#[derive(Debug, Clone)]
pub struct Whisper<B: WhisperBackend> {
    pub config: WhisperConfig,
    pub generation: GenerationConfig,
    pub encoder: Encoder<B>,
    pub decoder: Decoder<B>,
    pub device: B::Device,
}

impl<B: WhisperBackend> Whisper<B> {
    /// Builds the model from a checkpoint's tensors (Hugging Face names), in the
    /// backend's default kernels.
    pub fn from_checkpoint(ckpt: LoadedCheckpoint, device: &B::Device) -> Result<Self> {
        Self::from_checkpoint_with(ckpt, device, B::default_kernels())
    }

    /// As [`Self::from_checkpoint`], in the given kernels (refused where they cannot run).
    pub fn from_checkpoint_with(
        ckpt: LoadedCheckpoint,
        device: &B::Device,
        kernels: Kernels,
    ) -> Result<Self> {
        let LoadedCheckpoint {
            config,
            generation,
            tensors,
            ..
        } = ckpt;
        Self::from_tensors(config, generation, tensors, device, kernels)
    }

    pub fn from_tensors(
        config: WhisperConfig,
        generation: GenerationConfig,
        mut tensors: TensorStore,
        device: &B::Device,
        kernels: Kernels,
    ) -> Result<Self> {
        if kernels == Kernels::Host && !B::supports_host_kernels() {
            return Err(WhisperError::Device(format!(
                "the host kernels run on CPU backends only, not on {}",
                std::any::type_name::<B>()
            )));
        }
        let splits = |heads: usize| config.d_model.is_multiple_of(heads);
        if !splits(config.decoder_attention_heads) || !splits(config.encoder_attention_heads) {
            return Err(WhisperError::Config(
                "d_model is not a multiple of the attention heads".into(),
            ));
        }
        let encoder = Encoder::load(&mut tensors, &config, kernels, device)?;
        let decoder = Decoder::load(&mut tensors, &config, kernels, device)?;
        Ok(Self {
            config,
            generation,
            encoder,
            decoder,
            device: device.clone(),
        })
    }

    /// Which implementation this model runs.
    pub fn kernels(&self) -> Kernels {
        self.decoder.kernels()
    }

    /// Encodes a batch of log-mel windows given row-major `[n_mels][3000]` each.
    pub fn encode(&self, windows: &[Vec<f32>]) -> Result<Tensor<B, 3>> {
        let n_mels = self.config.num_mel_bins;
        let frames = 2 * self.config.max_source_positions;
        let mut data = Vec::with_capacity(windows.len() * n_mels * frames);
        for w in windows {
            if w.len() != n_mels * frames {
                return Err(WhisperError::Decode(format!(
                    "mel window has {} values, the model needs {n_mels} x {frames}",
                    w.len()
                )));
            }
            data.extend_from_slice(w);
        }
        let mel = Tensor::<B, 3>::from_data(
            TensorData::new(data, [windows.len(), n_mels, frames]),
            &self.device,
        );
        Ok(self.encoder.forward(mel))
    }
}
