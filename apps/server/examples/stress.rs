//! Flood and soak load for a running `whisper-server`: does it hold under more than it can
//! take? Each phase reports status counts, p50/p95/p99 latency, whether every 429 carried
//! `Retry-After`, whether every 200 equals the single-request transcript of the same file,
//! and the server's resident memory (from its `/metrics`).
//!
//! ```text
//! cargo run --release -p whisper-server --example whisper-server-stress -- \
//!     --url http://127.0.0.1:8000 --phases flood-valid,flood-garbage,short,soak --soak-s 600
//! ```
//! - `flood-valid`: `--flood` concurrent uploads of valid audio just under `--upload-mb`
//!   (a 96 kHz stereo float WAV of speech, ~31 s for 24 MB).
//! - `flood-garbage`: the same number of random-byte uploads of that size.
//! - `short`: `--short` concurrent short requests (`jfk.flac`).
//! - `soak`: `--soak-s` seconds of open-loop arrivals at `--soak-rate` requests a second,
//!   mixing short clips (90%), garbage (5%) and large valid uploads (5%).
use anyhow::{bail, Context, Result};
use clap::Parser;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "whisper-server-stress")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Phases to run, in order: flood-valid, flood-garbage, short, soak.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "flood-valid,flood-garbage,short,soak"
    )]
    phases: Vec<String>,
    /// Concurrent uploads in the flood phases.
    #[arg(long, default_value_t = 200)]
    flood: usize,
    /// Size of each flood upload in MB (10^6 bytes); keep it under the server's limit.
    #[arg(long, default_value_t = 24.0)]
    upload_mb: f64,
    /// Concurrent requests in the `short` phase.
    #[arg(long, default_value_t = 256)]
    short: usize,
    /// Length of the soak phase in seconds.
    #[arg(long, default_value_t = 600)]
    soak_s: u64,
    /// Arrivals per second in the soak phase (pick the machine's sustainable rate).
    #[arg(long, default_value_t = 2.0)]
    soak_rate: f64,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 900)]
    timeout_s: u64,
    /// Append one JSON line per phase to this file.
    #[arg(long)]
    jsonl: Option<PathBuf>,
}

#[derive(Clone)]
struct Upload {
    name: &'static str,
    bytes: bytes::Bytes,
    /// The transcript of this file sent alone; `None` for garbage.
    expected: Option<String>,
}

struct Answer {
    status: u16,
    retry_after: bool,
    matches: bool,
    latency_s: f64,
}

/// The OpenAI form for `u` (its bytes shared, not copied), asking for plain text.
fn upload_form(u: &Upload) -> reqwest::multipart::Form {
    let len = u.bytes.len() as u64;
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::from(u.bytes.clone()), len)
            .file_name(u.name);
    reqwest::multipart::Form::new()
        .part("file", part)
        .text("response_format", "text")
}

async fn send(client: &reqwest::Client, url: &str, u: &Upload) -> Answer {
    let t0 = Instant::now();
    let form = upload_form(u);
    let resp = client
        .post(format!("{url}/v1/audio/transcriptions"))
        .multipart(form)
        .send()
        .await;
    let (status, retry_after, body) = match resp {
        Ok(r) => {
            let status = r.status().as_u16();
            let retry = r.headers().contains_key("retry-after");
            (status, retry, r.text().await.unwrap_or_default())
        }
        // A connection error counts as status 0.
        Err(_) => (0, false, String::new()),
    };
    let matches = status != 200 || u.expected.as_deref() == Some(body.as_str());
    Answer {
        status,
        retry_after,
        matches,
        latency_s: t0.elapsed().as_secs_f64(),
    }
}

