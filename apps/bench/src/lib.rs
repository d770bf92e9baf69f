//! Model-independent parts of the benchmark suite: transcript normalisation,
//! WER, data set loading, result summaries and report writers, and plots.

pub mod dataset;
pub mod normalizer;
pub mod plots;
pub mod report;
pub mod wer;
