pub mod inputs;
pub mod transcribe;
