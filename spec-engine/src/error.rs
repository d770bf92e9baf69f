//! The one error type of `spec-engine`.
use whisper_burn::WhisperError;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Whisper(#[from] WhisperError),
    /// The draft cannot serve this main model; says why and what would fit.
    #[error("draft `{draft}` is incompatible with main model `{main}`: {reason}; {hint}")]
    Incompatible {
        draft: String,
        main: String,
        reason: String,
        hint: String,
    },
    #[error("invalid draft specification `{0}`: expected `self-q8`, `self-q4` (optionally `:N`, the text tokens its output keeps, e.g. `self-q4:8192`), `none`, a model directory or a hub id")]
    BadDraftSpec(String),
    #[error("invalid speculative setting: {0}")]
    Config(String),
}

pub type Result<T, E = SpecError> = std::result::Result<T, E>;
