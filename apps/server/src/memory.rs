//! The memory budget for request payloads (`--max-inflight-upload-mb`): bodies being
//! received, files being decoded, and decoded audio waiting for or in inference all hold a
//! reservation against one budget. A request that does not fit is answered 429 at once,
//! never queued, so a flood of uploads cannot push the process past its limit.
//!
//! Worst-case resident memory, in terms of the flags:
//!
//! ```text
//! model and runtime (measured at start, e.g. ~0.6 GB for base)
//!   + max_inflight_upload_mb                       bodies and decoded audio
//!   + decode_concurrency * max_audio_s * 64 kB/s   16 kHz output of files being decoded
//!   + inference working memory for max_batch windows
//! ```
//!
//! Reservations are counted in KiB (a semaphore's permits).
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const KIB: usize = 1024;

/// A budget of bytes shared by every request.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total_kib: usize,
}

/// Bytes held by one request; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    permit: OwnedSemaphorePermit,
    permits: Arc<Semaphore>,
}

fn kib(bytes: usize) -> usize {
    bytes.div_ceil(KIB).max(1)
}

impl MemoryBudget {
    pub fn new(total_bytes: usize) -> Self {
        let total_kib = kib(total_bytes).min(u32::MAX as usize);
        Self {
            permits: Arc::new(Semaphore::new(total_kib)),
            total_kib,
        }
    }

    /// Reserves `bytes` now, or `None` when the budget lacks them.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        let n = u32::try_from(kib(bytes)).ok()?;
        let permit = self.permits.clone().try_acquire_many_owned(n).ok()?;
        Some(Reservation {
            permit,
            permits: self.permits.clone(),
        })
    }

    pub fn total_bytes(&self) -> usize {
        self.total_kib * KIB
    }

    /// Bytes reserved at this moment.
    pub fn reserved_bytes(&self) -> usize {
        (self.total_kib - self.permits.available_permits().min(self.total_kib)) * KIB
    }
}

impl Reservation {
    pub fn bytes(&self) -> usize {
        self.permit.num_permits() * KIB
    }

    /// Changes the reservation to `bytes`: shrinking always succeeds; growing takes the
    /// difference if the budget has it, and returns `false` (leaving it as it was) if not.
    pub fn resize(&mut self, bytes: usize) -> bool {
        let want = kib(bytes);
        let have = self.permit.num_permits();
        if want < have {
            drop(self.permit.split(have - want));
            return true;
        }
        if want == have {
            return true;
        }
        let Ok(extra) = u32::try_from(want - have) else {
            return false;
        };
        match self.permits.clone().try_acquire_many_owned(extra) {
            Ok(more) => {
                self.permit.merge(more);
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_against_the_budget_and_come_back() {
        let budget = MemoryBudget::new(10 << 20);
        let a = budget.try_reserve(6 << 20).expect("fits");
        assert!(budget.try_reserve(5 << 20).is_none());
        let mut b = budget.try_reserve(4 << 20).expect("fits");
        assert_eq!(budget.reserved_bytes(), 10 << 20);
        assert!(!b.resize(5 << 20), "over the budget");
        assert_eq!(b.bytes(), 4 << 20, "a failed resize leaves it");
        assert!(b.resize(1 << 20));
        assert_eq!(budget.reserved_bytes(), 7 << 20);
        assert!(b.resize(4 << 20));
        drop(a);
        assert!(b.resize(9 << 20));
        drop(b);
        assert_eq!(budget.reserved_bytes(), 0);
    }
}
