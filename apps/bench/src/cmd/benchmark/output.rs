//! From timed runs to `results.csv`, `summary.json`, `summary.md` and plots.
use super::{BenchmarkArgs, ConfigRun, Corpus, DeviceRuns, Mode};
use anyhow::{Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use whisper_bench::plots::{self, PlotError};
use whisper_bench::report::{
    beam_markdown, summarize, summary_markdown, write_results_csv, BeamPoint, ConfigSummary,
    RunInfo, UtteranceResult,
};
use whisper_burn::backend::DeviceKind;

/// Per (configuration, device) numbers beside [`ConfigSummary`].
#[derive(Debug, Clone, Serialize)]
pub struct ConfigDetail {
    pub config: String,
    pub device: String,
    /// The configuration this one is compared with (`None` for a baseline).
    pub baseline: Option<String>,
    /// Sum of the batches' wall-clock times, seconds.
    pub wall_s: f64,
    pub encode_s: f64,
    pub decode_s: f64,
    /// Time the draft spent proposing (inside `decode_s`).
    pub draft_s: f64,
    /// Baseline's total `decode_s` / this configuration's total `decode_s`.
    pub decoder_speedup_vs_baseline: Option<f64>,
    pub tokens: usize,
    pub drafted: usize,
    pub accepted: usize,
    pub main_passes: usize,
    /// Main-model passes that verified drafts: `main_passes` - one prefill per window.
    pub verification_passes: usize,
    /// `accepted / verification_passes` (None without drafting).
    pub mean_accepted_per_verification: Option<f64>,
    /// Ids whose tokens differ from the baseline's, with the first differing position
    /// (speculative configurations only: beam search is not expected to match greedy).
    pub not_identical: Vec<Mismatch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    pub id: String,
    pub first_difference: usize,
    pub n_tokens: usize,
    pub baseline_n_tokens: usize,
}

/// The same configuration on another backend, against the first backend given.
#[derive(Debug, Clone, Serialize)]
pub struct BackendRow {
    pub config: String,
    pub device: String,
    pub reference_device: String,
    pub mean_latency_s: f64,
    pub reference_mean_latency_s: f64,
    /// Reference device's total latency / this device's.
    pub speedup_vs_reference: Option<f64>,
    /// Utterances whose tokens equal the reference device's.
    pub identical_tokens: usize,
    pub n_utterances: usize,
}

/// Writes every output file into `out`; returns the Markdown summary.
pub fn write_all(
    args: &BenchmarkArgs,
    corpus: &Corpus,
    all: &[DeviceRuns],
    out: &Path,
) -> Result<String> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let total_audio: f64 = all
        .first()
        .and_then(|d| d.runs.first())
        .map(|r| r.transcripts.iter().map(|(_, t)| t.audio_s).sum())
        .unwrap_or(0.0);

    // Groups in order of first appearance; results group by group, device by device.
    let mut groups: Vec<&str> = Vec::new();
    for d in all {
        for r in &d.runs {
            if !groups.contains(&r.group.as_str()) {
                groups.push(&r.group);
            }
        }
    }
    let mut results = Vec::new();
    let mut summaries = Vec::new();
    let mut details = Vec::new();
    for group in &groups {
        let mut group_results = Vec::new();
        let mut baseline_name = None;
        for d in all {
            let baseline = d.runs.iter().find(|r| r.group == *group && r.is_baseline);
            baseline_name = baseline_name.or(baseline.map(|b| b.name.clone()));
            for run in d.runs.iter().filter(|r| r.group == *group) {
                let compare = baseline.filter(|b| !std::ptr::eq(*b, run));
                // Beam search may (and should) differ from greedy; only speculative runs must not.
                let must_match = compare.filter(|_| run.beam.is_none());
                group_results.extend(utterance_results(run, must_match, corpus));
                details.push(detail(run, compare, must_match, corpus));
            }
        }
        let mut s = summarize(&group_results, baseline_name.as_deref());
        for summary in &mut s {
            if let Some(run) = find_run(all, &summary.config, &summary.device) {
                summary.load_s = run.load_s;
                summary.rtf = if total_audio > 0.0 {
                    run.wall_s / total_audio
                } else {
                    f64::NAN
                };
            }
        }
        summaries.extend(s);
        results.extend(group_results);
    }

    let backend = backend_comparison(all);
    let beam_points = beam_points(all, &summaries);
    let info = run_info(all);
    let notes = notes(args);

    write_results_csv(&out.join("results.csv"), &results)?;
    let json = serde_json::json!({
        "mode": args.mode,
        "run": info,
        "summaries": summaries,
        "details": details,
        "backend_comparison": backend,
        "beam_points": beam_points,
        "model_loads": all.iter().flat_map(|d| d.model_loads.iter().map(move |(m, s)| serde_json::json!({"device": d.device, "model": m, "load_s": s}))).collect::<Vec<_>>(),
        "notes": notes,
    });
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )
    .with_context(|| format!("writing {}", out.join("summary.json").display()))?;

    let mut warnings = Vec::new();
    for d in details.iter().filter(|d| !d.not_identical.is_empty()) {
        let ids: Vec<String> = d
            .not_identical
            .iter()
            .map(|m| format!("{} (token {})", m.id, m.first_difference))
            .collect();
        let msg = format!(
            "{} on {}: {} transcript(s) NOT identical to {}: {}",
            d.config,
            d.device,
            d.not_identical.len(),
            d.baseline.as_deref().unwrap_or("the baseline"),
            ids.join(", ")
        );
        eprintln!("\n!!!!!!!!!! WARNING: {msg} !!!!!!!!!!\n");
        warnings.push(msg);
    }
    warnings.extend(make_plots(args, all, &summaries, &beam_points, out));
    for w in warnings.iter().filter(|w| w.starts_with("plot")) {
        eprintln!("warning: {w}");
    }

    let markdown = markdown(
        args,
        &info,
        &summaries,
        &details,
        &backend,
        &beam_points,
        all,
        &warnings,
        &notes,
    );
    std::fs::write(out.join("summary.md"), &markdown)
        .with_context(|| format!("writing {}", out.join("summary.md").display()))?;
    Ok(markdown)
}

