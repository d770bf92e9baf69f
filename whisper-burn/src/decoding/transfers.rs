//! Counts of device-to-host transfers and decoder passes on the calling thread, so
//! tests can check that device-resident decoding reads back at most one small tensor
//! per main-model pass. Decoding is synchronous, so a thread's counts are its decode's.
use std::cell::Cell;

thread_local! {
    static DOWNLOADS: Cell<usize> = const { Cell::new(0) };
    static PASSES: Cell<usize> = const { Cell::new(0) };
}

/// Transfers and passes counted on this thread since the last [`reset`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tensors read back from the backend's device (logits, decisions, states).
    pub downloads: usize,
    /// Decoder forward passes.
    pub passes: usize,
}

pub fn reset() {
    DOWNLOADS.with(|c| c.set(0));
    PASSES.with(|c| c.set(0));
}

pub fn counts() -> Counts {
    Counts {
        downloads: DOWNLOADS.with(Cell::get),
        passes: PASSES.with(Cell::get),
    }
}

pub(crate) fn count_download() {
    DOWNLOADS.with(|c| c.set(c.get() + 1));
}

pub(crate) fn count_pass() {
    PASSES.with(|c| c.set(c.get() + 1));
}
