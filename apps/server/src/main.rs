//! `whisper-server --port 8000 --main <model> [--draft self-q8] [--device cpu|wgpu|cuda] ...`
use anyhow::Result;
use clap::Parser;
use whisper_burn::backend::{dispatch, BackendTask, DeviceKind};
use whisper_server::ServerConfig;

/// REST server for exact Whisper transcription with batching and speculative decoding.
#[derive(Debug, Parser)]
#[command(name = "whisper-server", version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerConfig,
}

struct Serve(ServerConfig);

impl BackendTask for Serve {
    type Output = Result<()>;
    fn run<B: whisper_burn::backend::WhisperBackend>(
        self,
        device: B::Device,
        _kind: DeviceKind,
    ) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("whisper-server-io")
            .build()?;
        runtime.block_on(whisper_server::serve::<B>(self.0, device))
    }
}

fn main() -> Result<()> {
    let freed_buffers_kept = whisper_burn::allocator::keep_freed_buffers();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    tracing::debug!(freed_buffers_kept, "allocator thresholds");
    let cli = Cli::parse();
    cli.server.validate()?;
    dispatch(cli.server.device, Serve(cli.server))?
}
