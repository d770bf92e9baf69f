//! State shared by the handlers.
use crate::batcher::JobQueue;
use crate::config::ServerConfig;
use crate::connections::Connections;
use crate::errors::{ApiError, ErrorCode};
use crate::memory::{MemoryBudget, Reservation};
use crate::metrics::Metrics;
use crate::worker::{ModelInfo, ModelStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

pub struct AppState {
    pub config: ServerConfig,
    pub queue: Arc<JobQueue>,
    pub metrics: Arc<Metrics>,
    pub status: watch::Receiver<ModelStatus>,
    /// Transcription requests admitted at once (bounds upload memory).
    pub admission: Arc<Semaphore>,
    /// Bytes of bodies and decoded audio held by requests.
    pub memory: MemoryBudget,
    /// Audio decodes running at once.
    pub decode_slots: Arc<Semaphore>,
    /// Open connections, to notice clients that leave.
    pub connections: Arc<Connections>,
    shutting_down: AtomicBool,
}

/// Held by an admitted request until it is answered.
pub struct InFlight {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

impl AppState {
    pub fn new(
        config: ServerConfig,
        queue: Arc<JobQueue>,
        metrics: Arc<Metrics>,
        status: watch::Receiver<ModelStatus>,
        connections: Arc<Connections>,
        memory: MemoryBudget,
    ) -> Self {
        Self {
            memory,
            admission: Arc::new(Semaphore::new(config.max_in_flight())),
            decode_slots: Arc::new(Semaphore::new(config.decode_concurrency)),
            config,
            queue,
            metrics,
            status,
            connections,
            shutting_down: AtomicBool::new(false),
        }
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// The loaded model, or why new requests cannot be admitted now.
    pub fn ready_model(&self) -> Result<Arc<ModelInfo>, ApiError> {
        if self.is_shutting_down() {
            return Err(
                ApiError::new(ErrorCode::ShuttingDown, "the server is shutting down")
                    .with_retry_after(self.config.retry_after_s),
            );
        }
        self.model()
    }

    /// The loaded model (also while shutting down: admitted requests are finished).
    pub fn model(&self) -> Result<Arc<ModelInfo>, ApiError> {
        match &*self.status.borrow() {
            ModelStatus::Ready(info) => Ok(info.clone()),
            ModelStatus::Loading => Err(ApiError::new(
                ErrorCode::ModelLoading,
                "the model is still loading; retry shortly",
            )
            .with_retry_after(self.config.retry_after_s.max(5))),
            ModelStatus::Failed(msg) => Err(ApiError::new(
                ErrorCode::InferenceFailed,
                format!("the model failed to load: {msg}"),
            )),
        }
    }

    /// Reserves `bytes` of the payload budget, or refuses with 429 `overloaded`.
    pub fn reserve(&self, bytes: usize) -> Result<Reservation, ApiError> {
        self.memory
            .try_reserve(bytes)
            .ok_or_else(|| self.out_of_budget(bytes))
    }

    /// 429 for a request whose `bytes` do not fit the payload budget now.
    pub fn out_of_budget(&self, bytes: usize) -> ApiError {
        ApiError::overloaded(
            format!(
                "the server holds {:.0} MB of its {:.0} MB upload budget and cannot take {:.1} MB \
                 more now; retry later",
                self.memory.reserved_bytes() as f64 / 1e6,
                self.memory.total_bytes() as f64 / 1e6,
                bytes as f64 / 1e6
            ),
            self.config.retry_after_s,
        )
    }

    /// Admits one more transcription request, or refuses with 429 `overloaded`.
    pub fn admit(&self) -> Result<InFlight, ApiError> {
        match self.admission.clone().try_acquire_owned() {
            Ok(permit) => {
                self.metrics.in_flight.inc();
                Ok(InFlight {
                    _permit: permit,
                    metrics: self.metrics.clone(),
                })
            }
            Err(_) => Err(ApiError::overloaded(
                format!(
                    "too many requests in flight ({}); retry later",
                    self.config.max_in_flight()
                ),
                self.config.retry_after_s,
            )),
        }
    }
}
