//! Whisper inference on burn, generic over the backend (`B: WhisperBackend`).
//!
//! - [`audio`]: decoding any common format to 16 kHz mono
//! - [`mel`]: Whisper's log-mel frontend (as faster-whisper computes it)
//! - [`tokenizer`]: the model's `tokenizer.json`, special tokens from the vocabulary
//! - [`weights`]: Hugging Face (`model.safetensors`) and CTranslate2 (`model.bin`) checkpoints
//! - [`model`]: encoder and decoder; the decoder state holds a rollback-able KV cache
//! - [`decoding`]: logit rules, greedy and beam search, language detection, long-form
//! - [`vad`]: Silero voice activity detection and speech chunks, as faster-whisper
pub mod allocator;
pub mod audio;
pub mod backend;
pub mod config;
pub mod cpu;
pub mod decoding;
pub mod error;
pub mod mel;
pub mod model;
pub mod pipeline;
pub mod subtitles;
/// Test fixtures for this workspace's tests (feature `testing`); not part of the API.
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod tokenizer;
pub mod vad;
pub mod weights;

pub use config::{GenerationConfig, WhisperConfig};
pub use decoding::{DecodeOptions, GreedyDecoder, Segment, Transcript, WindowDecoder, Word};
pub use error::{Result, WhisperError};
pub use model::{DecoderState, Whisper};
pub use pipeline::Pipeline;
pub use tokenizer::{Task, WhisperTokenizer};
