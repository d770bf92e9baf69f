//! `whisper-bench benchmark`: speculative decoding against the greedy baseline, or beam
//! search sizes, on a data set; writes `results.csv`, `summary.json`, `summary.md` and
//! plots to an output folder and prints the summary.
//!
//! - [`measure`]: the timed runs on one backend (a [`BackendTask`](whisper_burn::backend::BackendTask))
//! - [`output`]: per-utterance results, summaries, reports and plots
mod longform;
mod measure;
mod output;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use spec_engine::{DraftLength, DraftSpec};
use std::path::PathBuf;
use whisper_bench::dataset::{load_dataset, Utterance};
use whisper_burn::backend::{dispatch, BackendTask, DeviceKind, DeviceSpec};
use whisper_burn::{audio, DecodeOptions, Transcript};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Greedy baseline and each draft (speculative decoding); outputs must be identical.
    Speculative,
    /// Beam search sizes per model, plus the speculative greedy point.
    Beam,
    /// Long files: sequential and VAD-batched, greedy and each draft, beside faster-whisper.
    Longform,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Speculative => "speculative",
            Mode::Beam => "beam",
            Mode::Longform => "longform",
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct BenchmarkArgs {
    #[arg(long, value_enum, default_value_t = Mode::Speculative)]
    pub mode: Mode,
    /// LibriSpeech folder, TSV manifest (`id`, `path`, optional `transcript`), or audio folder.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Folder the manifest paths are relative to.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Main model (directory or hub id); speculative mode.
    #[arg(long, default_value = "weights/models/base")]
    pub main: String,
    /// Drafts, comma separated: `self-q8`, `self-q4`, a model dir / hub id. In beam mode
    /// the first one gives the speculative greedy point (`none`: no such point).
    #[arg(long, value_delimiter = ',', default_value = "self-q8")]
    pub drafts: Vec<String>,
    /// Models for beam mode, comma separated (default: `--main`).
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Beam sizes for beam mode, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,5,8")]
    pub beams: Vec<usize>,
    /// Devices (cpu, wgpu[:N], cuda[:N]), comma separated; several run every
    /// configuration on each and compare them.
    #[arg(long, value_delimiter = ',', default_value = "cpu")]
    pub device: Vec<DeviceSpec>,
    /// Only the first N utterances.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Utterances decoded together (each one's latency is its batch's wall time).
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// Fixed number of draft tokens per verification (default: adaptive).
    #[arg(long)]
    pub draft_tokens: Option<usize>,
    /// Language code.
    #[arg(long, default_value = "en")]
    pub language: String,
    /// Largest number of tokens generated per 30-s window (default: Whisper's 224).
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// Warm-up batches decoded and discarded per configuration before timing.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Output folder (default `bench-results/<mode>-<timestamp>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Longform mode: batch sizes of the VAD-batched pipelines (ours and faster-whisper's).
    #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
    pub batch_sizes: Vec<usize>,
    /// Longform mode: runs of every configuration, alternated.
    #[arg(long, default_value_t = 2)]
    pub repeats: usize,
    /// Longform mode: only the first N seconds of each file (no WER then: the text is the
    /// whole file's).
    #[arg(long)]
    pub limit_s: Option<f64>,
    /// Longform mode: skip faster-whisper (otherwise run when python3 can import it).
    #[arg(long)]
    pub no_peers: bool,
    /// Longform mode: the Silero VAD model.
    #[arg(long, default_value = whisper_burn::vad::DEFAULT_MODEL_PATH)]
    pub vad_model: PathBuf,
}

/// One configuration's timed run over the whole data set on one backend.
pub struct ConfigRun {
    /// Configuration name (`greedy`, `self-q8`, `base/beam5`, ...).
    pub name: String,
    /// Configurations of one group are compared with the group's baseline.
    pub group: String,
    pub is_baseline: bool,
    pub device: DeviceKind,
    /// Seconds to make this configuration ready (see the report notes).
    pub load_s: f64,
    /// Beam mode: (model label, beam size) of a beam-search configuration.
    pub beam: Option<(String, usize)>,
    /// Beam mode: model label of the speculative greedy point.
    pub spec_point_of: Option<String>,
    /// Sum of the batches' wall-clock times.
    pub wall_s: f64,
    /// Per utterance (data set order): latency in seconds and the transcript.
    pub transcripts: Vec<(f64, Transcript)>,
}

/// Everything measured on one backend.
pub struct DeviceRuns {
    pub device: DeviceKind,
    /// (model, load seconds) of each main model loaded.
    pub model_loads: Vec<(String, f64)>,
    pub runs: Vec<ConfigRun>,
}

/// A data set with its audio decoded up front (decoding is not timed).
pub struct Corpus {
    pub utterances: Vec<Utterance>,
    pub audio: Vec<Vec<f32>>,
}

