//! `benchmark --mode longform`: long files transcribed sequentially (30 s windows, seek,
//! previous text) and through the VAD-chunked batched pipeline, greedy and speculative,
//! beside faster-whisper (same CTranslate2 weights, `scripts/longform_peer.py`)
//! sequential and `BatchedInferencePipeline`; every configuration once per repeat, in
//! turn (A B C A B C: the machine's drift hits all alike). Wall time, real-time factor,
//! WER against each file's text (Whisper's English normaliser), and whether each draft
//! gave exactly the greedy output of the same pipeline.
use super::{draft_config_name, draft_length, BenchmarkArgs};
use anyhow::{bail, Context as _, Result};
use spec_engine::{DraftSpec, Engine, EngineConfig};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use whisper_bench::normalizer::normalize_english;
use whisper_bench::plots;
use whisper_bench::wer::word_errors;
use whisper_burn::audio::{self, SAMPLE_RATE};
use whisper_burn::backend::{dispatch, BackendTask, DeviceKind, WhisperBackend};
use whisper_burn::vad::{batched_vad_options, transcribe_chunked, SileroVad};
use whisper_burn::{DecodeOptions, Segment, Transcript};

/// Silence inserted into the first file for its "with silences" version: `(every_s,
/// length_s)`: 10 s of digital silence after every 45 s of audio.
const SILENCE_EVERY_S: f64 = 45.0;
const SILENCE_LEN_S: f64 = 10.0;

/// One long input.
struct LongInput {
    name: String,
    audio: Vec<f32>,
    reference: Option<String>,
    /// The same samples as a 16 kHz WAV, for the peer.
    wav: PathBuf,
}

/// How a configuration runs.
#[derive(Clone, PartialEq)]
enum Runner {
    /// Ours: draft, and `Some(batch)` for the VAD-batched pipeline.
    Ours(DraftSpec, Option<usize>),
    /// faster-whisper: compute type, and `Some(batch)` for `BatchedInferencePipeline`.
    Peer(&'static str, Option<usize>),
}

struct Config {
    name: String,
    runner: Runner,
}

/// One timed run.
struct Row {
    input: String,
    config: String,
    repeat: usize,
    wall_s: f64,
    audio_s: f64,
    wer: Option<f64>,
    windows: usize,
    segments: Option<Vec<Segment>>,
}

pub fn run(args: &BenchmarkArgs) -> Result<()> {
    let out_dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "bench-results/longform-{}",
            super::output::timestamp()
        ))
    });
    std::fs::create_dir_all(out_dir.join("audio"))
        .with_context(|| format!("creating {}", out_dir.display()))?;
    let inputs = load_inputs(args, &out_dir)?;
    let configs = configs(args)?;
    let device = *args.device.first().context("--device needs a backend")?;
    let rows = dispatch(
        device,
        Task {
            args,
            inputs: &inputs,
            configs: &configs,
        },
    )??;
    let markdown = write_results(args, &inputs, &configs, &rows, &out_dir)?;
    println!("{markdown}");
    eprintln!("results written to {}", out_dir.display());
    Ok(())
}

/// Every `*.flac`/`*.wav` of `--dataset` (with its `.txt` text when present), cut to
/// `--limit-s`, plus the first one with silences inserted.
fn load_inputs(args: &BenchmarkArgs, out_dir: &Path) -> Result<Vec<LongInput>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&args.dataset)
        .with_context(|| format!("reading {}", args.dataset.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("flac" | "wav")))
        .collect();
    paths.sort();
    if let Some(n) = args.limit {
        paths.truncate(n);
    }
    if paths.is_empty() {
        bail!("no .flac or .wav files in {}", args.dataset.display());
    }
    let mut inputs = Vec::new();
    for path in &paths {
        let mut samples =
            audio::load_audio_file(path).with_context(|| format!("decoding {}", path.display()))?;
        if let Some(s) = args.limit_s {
            samples.truncate((s * SAMPLE_RATE as f64) as usize);
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        // The text matches the whole file only.
        let reference = match args.limit_s {
            Some(_) => None,
            None => std::fs::read_to_string(path.with_extension("txt")).ok(),
        };
        inputs.push(input(out_dir, name, samples, reference)?);
    }
    let first = &inputs[0];
    let silences = with_silences(&first.audio);
    let name = format!("{}-silences", first.name);
    let reference = first.reference.clone();
    inputs.push(input(out_dir, name, silences, reference)?);
    Ok(inputs)
}

