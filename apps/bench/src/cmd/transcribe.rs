//! `whisper-bench transcribe`: print transcripts (text, or one JSON object per input), and
//! for long batch runs append them to a resumable JSON-lines file (`--output`, `--resume`),
//! optionally one shard of the inputs (`--shard I/N`).
use super::inputs::{collect, Input, Shard};
use super::jsonl::JsonlOutput;
use super::vad::VadArgs;
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spec_engine::{DraftLength, DraftSpec, Engine, EngineConfig};
use std::path::PathBuf;
use std::time::Instant;
use whisper_burn::backend::{dispatch, BackendTask, DeviceKind, DeviceSpec};
use whisper_burn::decoding::beam::BeamSearchDecoder;
use whisper_burn::subtitles::{CueOptions, SubtitleFormat};
use whisper_burn::vad::{transcribe_chunked, transcribe_speech, SileroVad};
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
    /// Only the first N inputs (applied before `--shard`: the shards split these N).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Transcribe only shard I of N (0-based, I < N): the inputs at positions I, I+N, I+2N,
    /// ... of the ordered input list (files given, then manifest rows, after `--limit`).
    /// The N shards are disjoint and together cover the list, so a Kubernetes Indexed Job
    /// can pass `--shard $JOB_COMPLETION_INDEX/N`. Give each shard its own `--output`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Append one JSON line per finished input to this file (the object `--json` prints,
    /// with its `id`). Each line is written whole with one append and synced to disk, so a
    /// crash leaves at most a torn last line. An existing non-empty file is refused unless
    /// `--resume` is given. Inputs need distinct ids. Stdout is printed as without it.
    #[arg(long, value_name = "FILE.jsonl")]
    pub output: Option<PathBuf>,
    /// With `--output`: skip the inputs whose `id` the file already holds and append the
    /// rest, after cutting off a torn last line (one without a newline) left by a crash.
    /// A missing file is created. Safe to pass on every start, e.g. by a scheduler's retry.
    #[arg(long, requires = "output")]
    pub resume: bool,
    /// Language code; detected when omitted (multilingual models).
    #[arg(long)]
    pub language: Option<String>,
    #[arg(long, value_enum, default_value_t = TaskArg::Transcribe)]
    pub task: TaskArg,
    /// Emit timestamped segments.
    #[arg(long)]
    pub timestamps: bool,
    /// Word-level timestamps (implies --timestamps): each segment's `words` with start,
    /// end and probability in the JSON output, and one cue per word in srt/vtt files.
    /// From the main model's alignment heads, so identical with and without a draft.
    #[arg(long)]
    pub word_timestamps: bool,
    /// With --word-timestamps: srt, vtt and tsv cues of at most this many words, timed
    /// by their words (1: one cue per word), as the `whisper` CLI's --max_words_per_line.
    #[arg(long, requires = "word_timestamps", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_words_per_line: Option<u32>,
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
    /// Decode a window again at these temperatures, in order, when its text repeats
    /// (compression ratio above --compression-ratio-threshold) or is unlikely (average
    /// log-probability below -1), keeping the best attempt. Default with --temperature 0
    /// and no beam search: 0.2,0.4,0.6,0.8,1.0, as openai-whisper and faster-whisper.
    /// Exact with a draft too.
    #[arg(long, value_delimiter = ',', conflicts_with = "no_fallback")]
    pub temperature_fallback: Option<Vec<f32>>,
    /// No temperature fallback: the transcript is then the model's greedy output, token
    /// for token.
    #[arg(long)]
    pub no_fallback: bool,
    /// Compression ratio above which a window's text counts as repetitive.
    #[arg(long, default_value_t = 2.4)]
    pub compression_ratio_threshold: f32,
    /// One JSON object per input.
    #[arg(long)]
    pub json: bool,
    /// Also write transcript files: comma-separated `txt`, `srt`, `vtt`, `tsv`, `json`, or
    /// `all` (formats with times decode with timestamps).
    #[arg(long, value_delimiter = ',')]
    pub output_format: Vec<String>,
    /// Folder for the `--output-format` files: one per input and format, named after the
    /// input (`talk.mp3` gives `talk.srt`).
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
    /// Text the first window is conditioned on (names, spellings, style), as the
    /// `whisper` CLI's `--initial_prompt`.
    #[arg(long)]
    pub initial_prompt: Option<String>,
    /// Transcribe the speech only (faster-whisper's `vad_filter=True`): Silero VAD finds
    /// it, the speech is transcribed without the silences, and every time is mapped back
    /// to the input's. Fewer hallucinations and less work on audio with pauses.
    #[arg(long)]
    pub vad: bool,
    /// The VAD-chunked batched pipeline: each input is cut at speech boundaries into
    /// groups of at most 30 s of speech, decoded --batch-size groups at a time (greedy or
    /// speculative) without previous-text conditioning, as faster-whisper's
    /// BatchedInferencePipeline; segments come back in order with the input's times.
    #[arg(long, conflicts_with = "vad")]
    pub batched: bool,
    #[command(flatten)]
    pub vad_options: VadArgs,
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
    if args.output.is_some() {
        refuse_duplicate_ids(&inputs)?;
    }
    let total = inputs.len();
    let mut inputs = match args.shard {
        Some(shard) => {
            let selected = shard.select(inputs);
            eprintln!("shard {shard}: {} of {total} inputs", selected.len());
            selected
        }
        None => inputs,
    };
    // Before `--resume` drops the finished inputs, so that names collide as in a whole run.
    let outputs = OutputFiles::new(&args, &inputs)?;
    let log = match &args.output {
        Some(path) => {
            let (log, existing) = JsonlOutput::open(path, args.resume)?;
            if existing.torn_bytes > 0 {
                eprintln!(
                    "{}: cut off a torn last line ({} bytes) left by an interrupted run",
                    path.display(),
                    existing.torn_bytes
                );
            }
            if args.resume {
                let before = inputs.len();
                inputs.retain(|i| !existing.ids.contains(&i.id));
                eprintln!(
                    "resuming {}: {} of {before} inputs already done, {} to go",
                    path.display(),
                    before - inputs.len(),
                    inputs.len()
                );
            }
            Some(log)
        }
        None => None,
    };
    if inputs.is_empty() {
        eprintln!("nothing to transcribe");
        return Ok(());
    }
    dispatch(
        args.device,
        TranscribeTask {
            args,
            inputs,
            outputs,
            log,
        },
    )?
}

