pub mod benchmark;
pub mod inputs;
pub mod jsonl;
pub mod transcribe;
pub mod vad;