/// A WAV of 96 kHz stereo 32-bit float holding `speech` (16 kHz) tiled to `bytes`.
fn float_wav_96k_stereo(speech: &[f32], bytes: usize) -> Vec<u8> {
    let frames = (bytes.saturating_sub(44)) / 8;
    let data = (frames * 8) as u32;
    let mut out = Vec::with_capacity(44 + data as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&3u16.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&96_000u32.to_le_bytes());
    out.extend_from_slice(&(96_000u32 * 8).to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for i in 0..frames {
        let s = speech[(i / 6) % speech.len()].to_le_bytes();
        out.extend_from_slice(&s);
        out.extend_from_slice(&s);
    }
    out
}

fn garbage(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

async fn metrics(client: &reqwest::Client, url: &str) -> BTreeMap<String, f64> {
    let text = match client.get(format!("{url}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p / 100.0 * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

/// Prints and returns one phase's summary.
fn report(phase: &str, answers: &[Answer], wall_s: f64, rss: (f64, f64, f64)) -> serde_json::Value {
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for a in answers {
        *statuses.entry(a.status).or_default() += 1;
    }
    let mut lat: Vec<f64> = answers.iter().map(|a| a.latency_s).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let mut ok_lat: Vec<f64> = answers
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.latency_s)
        .collect();
    ok_lat.sort_by(|a, b| a.total_cmp(b));
    let server_errors = answers
        .iter()
        .filter(|a| a.status >= 500 || a.status == 0)
        .count();
    let missing_retry = answers
        .iter()
        .filter(|a| a.status == 429 && !a.retry_after)
        .count();
    let mismatched = answers.iter().filter(|a| !a.matches).count();
    let (rss_before, rss_after, peak) = rss;
    let row = serde_json::json!({
        "phase": phase, "requests": answers.len(), "wall_s": wall_s,
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
        "server_errors_or_dropped": server_errors, "429_without_retry_after": missing_retry,
        "200_differing_from_single": mismatched,
        "p50_s": percentile(&lat, 50.0), "p95_s": percentile(&lat, 95.0), "p99_s": percentile(&lat, 99.0),
        "ok_p50_s": percentile(&ok_lat, 50.0), "ok_p95_s": percentile(&ok_lat, 95.0), "ok_p99_s": percentile(&ok_lat, 99.0),
        "rss_before_mb": rss_before / 1e6, "rss_after_mb": rss_after / 1e6, "peak_rss_mb": peak / 1e6,
    });
    println!(
        "{phase:<14} n={:<4} wall {wall_s:>7.1} s  statuses {statuses:?}  5xx/dropped {server_errors}  \
         429 w/o Retry-After {missing_retry}  200 != single {mismatched}  latency p50/p95/p99 \
         {:.2}/{:.2}/{:.2} s (200s: {:.2}/{:.2}/{:.2})  RSS {:.0} -> {:.0} MB, peak {:.0} MB",
        answers.len(),
        percentile(&lat, 50.0),
        percentile(&lat, 95.0),
        percentile(&lat, 99.0),
        percentile(&ok_lat, 50.0),
        percentile(&ok_lat, 95.0),
        percentile(&ok_lat, 99.0),
        rss_before / 1e6,
        rss_after / 1e6,
        peak / 1e6
    );
    row
}

async fn concurrent(client: &reqwest::Client, url: &str, uploads: Vec<Upload>) -> Vec<Answer> {
    let n = uploads.len().max(1);
    futures_util::stream::iter(uploads)
        .map(|u| async move { send(client, url, &u).await })
        .buffer_unordered(n)
        .collect()
        .await
}

/// Open-loop arrivals at `rate` a second for `seconds`, cycling through `mix`.
async fn soak(
    client: &reqwest::Client,
    url: &str,
    mix: &[Upload],
    rate: f64,
    seconds: u64,
) -> Vec<Answer> {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tick = tokio::time::interval(interval);
    let mut tasks = tokio::task::JoinSet::new();
    let mut i = 0usize;
    while Instant::now() < end {
        tick.tick().await;
        let (client, url, u) = (client.clone(), url.to_string(), mix[i % mix.len()].clone());
        tasks.spawn(async move { send(&client, &url, &u).await });
        i += 1;
    }
    let mut out = Vec::new();
    while let Some(a) = tasks.join_next().await {
        if let Ok(a) = a {
            out.push(a);
        }
    }
    out
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_s))
        .build()?;
    let health = client
        .get(format!("{}/health", args.url))
        .send()
        .await
        .context("is the server running?")?;
    if !health.status().is_success() {
        bail!("{}/health answered {}", args.url, health.status());
    }
    let data = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/clips"
    ));
    let jfk = std::fs::read(data.join("jfk.flac")).context("reading jfk.flac")?;
    let speech = whisper_burn::audio::decode_audio_bytes(jfk.clone(), Some("flac"))?;
    let size = (args.upload_mb * 1e6) as usize - (64 << 10);
    let mut short = Upload {
        name: "jfk.flac",
        bytes: jfk.into(),
        expected: None,
    };
    let mut large = Upload {
        name: "large.wav",
        bytes: float_wav_96k_stereo(&speech, size).into(),
        expected: None,
    };
    let junk = Upload {
        name: "junk.wav",
        bytes: garbage(size).into(),
        expected: None,
    };
    for u in [&mut short, &mut large] {
        let alone = send_text(&client, &args.url, u).await?;
        u.expected = Some(alone);
    }
    eprintln!(
        "single-request transcripts taken; large upload {:.1} MB",
        large.bytes.len() as f64 / 1e6
    );

    let rss = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(f64::NAN);
    for phase in &args.phases {
        let before = metrics(&client, &args.url).await;
        let t0 = Instant::now();
        let answers = match phase.as_str() {
            "flood-valid" => concurrent(&client, &args.url, vec![large.clone(); args.flood]).await,
            "flood-garbage" => concurrent(&client, &args.url, vec![junk.clone(); args.flood]).await,
            "short" => concurrent(&client, &args.url, vec![short.clone(); args.short]).await,
            "soak" => {
                let mut mix = vec![short.clone(); 18];
                mix.push(junk.clone());
                mix.push(large.clone());
                soak(&client, &args.url, &mix, args.soak_rate, args.soak_s).await
            }
            other => bail!("unknown phase `{other}`"),
        };
        let wall = t0.elapsed().as_secs_f64();
        let after = metrics(&client, &args.url).await;
        let row = report(
            phase,
            &answers,
            wall,
            (
                rss(&before, "process_resident_memory_bytes"),
                rss(&after, "process_resident_memory_bytes"),
                rss(&after, "process_resident_memory_max_bytes"),
            ),
        );
        if let Some(path) = &args.jsonl {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(f, "{row}")?;
        }
    }
    Ok(())
}

/// The transcript of `u` sent alone (retried while the server is busy).
async fn send_text(client: &reqwest::Client, url: &str, u: &Upload) -> Result<String> {
    let form = upload_form(u);
    let r = client
        .post(format!("{url}/v1/audio/transcriptions"))
        .multipart(form)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!(
            "{} alone answered {}: {}",
            u.name,
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    Ok(r.text().await?)
}