fn find_run<'a>(all: &'a [DeviceRuns], config: &str, device: &str) -> Option<&'a ConfigRun> {
    all.iter()
        .flat_map(|d| d.runs.iter())
        .find(|r| r.name == config && r.device.to_string() == device)
}

fn utterance_results(
    run: &ConfigRun,
    baseline: Option<&ConfigRun>,
    corpus: &Corpus,
) -> Vec<UtteranceResult> {
    run.transcripts
        .iter()
        .enumerate()
        .map(|(i, (latency_s, t))| {
            let u = &corpus.utterances[i];
            UtteranceResult {
                config: run.name.clone(),
                device: run.device.to_string(),
                id: u.id.clone(),
                audio_s: t.audio_s,
                latency_s: *latency_s,
                decode_s: t.decode_s,
                n_tokens: t.tokens.len(),
                drafted: t.drafted,
                accepted: t.accepted,
                main_passes: t.main_passes,
                text: t.text.trim().to_string(),
                reference: u.reference.clone(),
                identical_to_baseline: baseline.map(|b| b.transcripts[i].1.tokens == t.tokens),
            }
        })
        .collect()
}

fn verification_passes(t: &whisper_burn::Transcript) -> usize {
    t.main_passes.saturating_sub(t.windows)
}

/// `baseline`: what speedups are measured against; `must_match`: whose tokens must be equal.
fn detail(
    run: &ConfigRun,
    baseline: Option<&ConfigRun>,
    must_match: Option<&ConfigRun>,
    corpus: &Corpus,
) -> ConfigDetail {
    let ts = || run.transcripts.iter().map(|(_, t)| t);
    let sum = |f: fn(&whisper_burn::Transcript) -> f64| ts().map(f).sum::<f64>();
    let decode_s = sum(|t| t.decode_s);
    let drafted: usize = ts().map(|t| t.drafted).sum();
    let accepted: usize = ts().map(|t| t.accepted).sum();
    let verification: usize = ts().map(verification_passes).sum();
    let not_identical = must_match
        .map(|b| {
            run.transcripts
                .iter()
                .zip(&b.transcripts)
                .enumerate()
                .filter(|(_, ((_, t), (_, bt)))| t.tokens != bt.tokens)
                .map(|(i, ((_, t), (_, bt)))| Mismatch {
                    id: corpus.utterances[i].id.clone(),
                    first_difference: first_difference(&t.tokens, &bt.tokens),
                    n_tokens: t.tokens.len(),
                    baseline_n_tokens: bt.tokens.len(),
                })
                .collect()
        })
        .unwrap_or_default();
    ConfigDetail {
        config: run.name.clone(),
        device: run.device.to_string(),
        baseline: baseline.map(|b| b.name.clone()),
        wall_s: run.wall_s,
        encode_s: sum(|t| t.encode_s),
        decode_s,
        draft_s: sum(|t| t.draft_s),
        decoder_speedup_vs_baseline: baseline.and_then(|b| {
            let base: f64 = b.transcripts.iter().map(|(_, t)| t.decode_s).sum();
            (decode_s > 0.0).then(|| base / decode_s)
        }),
        tokens: ts().map(|t| t.tokens.len()).sum(),
        drafted,
        accepted,
        main_passes: ts().map(|t| t.main_passes).sum(),
        verification_passes: verification,
        mean_accepted_per_verification: (drafted > 0 && verification > 0)
            .then(|| accepted as f64 / verification as f64),
        not_identical,
    }
}

