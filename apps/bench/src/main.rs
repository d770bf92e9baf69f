//! `whisper-bench`: transcribe audio and benchmark decoding strategies.
mod cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "whisper-bench",
    version,
    about = "Exact speculative Whisper inference: transcribe and benchmark"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transcribe audio files or a manifest.
    Transcribe(cmd::transcribe::TranscribeArgs),
    /// Benchmark speculative decoding against greedy, or beam search sizes, on a data set.
    Benchmark(cmd::benchmark::BenchmarkArgs),
    /// Speech chunks found by Silero VAD (as faster-whisper), one JSON line per chunk.
    Vad(cmd::vad::VadCmdArgs),
}

fn main() -> anyhow::Result<()> {
    whisper_burn::allocator::keep_freed_buffers();
    let cli = Cli::parse();
    match cli.command {
        Command::Transcribe(args) => cmd::transcribe::run(args),
        Command::Benchmark(args) => cmd::benchmark::run(args),
        Command::Vad(args) => cmd::vad::run(args),
    }
}
