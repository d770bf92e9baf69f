//! Benchmark results, per-configuration summaries, and their CSV / JSON /
//! Markdown writers.

use crate::wer::corpus_wer;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// One utterance decoded by one configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UtteranceResult {
    /// Configuration name, e.g. `greedy` or `spec-k4`.
    pub config: String,
    pub device: String,
    pub id: String,
    /// Audio duration in seconds.
    pub audio_s: f64,
    /// End-to-end latency (audio to text) in seconds.
    pub latency_s: f64,
    /// Time spent in the decoder loop only, in seconds.
    pub decode_s: f64,
    /// Tokens generated.
    pub n_tokens: usize,
    /// Draft tokens proposed (0 without speculation).
    pub drafted: usize,
    /// Draft tokens accepted by the main model.
    pub accepted: usize,
    /// Forward passes of the main (verifying) decoder.
    pub main_passes: usize,
    pub text: String,
    pub reference: Option<String>,
    /// Whether `text` equals the baseline configuration's text for this id.
    pub identical_to_baseline: Option<bool>,
}

/// Aggregates for one (configuration, device).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConfigSummary {
    pub config: String,
    pub device: String,
    pub n_utterances: usize,
    /// Corpus WER (total edits / total reference words) after
    /// [`normalize_english`](crate::normalizer::normalize_english), over the
    /// utterances that have a reference; `None` when none has.
    pub wer: Option<f64>,
    pub mean_latency_s: f64,
    /// Median latency, nearest-rank.
    pub p50_latency_s: f64,
    /// 95th percentile latency, nearest-rank.
    pub p95_latency_s: f64,
    /// Real-time factor: total latency / total audio duration (NaN, written
    /// as `null` in JSON, when the total audio duration is 0).
    pub rtf: f64,
    /// Decoder throughput: total tokens / total `decode_s` (0 when no decode time).
    pub tokens_per_s: f64,
    /// Total accepted / total drafted; `None` when nothing was drafted.
    pub acceptance_rate: Option<f64>,
    /// Total accepted / total main-decoder passes; `None` when nothing was
    /// drafted or no pass was counted.
    pub mean_accepted_per_main_pass: Option<f64>,
    /// Baseline total latency / this configuration's total latency, both over
    /// the ids present in both (same device); `None` without a baseline.
    pub speedup_vs_baseline: Option<f64>,
    /// `None` when no utterance was compared with the baseline; otherwise
    /// whether every compared utterance matched it.
    pub all_identical_to_baseline: Option<bool>,
    /// Model load time in seconds. [`summarize`] cannot know it (it is not
    /// per utterance) and sets 0.0; the caller fills it in.
    pub load_s: f64,
}

/// Where and how a benchmark was run, for report headers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunInfo {
    pub command: String,
    pub commit: String,
    pub device: String,
    pub date: String,
}