fn first_difference(a: &[u32], b: &[u32]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

fn backend_comparison(all: &[DeviceRuns]) -> Vec<BackendRow> {
    let Some((reference, others)) = all.split_first() else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for d in others {
        for run in &d.runs {
            let Some(r) = reference.runs.iter().find(|r| r.name == run.name) else {
                continue;
            };
            let total = |c: &ConfigRun| c.transcripts.iter().map(|(l, _)| l).sum::<f64>();
            let n = run.transcripts.len().max(1) as f64;
            rows.push(BackendRow {
                config: run.name.clone(),
                device: d.device.to_string(),
                reference_device: reference.device.to_string(),
                mean_latency_s: total(run) / n,
                reference_mean_latency_s: total(r) / n,
                speedup_vs_reference: (total(run) > 0.0).then(|| total(r) / total(run)),
                identical_tokens: run
                    .transcripts
                    .iter()
                    .zip(&r.transcripts)
                    .filter(|((_, a), (_, b))| a.tokens == b.tokens)
                    .count(),
                n_utterances: run.transcripts.len(),
            });
        }
    }
    rows
}

fn beam_points(all: &[DeviceRuns], summaries: &[ConfigSummary]) -> Vec<BeamPoint> {
    let many = all.len() > 1;
    let mut points = Vec::new();
    for d in all {
        for run in &d.runs {
            let Some(s) = summaries
                .iter()
                .find(|s| s.config == run.name && s.device == d.device.to_string())
            else {
                continue;
            };
            let suffix = if many {
                format!(" ({})", d.device)
            } else {
                String::new()
            };
            let (model, beam_size) = match (&run.beam, &run.spec_point_of) {
                (Some((label, b)), _) => (format!("{label}{suffix}"), *b),
                (None, Some(label)) => {
                    let draft = run.name.rsplit('/').next().unwrap_or(&run.name);
                    (format!("{label} + {draft} (speculative greedy){suffix}"), 1)
                }
                _ => continue,
            };
            points.push(BeamPoint {
                model,
                beam_size,
                wer: s.wer.unwrap_or(f64::NAN),
                mean_latency_s: s.mean_latency_s,
            });
        }
    }
    points
}

/// Makes the figures; returns a warning per figure that could not be made.
fn make_plots(
    args: &BenchmarkArgs,
    all: &[DeviceRuns],
    summaries: &[ConfigSummary],
    beam: &[BeamPoint],
    out: &Path,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut check = |name: &str, r: Result<(), PlotError>| {
        if let Err(e) = r {
            warnings.push(format!("plot {name} not made: {e}"));
        }
    };
    check(
        "latency_vs_wer",
        plots::latency_vs_wer(summaries, &out.join("latency_vs_wer")),
    );
    match args.mode {
        Mode::Speculative | Mode::Longform => {
            check(
                "speedup_per_draft",
                plots::speedup_per_draft(summaries, &out.join("speedup_per_draft")),
            );
            let drafted: Vec<&ConfigRun> = all
                .iter()
                .flat_map(|d| d.runs.iter())
                .filter(|r| r.transcripts.iter().any(|(_, t)| t.drafted > 0))
                .collect();
            if drafted.is_empty() {
                check(
                    "acceptance_histogram",
                    Err(PlotError::NoData("no configuration drafted any token")),
                );
            }
            for (i, run) in drafted.iter().enumerate() {
                let lengths: Vec<usize> = run
                    .transcripts
                    .iter()
                    .filter(|(_, t)| t.drafted > 0 && verification_passes(t) > 0)
                    .map(|(_, t)| {
                        (t.accepted as f64 / verification_passes(t) as f64).round() as usize
                    })
                    .collect();
                let stem = if i == 0 {
                    "acceptance_histogram".to_string()
                } else {
                    format!(
                        "acceptance_histogram_{}_{}",
                        sanitize(&run.name),
                        run.device
                    )
                };
                check(
                    &stem,
                    plots::acceptance_histogram(&lengths, &out.join(&stem)),
                );
            }
        }
        Mode::Beam => check("beam_plot", plots::beam_plot(beam, &out.join("beam_plot"))),
    }
    warnings
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn notes(args: &BenchmarkArgs) -> Vec<String> {
    let baseline = match args.mode {
        Mode::Speculative | Mode::Longform => "`greedy` (the main model alone)",
        Mode::Beam => "`<model>/beam1` (beam 1 is greedy decoding)",
    };
    vec![
        format!(
            "Latency: wall clock (monotonic) around one `transcribe_batch` call of a batch of {} utterance(s), audio decoded beforehand; every utterance of a batch gets the batch's time. {} warm-up batch(es) per configuration decoded and discarded first.",
            args.batch_size, args.warmup
        ),
        "RTF: sum of the batches' wall-clock times / total audio duration.".into(),
        format!("Baseline: {baseline}, on the same backend in the same run; speedup = baseline total latency / total latency."),
        match args.mode {
            Mode::Speculative | Mode::Longform => "Order: interleaved; each batch is decoded by every configuration in turn (the order rotating from batch to batch) before the next batch, so drift in a shared machine's speed falls on all configurations alike.".into(),
            Mode::Beam => "Order: one configuration after another over the whole data set.".into(),
        },
        "identical: every transcript's token ids equal the baseline's (results.csv `identical_to_baseline` compares token ids, not only text); checked for speculative configurations, which must match, not for beam sizes.".into(),
        "Decoder-only speedup: baseline sum of `decode_s` / this configuration's (encoder and audio frontend excluded). tokens/s = generated tokens / sum of `decode_s`.".into(),
        "accepted/pass in the main table: accepted draft tokens / all main-decoder passes (prefill included); accepted/verification below excludes the one prefill pass per 30-s window.".into(),
        "acceptance_histogram: the engine does not expose accepted lengths per verification pass, so it shows one value per utterance: round(accepted / verification passes), verification passes = main_passes - windows.".into(),
        "load s: for a baseline or beam configuration, the main model's load; for a draft, building the draft on top of the already loaded main model.".into(),
        "WER: corpus WER (total edits / total reference words) after the Whisper English normaliser.".into(),
    ]
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    args: &BenchmarkArgs,
    info: &RunInfo,
    summaries: &[ConfigSummary],
    details: &[ConfigDetail],
    backend: &[BackendRow],
    beam: &[BeamPoint],
    all: &[DeviceRuns],
    warnings: &[String],
    notes: &[String],
) -> String {
    let mut s = summary_markdown(info, summaries);
    if warnings.iter().any(|w| !w.starts_with("plot")) {
        s.push_str("\n## ⚠ Transcripts not identical to the baseline\n\n");
        for w in warnings.iter().filter(|w| !w.starts_with("plot")) {
            let _ = writeln!(s, "- **{w}**");
        }
    }

    s.push_str("\n## Decoder\n\n| config | device | encode s | decode s | draft s | decoder speedup | tokens | drafted | accepted | accepted/verification |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for d in details {
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} | {} |",
            d.config,
            d.device,
            d.encode_s,
            d.decode_s,
            d.draft_s,
            d.decoder_speedup_vs_baseline
                .map(|x| format!("{x:.2}×"))
                .unwrap_or_else(|| "–".into()),
            d.tokens,
            d.drafted,
            d.accepted,
            d.mean_accepted_per_verification
                .map(|x| format!("{x:.2}"))
                .unwrap_or_else(|| "–".into()),
        );
    }

    s.push_str("\n## Model loads\n\n");
    for d in all {
        for (m, t) in &d.model_loads {
            let _ = writeln!(s, "- {} on {}: {:.2} s", m, d.device, t);
        }
    }

    if !backend.is_empty() {
        s.push_str("\n## Backend comparison\n\n| config | device | vs | mean latency s | reference mean latency s | speedup | identical tokens |\n|---|---|---|---:|---:|---:|---:|\n");
        for b in backend {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.3} | {:.3} | {} | {}/{} |",
                b.config,
                b.device,
                b.reference_device,
                b.mean_latency_s,
                b.reference_mean_latency_s,
                b.speedup_vs_reference
                    .map(|x| format!("{x:.2}×"))
                    .unwrap_or_else(|| "–".into()),
                b.identical_tokens,
                b.n_utterances
            );
        }
    }

    if args.mode == Mode::Beam && !beam.is_empty() {
        s.push_str("\n## Beam search\n\n");
        s.push_str(&beam_markdown(beam));
    }

    let plot_warnings: Vec<&String> = warnings.iter().filter(|w| w.starts_with("plot")).collect();
    if !plot_warnings.is_empty() {
        s.push_str("\n## Plots not made\n\n");
        for w in plot_warnings {
            let _ = writeln!(s, "- {w}");
        }
    }

    s.push_str("\n## Notes\n\n");
    for n in notes {
        let _ = writeln!(s, "- {n}");
    }
    s
}

