//! `whisper-bench transcribe`: print transcripts (text, or one JSON object per input).
use super::inputs::{collect, Input};
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spec_engine::{DraftLength, DraftSpec, Engine, EngineConfig};
use std::path::PathBuf;
use std::time::Instant;
use whisper_burn::backend::{dispatch, BackendTask, DeviceKind, DeviceSpec};
use whisper_burn::decoding::beam::BeamSearchDecoder;
use whisper_burn::{audio, DecodeOptions, Task, Transcript};

#[derive(Args, Debug, Clone)]
pub struct TranscribeArgs {
    /// Model directory (Hugging Face or CTranslate2 layout) or hub id.
    #[arg(long, default_value = "weights/models/base")]
    pub model: String,
    /// Device: cpu, wgpu (wgpu:N the N-th discrete GPU, wgpu:cpu a software adapter) or
    /// cuda (cuda:N); the GPU ones need a build with that feature.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// TSV manifest with `id` and `path` columns.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Folder the manifest paths are relative to.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Only the first N inputs.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Language code; detected when omitted (multilingual models).
    #[arg(long)]
    pub language: Option<String>,
    #[arg(long, value_enum, default_value_t = TaskArg::Transcribe)]
    pub task: TaskArg,
    /// Emit timestamped segments.
    #[arg(long)]
    pub timestamps: bool,
    /// Draft for speculative decoding: `none`, `self-q8`, `self-q4`, or a model dir / hub id.
    #[arg(long, default_value = "none")]
    pub draft: String,
    /// Fixed number of draft tokens per verification (default: adaptive).
    #[arg(long, conflicts_with = "adaptive")]
    pub draft_tokens: Option<usize>,
    /// Adaptive draft length (the default).
    #[arg(long)]
    pub adaptive: bool,
    /// Beam search with this many beams (plain decoding only; 1 = greedy).
    #[arg(long, default_value_t = 1)]
    pub beam_size: usize,
    /// Inputs decoded together.
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// Sampling temperature (0 = greedy). With a draft, speculative sampling keeps the
    /// main model's sampling distribution exactly.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Seed of the sampling streams (same seed, same inputs: same transcript).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// One JSON object per input.
    #[arg(long)]
    pub json: bool,
    /// Audio files.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TaskArg {
    Transcribe,
    Translate,
}

pub fn run(args: TranscribeArgs) -> Result<()> {
    let inputs = collect(
        &args.files,
        args.manifest.as_deref(),
        args.root.as_deref(),
        args.limit,
    )?;
    dispatch(args.device, TranscribeTask { args, inputs })?
}

struct TranscribeTask {
    args: TranscribeArgs,
    inputs: Vec<Input>,
}

impl BackendTask for TranscribeTask {
    type Output = Result<()>;
    fn run<B: whisper_burn::backend::WhisperBackend>(
        self,
        device: B::Device,
        _kind: DeviceKind,
    ) -> Result<()> {
        let t0 = Instant::now();
        let engine = Engine::<B>::load(&self.args.model, engine_config(&self.args)?, &device)
            .with_context(|| format!("loading {} (draft {})", self.args.model, self.args.draft))?;
        eprintln!(
            "loaded {} (draft {}) in {:.2} s",
            self.args.model,
            self.args.draft,
            t0.elapsed().as_secs_f64()
        );
        let opts = decode_options(&self.args);
        let bar = progress(self.inputs.len());
        for chunk in self.inputs.chunks(self.args.batch_size.max(1)) {
            let audios = chunk
                .iter()
                .map(|i| {
                    audio::load_audio_file(&i.path)
                        .with_context(|| format!("decoding {}", i.path.display()))
                })
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&[f32]> = audios.iter().map(|a| a.as_slice()).collect();
            let transcripts = if self.args.beam_size > 1 {
                let mut beam = BeamSearchDecoder {
                    beam_size: self.args.beam_size,
                    patience: 1.0,
                    length_penalty: None,
                };
                engine.main.transcribe_batch(&refs, &opts, &mut beam)?
            } else {
                engine.transcribe_batch(&refs, &opts)?
            };
            for (input, t) in chunk.iter().zip(&transcripts) {
                bar.suspend(|| print_transcript(input, t, self.args.json));
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        Ok(())
    }
}

pub fn engine_config(args: &TranscribeArgs) -> Result<EngineConfig> {
    let draft: DraftSpec = args.draft.parse()?;
    if args.beam_size > 1 && draft != DraftSpec::None {
        anyhow::bail!("--beam-size > 1 runs plain beam search; it cannot be combined with --draft");
    }
    if args.beam_size > 1 && args.temperature != 0.0 {
        anyhow::bail!("--beam-size > 1 is deterministic; it cannot be combined with --temperature");
    }
    let draft_length = match args.draft_tokens {
        Some(k) if k >= 1 => DraftLength::Fixed(k),
        Some(_) => anyhow::bail!("--draft-tokens must be at least 1"),
        None => DraftLength::default(),
    };
    Ok(EngineConfig {
        draft,
        draft_length,
    })
}

pub fn decode_options(args: &TranscribeArgs) -> DecodeOptions {
    DecodeOptions {
        language: args.language.clone(),
        task: match args.task {
            TaskArg::Transcribe => Task::Transcribe,
            TaskArg::Translate => Task::Translate,
        },
        timestamps: args.timestamps,
        temperature: args.temperature,
        seed: args.seed,
        ..DecodeOptions::default()
    }
}

fn progress(n: usize) -> ProgressBar {
    if n < 2 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn print_transcript(input: &Input, t: &Transcript, json: bool) {
    if json {
        let v = serde_json::json!({
            "id": input.id,
            "text": t.text,
            "tokens": t.tokens,
            "language": t.language,
            "audio_s": t.audio_s,
            "encode_s": t.encode_s,
            "decode_s": t.decode_s,
            "main_passes": t.main_passes,
            "drafted": t.drafted,
            "accepted": t.accepted,
            "draft_s": t.draft_s,
            "segments": t.segments.iter().map(|s| serde_json::json!({"start_s": s.start_s, "end_s": s.end_s, "text": s.text})).collect::<Vec<_>>(),
        });
        println!("{v}");
    } else {
        println!("{}", t.text);
    }
}
