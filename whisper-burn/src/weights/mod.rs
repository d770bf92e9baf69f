//! Loading weights into a neutral host-side map named as in Hugging Face checkpoints.
//!
//! Both the Hugging Face (`model.safetensors`) and the CTranslate2 (`model.bin`) layouts are
//! read into a [`TensorStore`] keyed by Hugging Face names; the model is built from that map
//! only, so there is one construction path for every checkpoint format.
pub mod ct2;
pub mod hub;
pub mod safetensors;

use crate::config::{GenerationConfig, WhisperConfig};
use crate::{Result, WhisperError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A host tensor in f32 with its shape.
#[derive(Debug, Clone)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self { shape, data }
    }
}

/// Named weights, Hugging Face naming (`model.encoder.layers.0.self_attn.q_proj.weight`).
#[derive(Debug, Default)]
pub struct TensorStore {
    tensors: HashMap<String, HostTensor>,
}

impl TensorStore {
    pub fn insert(&mut self, name: impl Into<String>, tensor: HostTensor) {
        self.tensors.insert(name.into(), tensor);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Removes and returns a tensor, checking its shape when `shape` is given.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let t = self
            .tensors
            .remove(name)
            .ok_or_else(|| WhisperError::Weights(format!("missing tensor `{name}`")))?;
        if t.shape != shape {
            return Err(WhisperError::Weights(format!(
                "tensor `{name}` has shape {:?}, expected {:?}",
                t.shape, shape
            )));
        }
        Ok(t)
    }

    pub fn get(&self, name: &str) -> Option<&HostTensor> {
        self.tensors.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

/// Which on-disk layout a model directory uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFormat {
    HuggingFace,
    CTranslate2,
}

/// Everything read from a checkpoint: architecture, suppression settings, weights and
/// the path of `tokenizer.json`.
pub struct LoadedCheckpoint {
    pub config: WhisperConfig,
    pub generation: GenerationConfig,
    pub tensors: TensorStore,
    pub tokenizer_path: PathBuf,
    pub format: CheckpointFormat,
    pub dir: PathBuf,
}

/// Detects the layout of a local model directory.
pub fn detect_format(dir: &Path) -> Result<CheckpointFormat> {
    if dir.join("model.safetensors").is_file() {
        Ok(CheckpointFormat::HuggingFace)
    } else if dir.join("model.bin").is_file() {
        Ok(CheckpointFormat::CTranslate2)
    } else {
        Err(WhisperError::ModelNotFound(format!(
            "{} holds neither model.safetensors (Hugging Face) nor model.bin (CTranslate2)",
            dir.display()
        )))
    }
}

/// Loads a checkpoint from a local directory or, when `model` is no directory, from the
/// Hugging Face hub (through hf-hub and its cache).
pub fn load_checkpoint(model: &str) -> Result<LoadedCheckpoint> {
    let dir = resolve_model_dir(model)?;
    match detect_format(&dir)? {
        CheckpointFormat::HuggingFace => safetensors::load_hf_dir(&dir),
        CheckpointFormat::CTranslate2 => ct2::load_ct2_dir(&dir),
    }
}

/// A local directory as given, or a hub id downloaded into hf-hub's cache.
pub fn resolve_model_dir(model: &str) -> Result<PathBuf> {
    let path = Path::new(model);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if path.exists() {
        return Err(WhisperError::ModelNotFound(format!(
            "{model} is not a directory"
        )));
    }
    if model.starts_with('.') || model.starts_with('/') || model.matches('/').count() != 1 {
        return Err(WhisperError::ModelNotFound(format!(
            "{model}: no such directory, and not a hub id of the form `owner/name`"
        )));
    }
    hub::download_hf_model(model)
}

/// `tokenizer.json` of a model directory, which every layout needs.
pub(crate) fn tokenizer_path(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Err(WhisperError::Tokenizer(format!(
            "{} is missing",
            path.display()
        )));
    }
    Ok(path)
}

pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| WhisperError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| WhisperError::Config(format!("{}: {e}", path.display())))
}

pub(crate) fn json_u32_list(value: Option<&serde_json::Value>) -> Vec<u32> {
    value
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_i64())
                .filter(|x| *x >= 0)
                .map(|x| x as u32)
                .collect()
        })
        .unwrap_or_default()
}
