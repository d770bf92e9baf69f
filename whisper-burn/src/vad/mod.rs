//! Voice activity detection with Silero VAD v6, as faster-whisper 1.2.1 runs it.
//!
//! - [`model`]: [`SileroVad`], the ONNX model's weights run on the host; one speech
//!   probability per 512-sample window, equal to onnxruntime's within 1e-4
//! - [`timestamps`]: [`VadOptions`] and [`speech_timestamps`], the port of
//!   `get_speech_timestamps` (hysteresis, minimum silence and speech, splitting, padding)
//! - [`chunks`]: [`collect_chunks`] (the speech audio alone) and [`TimestampMap`] (its
//!   times back in the original audio), as `collect_chunks` and `SpeechTimestampsMap`
//! - [`batched`]: [`transcribe_chunked`], the VAD-chunked batched pipeline
//! - [`filter`]: [`transcribe_speech`], transcription of the speech alone with the
//!   original times (faster-whisper's `vad_filter=True`)
//!
//! The model comes from the `faster-whisper==1.2.1` wheel (`weights/fetch.sh`); it is
//! snakers4/silero-vad's, MIT licensed.
//!
//! ```no_run
//! use whisper_burn::vad::{collect_chunks, speech_timestamps, SileroVad, VadOptions};
//! # fn main() -> whisper_burn::Result<()> {
//! let vad = SileroVad::load(whisper_burn::vad::DEFAULT_MODEL_PATH)?;
//! let audio = whisper_burn::audio::load_audio_file("talk.flac".as_ref())?;
//! let chunks = speech_timestamps(&vad, &audio, &VadOptions::default())?;
//! let (speech, map) = collect_chunks(&audio, &chunks);
//! // A time t in `speech` is map.original_time(t, None, false) in `audio`.
//! # Ok(()) }
//! ```
pub mod batched;
pub mod chunks;
pub mod filter;
pub mod model;
mod onnx;
pub mod timestamps;

pub use batched::{batched_vad_options, transcribe_chunked, transcribe_chunked_many};
pub use chunks::{collect_chunks, TimestampMap};
pub use filter::{restore_timestamps, transcribe_speech};
pub use model::{SileroVad, CONTEXT, DEFAULT_MODEL_PATH, WINDOW};
pub use timestamps::{chunks_from_probs, speech_timestamps, SpeechChunk, VadOptions};
