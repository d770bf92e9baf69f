//! Exact speculative decoding for Whisper on top of `whisper-burn`.
//!
//! A cheap draft proposes tokens ([`proposer`]), the main model checks all of them in one
//! forward pass ([`verifier`]), the longest agreeing prefix plus the main model's own next
//! token is kept and both caches roll back past the first disagreement. The output is
//! token for token the main model's greedy output.
pub mod compat;
pub mod cost;
pub mod device_draft;
pub mod engine;
pub mod error;
pub mod model_draft;
pub mod policy;
pub mod proposer;
pub mod self_draft;
pub mod speculative;
pub mod stats;
pub mod verifier;

pub use engine::{DraftSpec, Engine, EngineConfig};
pub use error::{Result, SpecError};
pub use policy::DraftLength;
pub use speculative::SpeculativeDecoder;
pub use stats::SpecStats;

/// The README's Rust examples, compiled as doc tests (`cargo test --doc -p spec-engine`).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