/// `--output` and `--resume` identify inputs by id, so two inputs must not share one.
fn refuse_duplicate_ids(inputs: &[Input]) -> Result<()> {
    let mut seen = std::collections::HashMap::new();
    for input in inputs {
        if let Some(other) = seen.insert(input.id.as_str(), &input.path) {
            anyhow::bail!(
                "{} and {} have the same id `{}`; --output identifies inputs by id, so give them \
                 distinct ids (manifest `id` column, or file names) or transcribe them in separate runs",
                other.display(),
                input.path.display(),
                input.id
            );
        }
    }
    Ok(())
}

struct TranscribeTask {
    args: TranscribeArgs,
    inputs: Vec<Input>,
    outputs: OutputFiles,
    log: Option<JsonlOutput>,
}

/// The transcript files to write for each input.
struct OutputFiles {
    formats: Vec<SubtitleFormat>,
    dir: PathBuf,
    cues: CueOptions,
}

impl OutputFiles {
    /// Parses `--output-format`, refuses two inputs that would write the same file, and
    /// creates the folder.
    fn new(args: &TranscribeArgs, inputs: &[Input]) -> Result<Self> {
        let mut formats = Vec::new();
        for name in &args.output_format {
            if name.trim().eq_ignore_ascii_case("all") {
                formats.extend(SubtitleFormat::ALL);
            } else {
                formats.push(name.parse::<SubtitleFormat>().map_err(anyhow::Error::msg)?);
            }
        }
        formats.sort();
        formats.dedup();
        let files = Self {
            formats,
            dir: args.output_dir.clone(),
            cues: CueOptions {
                max_words_per_line: args.max_words_per_line.map(|n| n as usize),
            },
        };
        if files.formats.is_empty() {
            return Ok(files);
        }
        let mut seen = std::collections::HashMap::new();
        for input in inputs {
            if let Some(other) = seen.insert(files.stem(input), &input.path) {
                anyhow::bail!(
                    "{} and {} would write the same output files in {}; transcribe them in separate runs or rename one",
                    other.display(),
                    input.path.display(),
                    files.dir.display()
                );
            }
        }
        std::fs::create_dir_all(&files.dir)
            .with_context(|| format!("creating {}", files.dir.display()))?;
        Ok(files)
    }

    fn needs_timestamps(&self) -> bool {
        self.formats.iter().any(|f| f.needs_timestamps())
    }