fn run_info(all: &[DeviceRuns]) -> RunInfo {
    let command = std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let device = all
        .iter()
        .map(|d| describe_device(d.device))
        .collect::<Vec<_>>()
        .join("; ");
    RunInfo {
        command,
        commit,
        device,
        date: iso_date(),
    }
}

fn describe_device(kind: DeviceKind) -> String {
    match kind {
        DeviceKind::Cpu => {
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            let model = std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find(|l| l.starts_with("model name"))
                        .and_then(|l| l.split_once(':'))
                        .map(|(_, v)| v.trim().to_string())
                })
                .unwrap_or_else(|| std::env::consts::ARCH.to_string());
            format!("cpu ({cores} cores, {model})")
        }
        DeviceKind::Cuda => {
            let gpu = std::process::Command::new("nvidia-smi")
                .args(["--query-gpu=name", "--format=csv,noheader", "--id=0"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "device 0".into());
            format!("cuda ({gpu})")
        }
        DeviceKind::Wgpu => "wgpu (default adapter)".into(),
    }
}

/// (year, month, day, hour, minute, second) in UTC now.
fn utc_now() -> (i64, u32, u32, u32, u32, u32) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

fn iso_date() -> String {
    let (y, mo, d, h, mi, s) = utc_now();
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// `YYYYmmdd-HHMMSS` (UTC), for default output folders.
pub fn timestamp() -> String {
    let (y, mo, d, h, mi, s) = utc_now();
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use whisper_bench::dataset::Utterance;
    use whisper_burn::Transcript;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchmarkArgs,
    }

    fn args(extra: &[&str]) -> BenchmarkArgs {
        let mut argv = vec!["x", "--dataset", "unused.tsv"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).args
    }

    fn corpus() -> Corpus {
        let utterances = ["a", "b"]
            .iter()
            .map(|id| Utterance {
                id: id.to_string(),
                path: format!("{id}.flac").into(),
                reference: Some("hello world".into()),
            })
            .collect();
        Corpus {
            utterances,
            audio: vec![vec![0.0; 16_000], vec![0.0; 16_000]],
        }
    }

    fn transcript(tokens: &[u32], drafted: usize, accepted: usize) -> Transcript {
        Transcript {
            text: "hello world".into(),
            tokens: tokens.to_vec(),
            audio_s: 1.0,
            encode_s: 0.1,
            decode_s: 0.2 + 0.01 * tokens.len() as f64 - 0.05 * (drafted > 0) as u8 as f64,
            windows: 1,
            main_passes: 1 + tokens.len() + 1 - accepted,
            drafted,
            accepted,
            ..Default::default()
        }
    }

    fn run(name: &str, device: DeviceKind, latency: f64, ts: Vec<Transcript>) -> ConfigRun {
        ConfigRun {
            name: name.into(),
            group: String::new(),
            is_baseline: name == "greedy",
            device,
            load_s: 0.5,
            beam: None,
            spec_point_of: None,
            wall_s: latency * ts.len() as f64,
            transcripts: ts.into_iter().map(|t| (latency, t)).collect(),
        }
    }

    #[test]
    fn mismatches_are_reported_and_backends_compared() {
        let out = std::env::temp_dir().join(format!("bench-output-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let cpu = DeviceRuns {
            device: DeviceKind::Cpu,
            model_loads: vec![("m".into(), 1.0)],
            runs: vec![
                run(
                    "greedy",
                    DeviceKind::Cpu,
                    2.0,
                    vec![transcript(&[1, 2, 3], 0, 0), transcript(&[4, 5], 0, 0)],
                ),
                run(
                    "self-q8",
                    DeviceKind::Cpu,
                    1.0,
                    vec![transcript(&[1, 2, 3], 4, 3), transcript(&[4, 6], 2, 1)],
                ),
            ],
        };
        let wgpu = DeviceRuns {
            device: DeviceKind::Wgpu,
            model_loads: vec![("m".into(), 1.0)],
            runs: vec![
                run(
                    "greedy",
                    DeviceKind::Wgpu,
                    0.5,
                    vec![transcript(&[1, 2, 3], 0, 0), transcript(&[4, 5], 0, 0)],
                ),
                run(
                    "self-q8",
                    DeviceKind::Wgpu,
                    0.25,
                    vec![transcript(&[1, 2, 3], 4, 3), transcript(&[4, 5], 2, 2)],
                ),
            ],
        };
        let md = write_all(&args(&[]), &corpus(), &[cpu, wgpu], &out).unwrap();
        assert!(md.contains("NOT identical to greedy: b (token 1)"), "{md}");
        assert!(md.contains("## Backend comparison"));
        assert!(
            md.contains("| self-q8 | wgpu | cpu | 0.250 | 1.000 | 4.00× | 1/2 |"),
            "{md}"
        );

        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        let summaries = json["summaries"].as_array().unwrap();
        let q8_cpu = summaries
            .iter()
            .find(|s| s["config"] == "self-q8" && s["device"] == "cpu")
            .unwrap();
        assert_eq!(q8_cpu["all_identical_to_baseline"], false);
        assert_eq!(q8_cpu["speedup_vs_baseline"], 2.0);
        assert_eq!(q8_cpu["rtf"], 1.0);
        assert_eq!(q8_cpu["load_s"], 0.5);
        let q8_wgpu = summaries
            .iter()
            .find(|s| s["config"] == "self-q8" && s["device"] == "wgpu")
            .unwrap();
        assert_eq!(q8_wgpu["all_identical_to_baseline"], true);
        let details = json["details"].as_array().unwrap();
        let d = details
            .iter()
            .find(|d| d["config"] == "self-q8" && d["device"] == "cpu")
            .unwrap();
        assert_eq!(d["not_identical"][0]["id"], "b");
        assert_eq!(d["verification_passes"], 1 + 2);
        assert_eq!(d["accepted"], 4);
        assert_eq!(json["backend_comparison"].as_array().unwrap().len(), 2);
        for f in [
            "results.csv",
            "speedup_per_draft.png",
            "acceptance_histogram.svg",
            "latency_vs_wer.png",
        ] {
            assert!(out.join(f).is_file(), "{f}");
        }
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn names_and_dates() {
        assert_eq!(super::super::model_label("weights/models/base/"), "base");
        assert_eq!(
            super::super::model_label("openai/whisper-tiny"),
            "whisper-tiny"
        );
        let a = args(&["--draft-tokens", "4"]);
        assert_eq!(
            super::super::draft_config_name(&a, &"self-q4".parse().unwrap()),
            "self-q4-k4"
        );
        assert_eq!(
            super::super::draft_config_name(&a, &"none".parse().unwrap()),
            "greedy"
        );
        assert_eq!(
            super::super::draft_config_name(&args(&[]), &"../m/tiny.en".parse().unwrap()),
            "draft:tiny.en"
        );
        let ts = timestamp();
        assert_eq!(ts.len(), 15);
        assert!(ts.starts_with("20"));
        assert_eq!(&iso_date()[4..5], "-");
    }
}
