//! Hugging Face hub ids (`openai/whisper-large-v2`) resolved through hf-hub and its cache.
use crate::{Result, WhisperError};
use std::path::PathBuf;

const REQUIRED_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
const OPTIONAL_FILES: [&str; 2] = ["generation_config.json", "preprocessor_config.json"];

/// Returns the snapshot directory of `model_id`, from the local hf-hub cache when every
/// required file is there (no network needed), otherwise downloading into that cache.
pub fn download_hf_model(model_id: &str) -> Result<PathBuf> {
    if let Some(dir) = cached_snapshot(model_id) {
        return Ok(dir);
    }
    if std::env::var("HF_HUB_OFFLINE")
        .map(|v| v == "1")
        .unwrap_or(false)
    {
        return Err(WhisperError::Hub(format!(
            "{model_id} is not in the local hf-hub cache and HF_HUB_OFFLINE=1"
        )));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| WhisperError::Hub(format!("{model_id}: {e}")))?;
    let repo = api.model(model_id.to_string());
    let mut dir = None;
    for file in REQUIRED_FILES {
        let path = repo
            .get(file)
            .map_err(|e| WhisperError::Hub(format!("{model_id}: cannot fetch {file}: {e}")))?;
        dir = path.parent().map(|p| p.to_path_buf());
    }
    for file in OPTIONAL_FILES {
        let _ = repo.get(file);
    }
    dir.ok_or_else(|| WhisperError::Hub(format!("{model_id}: empty snapshot")))
}

fn cached_snapshot(model_id: &str) -> Option<PathBuf> {
    let cache = hf_hub::Cache::from_env();
    let repo = cache.model(model_id.to_string());
    let mut dir = None;
    for file in REQUIRED_FILES {
        let path = repo.get(file)?;
        dir = path.parent().map(|p| p.to_path_buf());
    }
    dir
}
