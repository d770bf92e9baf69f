//! Wiring: listener, routes, batcher task, inference thread, graceful shutdown.
use crate::api::{middleware, Api};
use crate::batcher::{run_batcher, JobQueue};
use crate::config::ServerConfig;
use crate::connections::{Connections, TrackingAcceptor};
use crate::memory::MemoryBudget;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::worker::{self, ModelStatus};
use anyhow::{anyhow, Context, Result};
use poem::middleware::CatchPanic;
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;
use whisper_burn::backend::WhisperBackend;

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

impl ServerHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Waits until the model is loaded; fails if loading failed.
    pub async fn wait_ready(&self) -> Result<()> {
        let mut rx = self.state.status.clone();
        loop {
            match &*rx.borrow_and_update() {
                ModelStatus::Ready(_) => return Ok(()),
                ModelStatus::Failed(e) => return Err(anyhow!("loading the model failed: {e}")),
                ModelStatus::Loading => {}
            }
            rx.changed()
                .await
                .map_err(|_| anyhow!("the inference thread ended while loading"))?;
        }
    }

    /// Starts a graceful shutdown: no new connections, in-flight and queued requests finish.
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for the server to stop (after [`shutdown`](Self::shutdown)).
    pub async fn join(self) -> Result<()> {
        self.task.await.context("server task")?
    }

    /// Shuts down and waits.
    pub async fn stop(mut self) -> Result<()> {
        self.shutdown();
        self.join().await
    }
}

/// The whole HTTP application for a state.
pub fn app(state: Arc<AppState>) -> impl Endpoint {
    let api = OpenApiService::new(Api { state: state.clone() }, "whisper-server", env!("CARGO_PKG_VERSION"))
        .description(
            "Exact Whisper transcription with batching and speculative decoding. `POST /transcribe` returns the \
             transcript with timings and speculative statistics; `/v1/audio/transcriptions` and \
             `/v1/audio/translations` are compatible with OpenAI's audio API. Errors are \
             `{\"error\": {\"code\", \"message\"}}` with a stable `code`.",
        );
    let spec = api.spec();
    let docs = api.swagger_ui();
    let metrics = state.metrics.clone();
    let routes = Route::new()
        .at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(spec.clone())
            }),
        )
        .nest("/docs", docs)
        .nest("/", api)
        .data(state)
        .with(CatchPanic::new());
    let routes = Arc::new(routes);
    poem::endpoint::make(move |req| middleware::observe(routes.clone(), metrics.clone(), req))
}

/// Binds, starts the inference thread (which loads the model) and the batcher, and serves.
/// `/health` answers 503 until the model is loaded.
pub async fn start<B: WhisperBackend>(
    config: ServerConfig,
    device: B::Device,
) -> Result<ServerHandle> {
    config.validate()?;
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    let connections = Arc::new(Connections::default());
    let acceptor = TrackingAcceptor::new(listener, connections.clone())?;

    let memory = MemoryBudget::new(config.max_inflight_upload_bytes());
    let metrics = Arc::new(
        Metrics::new(config.queue_capacity, config.max_batch).with_upload_budget(memory.clone()),
    );
    let queue = Arc::new(JobQueue::new(
        config.queue_capacity,
        config.max_queued_audio_s,
        config.retry_after_s,
        metrics.clone(),
    ));
    let (status_tx, status_rx) = tokio::sync::watch::channel(ModelStatus::Loading);
    let (batch_tx, batch_rx) = std::sync::mpsc::channel();
    let worker = worker::spawn::<B>(&config, device, batch_rx, status_tx, metrics.clone())
        .context("starting the inference thread")?;
    let batcher = tokio::spawn(run_batcher(
        queue.clone(),
        batch_tx,
        Arc::new(Semaphore::new(1)),
        config.max_batch,
        config.max_wait(),
    ));

    let state = Arc::new(AppState::new(
        config.clone(),
        queue.clone(),
        metrics,
        status_rx,
        connections,
        memory,
    ));
    let app = app(state.clone());
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let timeout = Duration::from_secs(config.shutdown_timeout_s);
    let state2 = state.clone();
    let task = tokio::spawn(async move {
        let signal = async move {
            let _ = shutdown_rx.await;
            tracing::info!("shutting down: finishing in-flight requests");
            state2.begin_shutdown();
        };
        let served = poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(app, signal, Some(timeout))
            .await;
        // Every connection is done: nothing more can be queued. Finish what is queued.
        queue.close();
        let _ = batcher.await;
        let joined = tokio::task::spawn_blocking(move || worker.join()).await;
        tracing::info!("server stopped");
        served.context("serving")?;
        match joined {
            Ok(Ok(())) => Ok(()),
            _ => Err(anyhow!("the inference thread panicked")),
        }
    });
    tracing::info!("listening on http://{addr}");
    Ok(ServerHandle {
        addr,
        state,
        shutdown: Some(shutdown_tx),
        task,
    })
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Runs until SIGTERM / ctrl-c (then shuts down gracefully) or until loading the model fails.
pub async fn serve<B: WhisperBackend>(config: ServerConfig, device: B::Device) -> Result<()> {
    let mut handle = start::<B>(config, device).await?;
    let failed = async {
        match handle.wait_ready().await {
            Ok(()) => std::future::pending::<anyhow::Error>().await,
            Err(e) => e,
        }
    };
    let load_error = tokio::select! {
        _ = shutdown_signal() => None,
        e = failed => Some(e),
    };
    handle.shutdown();
    let stopped = handle.join().await;
    match load_error {
        Some(e) => Err(e),
        None => stopped,
    }
}