fn input(
    out_dir: &Path,
    name: String,
    audio: Vec<f32>,
    reference: Option<String>,
) -> Result<LongInput> {
    let wav = out_dir.join("audio").join(format!("{name}.wav"));
    std::fs::write(&wav, wav_f32(&audio)).with_context(|| format!("writing {}", wav.display()))?;
    Ok(LongInput {
        name,
        audio,
        reference,
        wav,
    })
}

/// `audio` with `SILENCE_LEN_S` of zeros after every `SILENCE_EVERY_S`.
fn with_silences(audio: &[f32]) -> Vec<f32> {
    let every = (SILENCE_EVERY_S * SAMPLE_RATE as f64) as usize;
    let zeros = vec![0f32; (SILENCE_LEN_S * SAMPLE_RATE as f64) as usize];
    let mut out = Vec::with_capacity(audio.len() + zeros.len() * (audio.len() / every + 1));
    for piece in audio.chunks(every) {
        out.extend_from_slice(piece);
        if piece.len() == every {
            out.extend_from_slice(&zeros);
        }
    }
    out
}

/// A 16 kHz mono WAV of 32-bit float samples.
fn wav_f32(samples: &[f32]) -> Vec<u8> {
    let data_bytes = (samples.len() * 4) as u32;
    let mut out = Vec::with_capacity(44 + data_bytes as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_bytes).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * 4).to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_bytes.to_le_bytes());
    samples
        .iter()
        .for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
    out
}

/// Ours (greedy, then each draft) sequential and at each batch size; then the peer's.
fn configs(args: &BenchmarkArgs) -> Result<Vec<Config>> {
    if args.batch_sizes.contains(&0) {
        bail!("--batch-sizes must be at least 1");
    }
    let mut drafts = vec![DraftSpec::None];
    drafts.extend(super::speculative_drafts(args)?);
    let mut configs = Vec::new();
    for draft in &drafts {
        let label = draft_config_name(args, draft);
        configs.push(Config {
            name: format!("{label} seq"),
            runner: Runner::Ours(draft.clone(), None),
        });
        for &b in &args.batch_sizes {
            configs.push(Config {
                name: format!("{label} vad-b{b}"),
                runner: Runner::Ours(draft.clone(), Some(b)),
            });
        }
    }
    if args.no_peers {
        return Ok(configs);
    }
    if !peer_available() {
        eprintln!("note: faster-whisper is not importable by python3; peers skipped");
        return Ok(configs);
    }
    for compute in ["float32", "int8"] {
        configs.push(Config {
            name: format!("fw-{compute} seq"),
            runner: Runner::Peer(compute, None),
        });
    }
    for &b in &args.batch_sizes {
        configs.push(Config {
            name: format!("fw-int8 batched-b{b}"),
            runner: Runner::Peer("int8", Some(b)),
        });
    }
    Ok(configs)
}

fn peer_available() -> bool {
    Command::new("python3")
        .args(["-c", "import faster_whisper"])
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Task<'a> {
    args: &'a BenchmarkArgs,
    inputs: &'a [LongInput],
    configs: &'a [Config],
}

impl BackendTask for Task<'_> {
    type Output = Result<Vec<Row>>;
    fn run<B: WhisperBackend>(self, device: B::Device, _kind: DeviceKind) -> Result<Vec<Row>> {
        let args = self.args;
        let greedy = Engine::<B>::load(&args.main, EngineConfig::default(), &device)
            .with_context(|| format!("loading {}", args.main))?;
        let mut engines: Vec<(DraftSpec, Engine<B>)> = Vec::new();
        for c in self.configs {
            if let Runner::Ours(d, _) = &c.runner {
                if *d != DraftSpec::None && !engines.iter().any(|(e, _)| e == d) {
                    let cfg = EngineConfig {
                        draft: d.clone(),
                        draft_length: draft_length(args),
                    };
                    engines.push((
                        d.clone(),
                        Engine::with_main(greedy.main.clone(), cfg, &device)?,
                    ));
                }
            }
        }
        let vad = SileroVad::load(&args.vad_model)?;
        let engine_for = |d: &DraftSpec| -> &Engine<B> {
            engines
                .iter()
                .find(|(e, _)| e == d)
                .map_or(&greedy, |(_, e)| e)
        };
        let mut rows = Vec::new();
        for repeat in 0..args.repeats.max(1) {
            for input in self.inputs {
                for c in self.configs {
                    eprintln!("repeat {repeat}: {} / {}", input.name, c.name);
                    let row = match &c.runner {
                        Runner::Ours(d, batch) => {
                            run_ours(engine_for(d), &vad, args, input, *batch)?
                        }
                        Runner::Peer(compute, batch) => run_peer(args, input, compute, *batch)?,
                    };
                    rows.push(Row {
                        config: c.name.clone(),
                        repeat,
                        ..row
                    });
                }
            }
        }
        Ok(rows)
    }
}

