//! `whisper-bench vad`: the speech chunks Silero VAD finds in each file, as
//! faster-whisper 1.2.1 computes them, one JSON line per chunk.
use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;
use whisper_burn::audio;
use whisper_burn::vad::{chunks_from_probs, SileroVad, VadOptions, DEFAULT_MODEL_PATH};

/// The VAD options, with faster-whisper's `VadOptions` defaults.
#[derive(Args, Debug, Clone)]
pub struct VadArgs {
    /// The Silero VAD v6 ONNX file (`bash weights/fetch.sh` puts it there).
    #[arg(long, default_value = DEFAULT_MODEL_PATH)]
    pub vad_model: PathBuf,
    /// Windows with a speech probability at or above this are speech.
    #[arg(long, default_value_t = 0.5)]
    pub vad_threshold: f32,
    /// Below this a window is silence (default: threshold - 0.15).
    #[arg(long)]
    pub vad_neg_threshold: Option<f32>,
    /// Silence this long ends a speech chunk (default 2000; 160 with `transcribe --batched`).
    #[arg(long)]
    pub vad_min_silence_ms: Option<u32>,
    /// Chunks this short or shorter are dropped.
    #[arg(long, default_value_t = 0)]
    pub vad_min_speech_ms: u32,
    /// Padding added to each side of a chunk.
    #[arg(long, default_value_t = 400)]
    pub vad_speech_pad_ms: u32,
    /// Chunks longer than this are split (default: no limit).
    #[arg(long)]
    pub vad_max_speech_s: Option<f64>,
}

impl VadArgs {
    pub fn options(&self) -> VadOptions {
        VadOptions {
            threshold: self.vad_threshold,
            neg_threshold: self.vad_neg_threshold,
            min_speech_duration_ms: self.vad_min_speech_ms,
            max_speech_duration_s: self.vad_max_speech_s.unwrap_or(f64::INFINITY),
            min_silence_duration_ms: self.vad_min_silence_ms.unwrap_or(2000),
            speech_pad_ms: self.vad_speech_pad_ms,
        }
    }

    /// The options of the batched pipeline: faster-whisper's batched defaults (chunks cut
    /// at 160 ms silences, at most 30 s) where not given.
    pub fn batched_options(&self) -> VadOptions {
        let batched = whisper_burn::vad::batched_vad_options();
        VadOptions {
            min_silence_duration_ms: self
                .vad_min_silence_ms
                .unwrap_or(batched.min_silence_duration_ms),
            max_speech_duration_s: self
                .vad_max_speech_s
                .unwrap_or(batched.max_speech_duration_s)
                .min(batched.max_speech_duration_s),
            ..self.options()
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct VadCmdArgs {
    #[command(flatten)]
    pub vad: VadArgs,
    /// Print each file's speech probabilities (one per 512-sample window) as one JSON
    /// line instead of its chunks.
    #[arg(long)]
    pub probs: bool,
    /// Audio files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// One line per chunk: `{"file", "start_s", "end_s", "start", "end"}` (samples at 16 kHz,
/// end exclusive); a summary per file on stderr.
pub fn run(args: VadCmdArgs) -> Result<()> {
    let vad = SileroVad::load(&args.vad.vad_model)?;
    let opts = args.vad.options();
    let mut out = std::io::stdout().lock();
    for path in &args.files {
        let samples =
            audio::load_audio_file(path).with_context(|| format!("decoding {}", path.display()))?;
        let t0 = Instant::now();
        let probs = vad
            .speech_probs(&samples)
            .with_context(|| path.display().to_string())?;
        let vad_s = t0.elapsed().as_secs_f64();
        let file = path.display().to_string();
        let chunks = chunks_from_probs(&probs, samples.len(), &opts)?;
        if args.probs {
            writeln!(out, "{}", json!({ "file": file, "probs": probs }))?;
        } else {
            for c in &chunks {
                let line = json!({
                    "file": file,
                    "start_s": c.start_s(),
                    "end_s": c.end_s(),
                    "start": c.start,
                    "end": c.end,
                });
                writeln!(out, "{line}")?;
            }
        }
        let audio_s = audio::duration_s(&samples);
        let speech_s: f64 = chunks.iter().map(|c| c.end_s() - c.start_s()).sum();
        eprintln!(
            "{file}: {} chunks, {speech_s:.2} s of speech in {audio_s:.2} s; \
             model {vad_s:.3} s ({:.0}x real time)",
            chunks.len(),
            audio_s / vad_s.max(1e-9)
        );
    }
    Ok(())
}
