//! Whisper inference on burn, generic over the backend.
pub mod audio;
pub mod error;
pub mod mel;

pub use error::{Result, WhisperError};