fn run_ours<B: WhisperBackend>(
    engine: &Engine<B>,
    vad: &SileroVad,
    args: &BenchmarkArgs,
    input: &LongInput,
    batch: Option<usize>,
) -> Result<Row> {
    let opts = DecodeOptions {
        language: Some(args.language.clone()),
        timestamps: true,
        condition_on_previous_text: batch.is_none(),
        ..Default::default()
    };
    let t0 = Instant::now();
    let t: Transcript = match batch {
        None => engine.transcribe_batch(&[&input.audio], &opts)?.remove(0),
        Some(b) => transcribe_chunked(vad, &batched_vad_options(), &input.audio, b, |g| {
            engine.transcribe_batch(g, &opts)
        })?,
    };
    let wall_s = t0.elapsed().as_secs_f64();
    Ok(row(input, wall_s, &t.text, t.windows, Some(t.segments)))
}

fn run_peer(
    args: &BenchmarkArgs,
    input: &LongInput,
    compute: &str,
    batch: Option<usize>,
) -> Result<Row> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut cmd = Command::new("python3");
    cmd.arg("scripts/longform_peer.py")
        .args(["--model", &args.main, "--compute-type", compute])
        .args([
            "--language",
            &args.language,
            "--threads",
            &threads.to_string(),
        ])
        .arg("--audio")
        .arg(&input.wav);
    match batch {
        None => cmd.args(["--mode", "sequential"]),
        Some(b) => cmd.args(["--mode", "batched", "--batch-size", &b.to_string()]),
    };
    let out = cmd.output().context("running scripts/longform_peer.py")?;
    if !out.status.success() {
        bail!(
            "faster-whisper peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("scripts/longform_peer.py printed no JSON")?;
    let wall_s = v["wall_s"].as_f64().context("wall_s")?;
    let text = v["text"].as_str().unwrap_or_default();
    Ok(row(input, wall_s, text, 0, None))
}

fn row(
    input: &LongInput,
    wall_s: f64,
    text: &str,
    windows: usize,
    segments: Option<Vec<Segment>>,
) -> Row {
    let wer = input
        .reference
        .as_ref()
        .map(|r| word_errors(&normalize_english(r), &normalize_english(text)).wer() * 100.0);
    Row {
        input: input.name.clone(),
        config: String::new(),
        repeat: 0,
        wall_s,
        audio_s: input.audio.len() as f64 / SAMPLE_RATE as f64,
        wer,
        windows,
        segments,
    }
}

/// `results.csv`, `summary.md` and one wall-vs-WER plot per input; returns the summary.
fn write_results(
    args: &BenchmarkArgs,
    inputs: &[LongInput],
    configs: &[Config],
    rows: &[Row],
    out_dir: &Path,
) -> Result<String> {
    let mut csv = String::from("input,config,repeat,wall_s,audio_s,wer_percent,windows\n");
    for r in rows {
        let wer = r.wer.map(|w| format!("{w:.3}")).unwrap_or_default();
        let _ = writeln!(
            csv,
            "{},{},{},{:.3},{:.1},{},{}",
            r.input, r.config, r.repeat, r.wall_s, r.audio_s, wer, r.windows
        );
    }
    std::fs::write(out_dir.join("results.csv"), csv)?;
    let mut md = format!(
        "# Long-form benchmark\n\nmain `{}`, language `{}`, {} repeat(s) alternated, device `{}`; \
         ours with timestamps (sequential: previous-text prompts; vad-bN: VAD groups of at most 30 s, \
         N at a time, no prompt); faster-whisper greedy, no VAD (seq) or BatchedInferencePipeline \
         (batched). Wall: median over repeats (range). Speed: audio seconds per wall second.\n",
        args.main,
        args.language,
        args.repeats.max(1),
        args.device.first().map(|d| d.to_string()).unwrap_or_default()
    );
    for input in inputs {
        md.push_str(&input_table(input, configs, rows));
        let points: Vec<(String, f64, f64)> = configs
            .iter()
            .filter_map(|c| {
                let mine: Vec<&Row> = rows
                    .iter()
                    .filter(|r| r.input == input.name && r.config == c.name)
                    .collect();
                Some((c.name.clone(), median_wall(&mine)?, mine[0].wer?))
            })
            .collect();
        let stem = out_dir.join(format!("wall_vs_wer-{}", input.name));
        if let Err(e) = plots::time_vs_wer(
            points,
            &format!("{}: wall time vs WER", input.name),
            "wall time (s)",
            &stem,
        ) {
            eprintln!("note: no plot for {}: {e}", input.name);
        }
    }
    std::fs::write(out_dir.join("summary.md"), &md)?;
    Ok(md)
}

fn median_wall(rows: &[&Row]) -> Option<f64> {
    let mut w: Vec<f64> = rows.iter().map(|r| r.wall_s).collect();
    if w.is_empty() {
        return None;
    }
    w.sort_by(|a, b| a.total_cmp(b));
    Some(if w.len() % 2 == 1 {
        w[w.len() / 2]
    } else {
        (w[w.len() / 2 - 1] + w[w.len() / 2]) / 2.0
    })
}

/// One input's table: a row per configuration.
fn input_table(input: &LongInput, configs: &[Config], rows: &[Row]) -> String {
    let by_config: BTreeMap<&str, Vec<&Row>> = configs
        .iter()
        .map(|c| {
            let mine = rows
                .iter()
                .filter(|r| r.input == input.name && r.config == c.name)
                .collect();
            (c.name.as_str(), mine)
        })
        .collect();
    let baseline = configs
        .first()
        .and_then(|c| median_wall(&by_config[c.name.as_str()]));
    let mut md = format!(
        "\n## {} ({:.0} s)\n\n| config | wall s | speed | vs ours greedy seq | WER % | windows | same as greedy |\n|---|---|---|---|---|---|---|\n",
        input.name,
        input.audio.len() as f64 / SAMPLE_RATE as f64
    );
    for c in configs {
        let mine = &by_config[c.name.as_str()];
        let Some(wall) = median_wall(mine) else {
            continue;
        };
        let (lo, hi) = mine.iter().fold((f64::MAX, 0f64), |(lo, hi), r| {
            (lo.min(r.wall_s), hi.max(r.wall_s))
        });
        let audio_s = mine[0].audio_s;
        let vs = baseline.map_or(String::new(), |b| format!("{:.2}x", b / wall));
        let wer = mine[0].wer.map_or("-".into(), |w| format!("{w:.2}"));
        let same = same_as_greedy(c, configs, &by_config);
        let _ = writeln!(
            md,
            "| {} | {wall:.1} ({lo:.1}-{hi:.1}) | {:.1}x | {vs} | {wer} | {} | {same} |",
            c.name,
            audio_s / wall,
            if mine[0].windows > 0 {
                mine[0].windows.to_string()
            } else {
                "-".into()
            }
        );
    }
    md
}

/// For a draft's configuration: whether every repeat gave the segments of greedy's
/// configuration of the same pipeline.
fn same_as_greedy(c: &Config, configs: &[Config], by: &BTreeMap<&str, Vec<&Row>>) -> String {
    let Runner::Ours(draft, batch) = &c.runner else {
        return "-".into();
    };
    if *draft == DraftSpec::None {
        return "(baseline)".into();
    }
    let Some(g) = configs
        .iter()
        .find(|g| g.runner == Runner::Ours(DraftSpec::None, *batch))
    else {
        return "-".into();
    };
    let want = by[g.name.as_str()]
        .first()
        .and_then(|r| r.segments.as_ref());
    let same = by[c.name.as_str()]
        .iter()
        .all(|r| r.segments.as_ref() == want && want.is_some());
    if same { "yes" } else { "**NO**" }.into()
}
