//! `whisper-server`: a REST server for exact Whisper transcription on `spec-engine`.
//!
//! Handlers ([`api`]) validate the request, decode the audio on a blocking thread and
//! enqueue it ([`batcher::JobQueue`]); one batcher task forms batches of requests with the
//! same decoding options; one dedicated OS thread ([`worker`]) runs the engine on each batch
//! and answers every request on its own oneshot channel. Every failure is a JSON error with
//! a stable code ([`errors`]); [`metrics`] are served in the Prometheus text format.
pub mod api;
pub mod batcher;
pub mod config;
pub mod connections;
pub mod errors;
pub mod formats;
pub mod memory;
pub mod metrics;
pub mod server;
pub mod state;
pub mod worker;

pub use config::ServerConfig;
pub use errors::{ApiError, ErrorCode};
pub use server::{serve, start, ServerHandle};
pub use whisper_burn::backend::{DeviceKind, DeviceSpec};