pub fn run(args: BenchmarkArgs) -> Result<()> {
    validate(&args)?;
    if args.mode == Mode::Longform {
        return longform::run(&args);
    }
    for &kind in dedup(&args.device).iter() {
        dispatch(kind, Probe)??;
    }
    let utterances = load_dataset(&args.dataset, args.root.as_deref(), args.limit)
        .with_context(|| format!("loading data set {}", args.dataset.display()))?;
    eprintln!("decoding audio of {} utterances", utterances.len());
    let audio = utterances
        .iter()
        .map(|u| {
            audio::load_audio_file(&u.path)
                .with_context(|| format!("decoding {}", u.path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let corpus = Corpus { utterances, audio };
    let opts = decode_options(&args);
    let devices = dedup(&args.device);
    let n_configs = match args.mode {
        Mode::Speculative | Mode::Longform => 1 + speculative_drafts(&args)?.len(),
        Mode::Beam => {
            models(&args).len()
                * (args.beams.len() + usize::from(spec_point_draft(&args)?.is_some()))
        }
    };
    let bar = progress((devices.len() * n_configs * corpus.audio.len()) as u64);
    let mut all = Vec::new();
    for &kind in &devices {
        let ctx = measure::Context {
            args: &args,
            corpus: &corpus,
            opts: &opts,
            bar: &bar,
        };
        let runs = match args.mode {
            Mode::Speculative => dispatch(kind, measure::SpeculativeTask(ctx))??,
            Mode::Beam => dispatch(kind, measure::BeamTask(ctx))??,
            Mode::Longform => unreachable!("long-form runs return above"),
        };
        all.push(runs);
    }
    bar.finish_and_clear();
    let out_dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "bench-results/{}-{}",
            args.mode,
            output::timestamp()
        ))
    });
    let markdown = output::write_all(&args, &corpus, &all, &out_dir)?;
    println!("{markdown}");
    eprintln!("results written to {}", out_dir.display());
    Ok(())
}

fn validate(args: &BenchmarkArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.draft_tokens == Some(0) {
        bail!("--draft-tokens must be at least 1");
    }
    if args.max_new_tokens == Some(0) {
        bail!("--max-new-tokens must be at least 1");
    }
    if args.device.is_empty() {
        bail!("--device needs at least one backend");
    }
    for d in &args.drafts {
        d.parse::<DraftSpec>()
            .with_context(|| format!("--drafts: bad draft `{d}`"))?;
    }
    if args.mode == Mode::Beam {
        if args.beams.is_empty() || args.beams.contains(&0) {
            bail!("--beams needs beam sizes of at least 1");
        }
    } else if !args.models.is_empty() || args.beams != [1, 2, 4, 5, 8] {
        eprintln!("note: --models and --beams only apply to --mode beam");
    }
    Ok(())
}

/// Checks that the backend exists in this build, before any work.
struct Probe;

impl BackendTask for Probe {
    type Output = Result<()>;
    fn run<B: whisper_burn::backend::WhisperBackend>(
        self,
        _device: B::Device,
        _kind: DeviceKind,
    ) -> Result<()> {
        Ok(())
    }
}

fn dedup(kinds: &[DeviceSpec]) -> Vec<DeviceSpec> {
    let mut v: Vec<DeviceSpec> = Vec::new();
    for k in kinds {
        if !v.contains(k) {
            v.push(*k);
        }
    }
    v
}

pub fn decode_options(args: &BenchmarkArgs) -> DecodeOptions {
    let mut opts = DecodeOptions {
        language: Some(args.language.clone()),
        ..Default::default()
    };
    if let Some(n) = args.max_new_tokens {
        opts.max_new_tokens = n;
    }
    opts
}

pub fn draft_length(args: &BenchmarkArgs) -> DraftLength {
    match args.draft_tokens {
        Some(k) => DraftLength::Fixed(k),
        None => DraftLength::default(),
    }
}

/// Configuration name of a draft: `self-q8`, `draft:<model dir name>`; `-k<K>` with a fixed length.
pub fn draft_config_name(args: &BenchmarkArgs, draft: &DraftSpec) -> String {
    let base = match draft {
        DraftSpec::None => "greedy".to_string(),
        DraftSpec::SelfQuantized { .. } => draft.to_string(),
        DraftSpec::Model(m) => format!("draft:{}", model_label(m)),
    };
    match args.draft_tokens {
        Some(k) if *draft != DraftSpec::None => format!("{base}-k{k}"),
        _ => base,
    }
}

/// Drafts of speculative mode (`none` entries dropped: the greedy baseline always runs).
pub fn speculative_drafts(args: &BenchmarkArgs) -> Result<Vec<DraftSpec>> {
    let mut v: Vec<DraftSpec> = Vec::new();
    for d in &args.drafts {
        let spec: DraftSpec = d.parse()?;
        if spec != DraftSpec::None && !v.contains(&spec) {
            v.push(spec);
        }
    }
    Ok(v)
}

/// Models of beam mode.
pub fn models(args: &BenchmarkArgs) -> Vec<String> {
    if args.models.is_empty() {
        vec![args.main.clone()]
    } else {
        args.models.clone()
    }
}

/// The draft of beam mode's speculative greedy point, if any.
pub fn spec_point_draft(args: &BenchmarkArgs) -> Result<Option<DraftSpec>> {
    match args.drafts.first() {
        None => Ok(None),
        Some(d) => {
            let spec: DraftSpec = d.parse()?;
            Ok((spec != DraftSpec::None).then_some(spec))
        }
    }
}

/// A short label of a model: the last path component (`weights/models/base` -> `base`).
pub fn model_label(model: &str) -> String {
    let trimmed = model.trim_end_matches('/');
    trimmed
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(trimmed)
        .to_string()
}

fn progress(n: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>22} {bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
