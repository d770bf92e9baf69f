//! The one error type of the `whisper-burn` crate.
use std::path::PathBuf;

/// Everything that can go wrong in `whisper-burn`, each variant naming the problem.
#[derive(Debug, thiserror::Error)]
pub enum WhisperError {
    #[error("audio input is empty (no samples decoded)")]
    EmptyAudio,
    #[error("unsupported audio format: {0}")]
    UnsupportedAudio(String),
    #[error("corrupt or undecodable audio: {0}")]
    CorruptAudio(String),
    #[error("the audio is longer than the limit of {max_s} s")]
    AudioTooLong { max_s: f64 },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid model config: {0}")]
    Config(String),
    #[error("invalid or incomplete weights: {0}")]
    Weights(String),
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    #[error("model hub error: {0}")]
    Hub(String),
    #[error("model not found: {0}")]
    ModelNotFound(String),
    #[error("invalid decoding request: {0}")]
    Decode(String),
    #[error("device: {0}")]
    Device(String),
    /// Voice activity detection: the Silero model missing or unreadable, bad options or
    /// input.
    #[error("voice activity detection: {0}")]
    Vad(String),
}

pub type Result<T, E = WhisperError> = std::result::Result<T, E>;

impl WhisperError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WhisperError::Io {
            path: path.into(),
            source,
        }
    }
}
