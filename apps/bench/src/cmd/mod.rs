pub mod benchmark;
pub mod inputs;
pub mod transcribe;
