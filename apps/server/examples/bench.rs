//! Load generator for a running `whisper-server`: requests/s and latency percentiles at
//! several concurrency levels.
//!
//! ```text
//! cargo run --release -p whisper-server --example whisper-server-bench -- \
//!     --url http://127.0.0.1:8000 --concurrency 1,4,16 --requests 48 --label batch8-self-q8
//! ```
//! Each level sends `--requests` requests (cycling over `--files`) with that many clients at
//! once, after `--warmup` unmeasured requests. Prints one row per level and, with
//! `--jsonl`, appends the rows to a file. Server-side figures (batches, mean batch size,
//! speculative acceptance) come from `/metrics` before and after each level.
use anyhow::{bail, Context, Result};
use clap::Parser;
use futures_util::StreamExt;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "whisper-server-bench")]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Concurrency levels (clients at once), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    concurrency: Vec<usize>,
    /// Measured requests per level.
    #[arg(long, default_value_t = 48)]
    requests: usize,
    /// Unmeasured requests before the first level.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Audio files to send (cycled); default: jfk.flac and five LibriSpeech test-clean clips.
    #[arg(long, value_delimiter = ',')]
    files: Vec<PathBuf>,
    /// `/v1/audio/transcriptions` (response_format json) or `/transcribe`.
    #[arg(long, default_value = "/v1/audio/transcriptions")]
    endpoint: String,
    /// `response_format` for the OpenAI endpoint (srt/vtt/verbose_json decode timestamps).
    #[arg(long, default_value = "json")]
    response_format: String,
    /// A name for this configuration in the output (e.g. `batch8-self-q8`).
    #[arg(long, default_value = "")]
    label: String,
    /// Append result rows as JSON lines to this file.
    #[arg(long)]
    jsonl: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
}

fn default_files() -> Vec<PathBuf> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    let ls = root.join("librispeech/LibriSpeech/test-clean");
    let mut v = vec![root.join("clips/jfk.flac")];
    for c in [
        "1089/134686/1089-134686-0006.flac",
        "1089/134686/1089-134686-0032.flac",
        "1089/134691/1089-134691-0019.flac",
        "1188/133604/1188-133604-0004.flac",
        "121/121726/121-121726-0006.flac",
    ] {
        v.push(ls.join(c));
    }
    v
}

struct Input {
    name: String,
    bytes: Vec<u8>,
    audio_s: f64,
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    ok: bool,
    latency_s: f64,
    audio_s: f64,
}

async fn one(client: &reqwest::Client, args: &Args, input: &Input) -> Outcome {
    let t0 = Instant::now();
    let part = reqwest::multipart::Part::bytes(input.bytes.clone()).file_name(input.name.clone());
    let mut form = reqwest::multipart::Form::new().part("file", part);
    if args.endpoint != "/transcribe" {
        form = form.text("response_format", args.response_format.clone());
    }
    let resp = client
        .post(format!("{}{}", args.url, args.endpoint))
        .multipart(form)
        .send()
        .await;
    let ok = match resp {
        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
        Err(_) => false,
    };
    Outcome {
        ok,
        latency_s: t0.elapsed().as_secs_f64(),
        audio_s: if ok { input.audio_s } else { 0.0 },
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Reads a few counters from `/metrics`.
async fn scrape(
    client: &reqwest::Client,
    url: &str,
) -> Result<std::collections::HashMap<String, f64>> {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let mut m = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some((k, v)) = line.rsplit_once(' ') {
            if let Ok(v) = v.parse::<f64>() {
                m.insert(k.to_string(), v);
            }
        }
    }
    Ok(m)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.files.is_empty() {
        args.files = default_files();
    }
    let inputs: Vec<Input> = args
        .files
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let ext = p.extension().and_then(|e| e.to_str());
            let samples = whisper_burn::audio::decode_audio_bytes(bytes.clone(), ext)
                .with_context(|| format!("decoding {}", p.display()))?;
            Ok(Input {
                name: p
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_else(|| "audio".into()),
                bytes,
                audio_s: whisper_burn::audio::duration_s(&samples),
            })
        })
        .collect::<Result<_>>()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_s))
        .pool_max_idle_per_host(64)
        .build()?;
    let health = client
        .get(format!("{}/health", args.url))
        .send()
        .await
        .context("is the server running?")?;
    if !health.status().is_success() {
        bail!("{}/health answered {}", args.url, health.status());
    }
    let info: serde_json::Value = health.json().await.unwrap_or_default();
    eprintln!(
        "server: model {} draft {} device {}",
        info["model"], info["draft"], info["device"]
    );
    for i in 0..args.warmup {
        one(&client, &args, &inputs[i % inputs.len()]).await;
    }

    println!(
        "{:<22} {:>4} {:>5} {:>4} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7} {:>6} {:>7}",
        "config",
        "conc",
        "reqs",
        "err",
        "wall_s",
        "req/s",
        "audio_x",
        "p50_s",
        "p95_s",
        "p99_s",
        "batch",
        "accept"
    );
    for &conc in &args.concurrency {
        let before = scrape(&client, &args.url).await?;
        let t0 = Instant::now();
        let outcomes: Vec<Outcome> = futures_util::stream::iter(0..args.requests)
            .map(|i| {
                let (client, args, input) = (&client, &args, &inputs[i % inputs.len()]);
                async move { one(client, args, input).await }
            })
            .buffer_unordered(conc.max(1))
            .collect()
            .await;
        let wall = t0.elapsed().as_secs_f64();
        let after = scrape(&client, &args.url).await?;
        let delta =
            |k: &str| after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0);
        let mut lat: Vec<f64> = outcomes
            .iter()
            .filter(|o| o.ok)
            .map(|o| o.latency_s)
            .collect();
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let ok = lat.len();
        let errors = outcomes.len() - ok;
        let audio: f64 = outcomes.iter().map(|o| o.audio_s).sum();
        let batches = delta("whisper_batch_size_count");
        let mean_batch = if batches > 0.0 {
            delta("whisper_batch_size_sum") / batches
        } else {
            f64::NAN
        };
        let drafted = delta("whisper_speculative_drafted_tokens_total");
        let acceptance = if drafted > 0.0 {
            delta("whisper_speculative_accepted_tokens_total") / drafted
        } else {
            f64::NAN
        };
        let row = serde_json::json!({
            "config": args.label, "concurrency": conc, "requests": outcomes.len(), "errors": errors,
            "wall_s": wall, "requests_per_s": ok as f64 / wall, "audio_s_per_s": audio / wall,
            "p50_s": percentile(&lat, 50.0), "p95_s": percentile(&lat, 95.0), "p99_s": percentile(&lat, 99.0),
            "mean_s": if ok > 0 { lat.iter().sum::<f64>() / ok as f64 } else { f64::NAN },
            "mean_batch": mean_batch, "acceptance_rate": acceptance,
            "endpoint": args.endpoint, "model": info["model"], "draft": info["draft"], "device": info["device"],
        });
        println!(
            "{:<22} {:>4} {:>5} {:>4} {:>8.2} {:>7.2} {:>8.1} {:>7.3} {:>7.3} {:>7.3} {:>6.2} {:>7.3}",
            args.label,
            conc,
            outcomes.len(),
            errors,
            wall,
            ok as f64 / wall,
            audio / wall,
            percentile(&lat, 50.0),
            percentile(&lat, 95.0),
            percentile(&lat, 99.0),
            mean_batch,
            acceptance
        );
        if let Some(path) = &args.jsonl {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).ok();
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(f, "{row}")?;
        }
    }
    Ok(())
}