/// One beam-search measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BeamPoint {
    pub model: String,
    pub beam_size: usize,
    /// Corpus WER as a fraction (0.05 = 5%).
    pub wer: f64,
    pub mean_latency_s: f64,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("serialising JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn write_file(path: &Path, contents: &str) -> Result<(), ReportError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| ReportError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    fs::write(path, contents).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Nearest-rank percentile (`p` in 0..=100) of ascending-sorted values:
/// the value at 1-based rank `ceil(p/100 * n)` (rank 1 for p = 0); 0.0 when empty.
pub fn percentile_nearest_rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// Summarise results per (config, device), in order of first appearance.
///
/// With `baseline_config`, each summary's speedup is computed against the
/// results of that config on the same device (the baseline's own speedup is
/// 1.0); configurations without a baseline on their device get `None`.
pub fn summarize(results: &[UtteranceResult], baseline_config: Option<&str>) -> Vec<ConfigSummary> {
    let mut order: Vec<(&str, &str)> = Vec::new();
    let mut groups: HashMap<(&str, &str), Vec<&UtteranceResult>> = HashMap::new();
    for r in results {
        let key = (r.config.as_str(), r.device.as_str());
        groups
            .entry(key)
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(r);
    }

    order
        .iter()
        .map(|key @ (config, device)| {
            let rs = &groups[key];
            let n = rs.len();
            let total_latency: f64 = rs.iter().map(|r| r.latency_s).sum();
            let total_audio: f64 = rs.iter().map(|r| r.audio_s).sum();
            let total_decode: f64 = rs.iter().map(|r| r.decode_s).sum();
            let tokens: usize = rs.iter().map(|r| r.n_tokens).sum();
            let drafted: usize = rs.iter().map(|r| r.drafted).sum();
            let accepted: usize = rs.iter().map(|r| r.accepted).sum();
            let passes: usize = rs.iter().map(|r| r.main_passes).sum();
            let mut latencies: Vec<f64> = rs.iter().map(|r| r.latency_s).collect();
            latencies.sort_by(f64::total_cmp);

            let with_ref: Vec<(&str, &str)> = rs
                .iter()
                .filter_map(|r| {
                    r.reference
                        .as_deref()
                        .map(|reference| (reference, r.text.as_str()))
                })
                .collect();
            let wer = (!with_ref.is_empty()).then(|| corpus_wer(with_ref.into_iter(), true).wer());

            let speedup = baseline_config.and_then(|b| {
                let base: HashMap<&str, f64> = groups
                    .get(&(b, *device))?
                    .iter()
                    .map(|r| (r.id.as_str(), r.latency_s))
                    .collect();
                let (mut base_total, mut this_total, mut common) = (0.0, 0.0, 0usize);
                for r in rs {
                    if let Some(bl) = base.get(r.id.as_str()) {
                        base_total += bl;
                        this_total += r.latency_s;
                        common += 1;
                    }
                }
                if common == 0 {
                    None
                } else {
                    ratio(base_total, this_total)
                }
            });

            let compared: Vec<bool> = rs.iter().filter_map(|r| r.identical_to_baseline).collect();
            ConfigSummary {
                config: config.to_string(),
                device: device.to_string(),
                n_utterances: n,
                wer,
                mean_latency_s: total_latency / n as f64,
                p50_latency_s: percentile_nearest_rank(&latencies, 50.0),
                p95_latency_s: percentile_nearest_rank(&latencies, 95.0),
                rtf: ratio(total_latency, total_audio).unwrap_or(f64::NAN),
                tokens_per_s: ratio(tokens as f64, total_decode).unwrap_or(0.0),
                acceptance_rate: (drafted > 0).then(|| accepted as f64 / drafted as f64),
                mean_accepted_per_main_pass: (drafted > 0 && passes > 0)
                    .then(|| accepted as f64 / passes as f64),
                speedup_vs_baseline: speedup,
                all_identical_to_baseline: (!compared.is_empty())
                    .then(|| compared.iter().all(|&x| x)),
                load_s: 0.0,
            }
        })
        .collect()
}

/// Quote a CSV field when needed (RFC 4180: fields containing a comma,
/// quote, CR or LF are wrapped in quotes, with quotes doubled).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// The CSV header of [`results_csv`].
pub const RESULTS_CSV_HEADER: &str = "config,device,id,audio_s,latency_s,decode_s,n_tokens,drafted,accepted,main_passes,text,reference,identical_to_baseline";

/// Results as CSV text (header + one line per result; `None` is an empty field).
pub fn results_csv(results: &[UtteranceResult]) -> String {
    let mut out = String::from(RESULTS_CSV_HEADER);
    out.push('\n');
    for r in results {
        let fields = [
            csv_field(&r.config),
            csv_field(&r.device),
            csv_field(&r.id),
            r.audio_s.to_string(),
            r.latency_s.to_string(),
            r.decode_s.to_string(),
            r.n_tokens.to_string(),
            r.drafted.to_string(),
            r.accepted.to_string(),
            r.main_passes.to_string(),
            csv_field(&r.text),
            csv_field(&opt(&r.reference)),
            opt(&r.identical_to_baseline),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// Write [`results_csv`] to `path` (parent folders are created).
pub fn write_results_csv(path: &Path, results: &[UtteranceResult]) -> Result<(), ReportError> {
    write_file(path, &results_csv(results))
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    run: &'a RunInfo,
    summaries: &'a [ConfigSummary],
}

/// Write `{"run": RunInfo, "summaries": [ConfigSummary...]}` as pretty JSON
/// (non-finite numbers become `null`).
pub fn write_summary_json(
    path: &Path,
    info: &RunInfo,
    summaries: &[ConfigSummary],
) -> Result<(), ReportError> {
    let json = serde_json::to_string_pretty(&SummaryJson {
        run: info,
        summaries,
    })?;
    write_file(path, &(json + "\n"))
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "–".to_string())
}

fn run_header(info: &RunInfo) -> String {
    format!(
        "- command: `{}`\n- commit: `{}`\n- device: {}\n- date: {}\n",
        info.command.replace('`', "'"),
        info.commit,
        cell(&info.device),
        cell(&info.date)
    )
}

/// The summary as a Markdown document: a run header and one table row per
/// configuration. WER and acceptance are in percent, times in seconds.
pub fn summary_markdown(info: &RunInfo, summaries: &[ConfigSummary]) -> String {
    let mut s = String::from("# Benchmark summary\n\n");
    s.push_str(&run_header(info));
    s.push_str(
        "\n| config | device | utts | WER % | mean latency s | p50 s | p95 s | RTF | tokens/s | acceptance % | accepted/pass | speedup | identical | load s |\n",
    );
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n");
    for c in summaries {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} | {} | {} | {} | {} | {:.2} |",
            cell(&c.config),
            cell(&c.device),
            c.n_utterances,
            fmt_opt(c.wer, |w| format!("{:.2}", w * 100.0)),
            c.mean_latency_s,
            c.p50_latency_s,
            c.p95_latency_s,
            c.rtf,
            c.tokens_per_s,
            fmt_opt(c.acceptance_rate, |a| format!("{:.1}", a * 100.0)),
            fmt_opt(c.mean_accepted_per_main_pass, |a| format!("{a:.2}")),
            fmt_opt(c.speedup_vs_baseline, |x| format!("{x:.2}×")),
            match c.all_identical_to_baseline {
                Some(true) => "yes",
                Some(false) => "no",
                None => "–",
            },
            c.load_s,
        );
    }
    s
}

/// Write [`summary_markdown`] to `path`.
pub fn write_summary_md(
    path: &Path,
    info: &RunInfo,
    summaries: &[ConfigSummary],
) -> Result<(), ReportError> {
    write_file(path, &summary_markdown(info, summaries))
}

/// Beam-search results as a Markdown table (rows in the given order).
pub fn beam_markdown(points: &[BeamPoint]) -> String {
    let mut s =
        String::from("| model | beam size | WER % | mean latency s |\n|---|---:|---:|---:|\n");
    for p in points {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.3} |",
            cell(&p.model),
            p.beam_size,
            p.wer * 100.0,
            p.mean_latency_s
        );
    }
    s
}

/// Write a Markdown document with the run header and [`beam_markdown`].
pub fn write_beam_md(path: &Path, info: &RunInfo, points: &[BeamPoint]) -> Result<(), ReportError> {
    let doc = format!(
        "# Beam search\n\n{}\n{}",
        run_header(info),
        beam_markdown(points)
    );
    write_file(path, &doc)
}
