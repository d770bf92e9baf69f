//! Hugging Face checkpoints: `config.json` + `model.safetensors` (+ `generation_config.json`).
use super::{
    json_u32_list, read_json, tokenizer_path, CheckpointFormat, HostTensor, LoadedCheckpoint,
    TensorStore,
};
use crate::config::{json_alignment_heads, GenerationConfig, WhisperConfig};
use crate::{Result, WhisperError};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// Reads a Hugging Face Whisper directory.
pub fn load_hf_dir(dir: &Path) -> Result<LoadedCheckpoint> {
    let config_json = read_json(&dir.join("config.json"))?;
    let config: WhisperConfig = serde_json::from_value(config_json.clone())
        .map_err(|e| WhisperError::Config(format!("{}/config.json: {e}", dir.display())))?;
    let generation = read_generation_config(dir, &config_json)?;
    let tensors = read_safetensors(&dir.join("model.safetensors"))?;
    let tokenizer_path = tokenizer_path(dir)?;
    Ok(LoadedCheckpoint {
        config,
        generation,
        tensors,
        tokenizer_path,
        format: CheckpointFormat::HuggingFace,
        dir: dir.to_path_buf(),
    })
}

fn read_generation_config(dir: &Path, config_json: &serde_json::Value) -> Result<GenerationConfig> {
    let gen_path = dir.join("generation_config.json");
    let source = if gen_path.is_file() {
        read_json(&gen_path)?
    } else {
        config_json.clone()
    };
    Ok(GenerationConfig {
        suppress_tokens: json_u32_list(source.get("suppress_tokens")),
        begin_suppress_tokens: json_u32_list(source.get("begin_suppress_tokens")),
        alignment_heads: json_alignment_heads(source.get("alignment_heads")),
    })
}

/// Reads every tensor of a safetensors file as f32 (f32, f16 and bf16 are accepted).
pub fn read_safetensors(path: &Path) -> Result<TensorStore> {
    let bytes = std::fs::read(path).map_err(|e| WhisperError::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| WhisperError::Weights(format!("{}: {e}", path.display())))?;
    let mut store = TensorStore::default();
    for (name, view) in st.tensors() {
        let data = to_f32(view.dtype(), view.data())
            .map_err(|msg| WhisperError::Weights(format!("{name}: {msg}")))?;
        store.insert(name, HostTensor::new(view.shape().to_vec(), data));
    }
    Ok(store)
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> std::result::Result<Vec<f32>, String> {
    match dtype {
        Dtype::F32 => Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()),
        Dtype::F16 => Ok(bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()),
        Dtype::BF16 => Ok(bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()),
        other => Err(format!(
            "unsupported dtype {other:?} (expected F32, F16 or BF16)"
        )),
    }
}

/// Writes a safetensors file of f32 tensors (used by tests and tools that make checkpoints).
pub fn write_safetensors(path: &Path, tensors: &[(String, HostTensor)]) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, t)| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, t), b) in tensors.iter().zip(bytes.iter()) {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, t.shape.clone(), b)
            .map_err(|e| WhisperError::Weights(format!("{name}: {e}")))?;
        views.push((name.clone(), view));
    }
    safetensors::serialize_to_file(views, None, path)
        .map_err(|e| WhisperError::Weights(format!("{}: {e}", path.display())))
}