    fn stem(&self, input: &Input) -> String {
        input
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| input.id.clone())
    }

    /// Writes each file whole (to a temporary name, then renamed), so that a reader never
    /// sees half a file.
    fn write(&self, input: &Input, t: &Transcript) -> Result<()> {
        for f in &self.formats {
            let path = self
                .dir
                .join(format!("{}.{}", self.stem(input), f.extension()));
            let partial = path.with_extension(format!("{}.partial", f.extension()));
            std::fs::write(&partial, f.render_with(t, &self.cues))
                .and_then(|()| std::fs::rename(&partial, &path))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

impl BackendTask for TranscribeTask {
    type Output = Result<()>;
    fn run<B: whisper_burn::backend::WhisperBackend>(
        mut self,
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
        let vad = match self.args.vad || self.args.batched {
            true => Some(SileroVad::load(&self.args.vad_options.vad_model)?),
            false => None,
        };
        if self.args.batched {
            return self.run_batched(&engine, vad.as_ref().expect("loaded above"));
        }
        let mut opts = decode_options(&self.args);
        opts.timestamps |= self.outputs.needs_timestamps();
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
            let transcribe = |audios: &[&[f32]]| -> Result<Vec<Transcript>> {
                if self.args.beam_size > 1 {
                    let mut beam = BeamSearchDecoder {
                        beam_size: self.args.beam_size,
                        patience: 1.0,
                        length_penalty: None,
                    };
                    Ok(engine.main.transcribe_batch(audios, &opts, &mut beam)?)
                } else {
                    Ok(engine.transcribe_batch(audios, &opts)?)
                }
            };
            let transcripts = match &vad {
                Some(vad) => {
                    transcribe_speech(vad, &self.args.vad_options.options(), &refs, transcribe)?
                }
                None => transcribe(&refs)?,
            };
            for (input, t) in chunk.iter().zip(&transcripts) {
                self.outputs.write(input, t)?;
                // Last, so that an id in the log means its other files are written too.
                if let Some(log) = &mut self.log {
                    log.append(&transcript_json(input, t))?;
                }
                bar.suspend(|| print_transcript(input, t, self.args.json));
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        Ok(())
    }
}

impl TranscribeTask {
    /// `--batched`: one input at a time, its VAD groups decoded `--batch-size` at once.
    fn run_batched<B: whisper_burn::backend::WhisperBackend>(
        &mut self,
        engine: &Engine<B>,
        vad: &SileroVad,
    ) -> Result<()> {
        if self.args.beam_size > 1 {
            anyhow::bail!("--batched decodes greedily (or speculatively); drop --beam-size");
        }
        let mut opts = decode_options(&self.args);
        opts.timestamps |= self.outputs.needs_timestamps();
        opts.condition_on_previous_text = false;
        let vad_opts = self.args.vad_options.batched_options();
        let bar = progress(self.inputs.len());
        for input in &self.inputs {
            let samples = audio::load_audio_file(&input.path)
                .with_context(|| format!("decoding {}", input.path.display()))?;
            let t = transcribe_chunked(vad, &vad_opts, &samples, self.args.batch_size, |groups| {
                Ok::<_, anyhow::Error>(engine.transcribe_batch(groups, &opts)?)
            })?;
            self.outputs.write(input, &t)?;
            if let Some(log) = &mut self.log {
                log.append(&transcript_json(input, &t))?;
            }
            bar.suspend(|| print_transcript(input, &t, self.args.json));
            bar.inc(1);
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
    if args.beam_size > 1
        && args
            .temperature_fallback
            .as_ref()
            .is_some_and(|f| !f.is_empty())
    {
        anyhow::bail!(
            "--beam-size > 1 cannot be combined with --temperature-fallback (its retries sample)"
        );
    }
    if let Some(t) = args
        .temperature_fallback
        .iter()
        .flatten()
        .find(|t| !(**t > 0.0 && **t <= 1.0))
    {
        anyhow::bail!(
            "--temperature-fallback temperatures must be above 0 and at most 1 (got {t})"
        );
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
        timestamps: args.timestamps || args.word_timestamps,
        word_timestamps: args.word_timestamps,
        temperature: args.temperature,
        seed: args.seed,
        temperature_fallback: fallback_ladder(args),
        compression_ratio_threshold: Some(args.compression_ratio_threshold),
        initial_prompt: args
            .initial_prompt
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        ..DecodeOptions::default()
    }
}

/// Whisper's default temperature ladder after 0.
const DEFAULT_FALLBACK: [f32; 5] = [0.2, 0.4, 0.6, 0.8, 1.0];

/// The fallback temperatures in effect: the ones given, else Whisper's ladder for greedy
/// (or speculative) decoding at temperature 0; none with --no-fallback, beam search or
/// sampling.
fn fallback_ladder(args: &TranscribeArgs) -> Vec<f32> {
    match &args.temperature_fallback {
        _ if args.no_fallback => Vec::new(),
        Some(given) => given.clone(),
        None if args.temperature == 0.0 && args.beam_size <= 1 => DEFAULT_FALLBACK.to_vec(),
        None => Vec::new(),
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

/// The object `--json` prints and `--output` appends for one input.
fn transcript_json(input: &Input, t: &Transcript) -> serde_json::Value {
    serde_json::json!({
            "id": input.id,
            "text": t.text,
            "tokens": t.tokens,
            "language": t.language,
            "audio_s": t.audio_s,
            "encode_s": t.encode_s,
            "decode_s": t.decode_s,
            "windows": t.windows,
            "main_passes": t.main_passes,
            "drafted": t.drafted,
            "accepted": t.accepted,
            "draft_s": t.draft_s,
        "fallbacks": t.fallbacks,
        "segments": t.segments.iter().map(segment_json).collect::<Vec<_>>(),
    })
}

fn segment_json(s: &whisper_burn::Segment) -> serde_json::Value {
    let mut v = serde_json::json!({"start_s": s.start_s, "end_s": s.end_s, "text": s.text});
    if !s.words.is_empty() {
        v["words"] = serde_json::json!(s.words);
    }
    v
}

fn print_transcript(input: &Input, t: &Transcript, json: bool) {
    if json {
        println!("{}", transcript_json(input, t));
    } else {
        println!("{}", t.text);
    }
}
