//! Prometheus metrics, rendered in the text exposition format (version 0.0.4) by hand.
use crate::errors::ErrorCode;
use crate::memory::MemoryBudget;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Endpoints counted by name; any other path is counted as `other` (bounded label set).
pub const ENDPOINTS: [&str; 8] = [
    "/transcribe",
    "/v1/audio/transcriptions",
    "/v1/audio/translations",
    "/health",
    "/metrics",
    "/openapi.json",
    "/docs",
    "other",
];

pub fn endpoint_label(path: &str) -> &'static str {
    if path.starts_with("/docs") {
        return "/docs";
    }
    ENDPOINTS
        .iter()
        .find(|e| **e == path)
        .copied()
        .unwrap_or("other")
}

const LATENCY_BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// A cumulative histogram with fixed upper bounds.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Debug)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    errors: BTreeMap<ErrorCode, u64>,
    request_latency: BTreeMap<&'static str, Histogram>,
    queue_wait: Histogram,
    inference_latency: Histogram,
    batch_size: Histogram,
    audio_s_total: f64,
    encode_s_total: f64,
    decode_s_total: f64,
}

/// (resident, peak resident) bytes of this process, from `/proc/self/status` (Linux).
pub fn process_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// All server metrics; cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    pub queue_depth: AtomicU64,
    pub queued_audio_ms: AtomicU64,
    pub in_flight: AtomicU64,
    pub decoding: AtomicU64,
    pub cancelled: AtomicU64,
    pub batches: AtomicU64,
    pub transcriptions: AtomicU64,
    pub drafted: AtomicU64,
    pub accepted: AtomicU64,
    pub main_passes: AtomicU64,
    pub generated_tokens: AtomicU64,
    pub model_loaded: AtomicU64,
    queue_capacity: u64,
    max_batch: u64,
    upload_budget: Option<MemoryBudget>,
}

impl Metrics {
    pub fn new(queue_capacity: usize, max_batch: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                requests: BTreeMap::new(),
                errors: BTreeMap::new(),
                request_latency: BTreeMap::new(),
                queue_wait: Histogram::new(&LATENCY_BUCKETS),
                inference_latency: Histogram::new(&LATENCY_BUCKETS),
                batch_size: Histogram::new(&BATCH_BUCKETS),
                audio_s_total: 0.0,
                encode_s_total: 0.0,
                decode_s_total: 0.0,
            }),
            queue_depth: AtomicU64::new(0),
            queued_audio_ms: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            decoding: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            transcriptions: AtomicU64::new(0),
            drafted: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            main_passes: AtomicU64::new(0),
            generated_tokens: AtomicU64::new(0),
            model_loaded: AtomicU64::new(0),
            queue_capacity: queue_capacity as u64,
            max_batch: max_batch as u64,
            upload_budget: None,
        }
    }

    /// Reports the upload budget's size and use.
    pub fn with_upload_budget(mut self, budget: MemoryBudget) -> Self {
        self.upload_budget = Some(budget);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One finished HTTP request.
    pub fn record_request(
        &self,
        endpoint: &'static str,
        status: u16,
        latency_s: f64,
        error: Option<ErrorCode>,
    ) {
        let mut g = self.lock();
        *g.requests.entry((endpoint, status)).or_default() += 1;
        g.request_latency
            .entry(endpoint)
            .or_insert_with(|| Histogram::new(&LATENCY_BUCKETS))
            .observe(latency_s);
        if let Some(code) = error {
            *g.errors.entry(code).or_default() += 1;
        }
    }

    /// One batch sent through the model.
    pub fn record_batch(&self, size: usize, latency_s: f64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        let mut g = self.lock();
        g.batch_size.observe(size as f64);
        g.inference_latency.observe(latency_s);
    }

    pub fn record_queue_wait(&self, seconds: f64) {
        self.lock().queue_wait.observe(seconds);
    }

    /// One transcript delivered.
    pub fn record_transcript(&self, t: &whisper_burn::Transcript) {
        self.transcriptions.fetch_add(1, Ordering::Relaxed);
        self.drafted.fetch_add(t.drafted as u64, Ordering::Relaxed);
        self.accepted
            .fetch_add(t.accepted as u64, Ordering::Relaxed);
        self.main_passes
            .fetch_add(t.main_passes as u64, Ordering::Relaxed);
        self.generated_tokens
            .fetch_add(t.tokens.len() as u64, Ordering::Relaxed);
        let mut g = self.lock();
        g.audio_s_total += t.audio_s;
        g.encode_s_total += t.encode_s;
        g.decode_s_total += t.decode_s;
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let g = self.lock();
        let mut o = String::with_capacity(8192);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        o.push_str("# HELP whisper_requests_total HTTP requests by endpoint and status.\n# TYPE whisper_requests_total counter\n");
        for ((endpoint, status), n) in &g.requests {
            let _ = writeln!(
                o,
                "whisper_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        o.push_str("# HELP whisper_errors_total Error answers by error code.\n# TYPE whisper_errors_total counter\n");
        for code in ErrorCode::ALL {
            let n = g.errors.get(&code).copied().unwrap_or(0);
            let _ = writeln!(o, "whisper_errors_total{{code=\"{}\"}} {n}", code.as_str());
        }
        o.push_str("# HELP whisper_request_duration_seconds HTTP request latency by endpoint.\n# TYPE whisper_request_duration_seconds histogram\n");
        for (endpoint, h) in &g.request_latency {
            h.render(
                &mut o,
                "whisper_request_duration_seconds",
                &format!("endpoint=\"{endpoint}\""),
            );
        }
        o.push_str("# HELP whisper_queue_wait_seconds Time from enqueueing to the start of inference.\n# TYPE whisper_queue_wait_seconds histogram\n");
        g.queue_wait
            .render(&mut o, "whisper_queue_wait_seconds", "");
        o.push_str("# HELP whisper_inference_duration_seconds Wall time of one batch in the model.\n# TYPE whisper_inference_duration_seconds histogram\n");
        g.inference_latency
            .render(&mut o, "whisper_inference_duration_seconds", "");
        o.push_str("# HELP whisper_batch_size Requests per inference batch.\n# TYPE whisper_batch_size histogram\n");
        g.batch_size.render(&mut o, "whisper_batch_size", "");

        let gauges: [(&str, &str, f64); 8] = [
            (
                "whisper_queue_depth",
                "Requests waiting for inference.",
                load(&self.queue_depth) as f64,
            ),
            (
                "whisper_queue_capacity",
                "Most requests that may wait for inference.",
                self.queue_capacity as f64,
            ),
            (
                "whisper_queued_audio_seconds",
                "Seconds of audio waiting for inference.",
                load(&self.queued_audio_ms) as f64 / 1000.0,
            ),
            (
                "whisper_in_flight_requests",
                "Transcription requests admitted and not yet answered.",
                load(&self.in_flight) as f64,
            ),
            (
                "whisper_audio_decodes_in_progress",
                "Uploads being decoded to samples.",
                load(&self.decoding) as f64,
            ),
            (
                "whisper_max_batch",
                "Configured largest batch.",
                self.max_batch as f64,
            ),
            (
                "whisper_model_loaded",
                "1 once the model is loaded and serving.",
                load(&self.model_loaded) as f64,
            ),
            (
                "whisper_speculative_acceptance_rate",
                "Accepted over drafted tokens since start.",
                {
                    let d = load(&self.drafted);
                    if d == 0 {
                        0.0
                    } else {
                        load(&self.accepted) as f64 / d as f64
                    }
                },
            ),
        ];
        let mut memory: Vec<(&str, &str, f64)> = Vec::new();
        if let Some(b) = &self.upload_budget {
            memory.push((
                "whisper_upload_budget_bytes",
                "Size of the payload budget (--max-inflight-upload-mb).",
                b.total_bytes() as f64,
            ));
            memory.push((
                "whisper_upload_reserved_bytes",
                "Bytes of the payload budget held by bodies and decoded audio.",
                b.reserved_bytes() as f64,
            ));
        }
        let process = process_memory();
        if let Some((rss, peak)) = process {
            memory.push((
                "process_resident_memory_bytes",
                "Resident set size of the server process.",
                rss as f64,
            ));
            memory.push((
                "process_resident_memory_max_bytes",
                "Peak resident set size of the server process since it started.",
                peak as f64,
            ));
        }
        for (name, help, v) in gauges.into_iter().chain(memory) {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let counters: [(&str, &str, f64); 11] = [
            (
                "whisper_audio_seconds_total",
                "Seconds of audio transcribed.",
                g.audio_s_total,
            ),
            (
                "whisper_encode_seconds_total",
                "Encoder seconds (per-request shares).",
                g.encode_s_total,
            ),
            (
                "whisper_decode_seconds_total",
                "Decoder seconds (per-request shares).",
                g.decode_s_total,
            ),
            (
                "whisper_transcriptions_total",
                "Transcripts delivered by the model.",
                load(&self.transcriptions) as f64,
            ),
            (
                "whisper_batches_total",
                "Inference batches run.",
                load(&self.batches) as f64,
            ),
            (
                "whisper_cancelled_requests_total",
                "Queued requests dropped because the client went away.",
                load(&self.cancelled) as f64,
            ),
            (
                "whisper_speculative_drafted_tokens_total",
                "Tokens proposed by the draft.",
                load(&self.drafted) as f64,
            ),
            (
                "whisper_speculative_accepted_tokens_total",
                "Drafted tokens the main model accepted.",
                load(&self.accepted) as f64,
            ),
            (
                "whisper_main_model_passes_total",
                "Decoder forward passes of the main model.",
                load(&self.main_passes) as f64,
            ),
            (
                "whisper_generated_tokens_total",
                "Text tokens generated.",
                load(&self.generated_tokens) as f64,
            ),
            ("whisper_build_info", "Constant 1.", 1.0),
        ];
        for (name, help, v) in counters {
            let kind = if name == "whisper_build_info" {
                "gauge"
            } else {
                "counter"
            };
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let mut h = Histogram::new(&BATCH_BUCKETS);
        h.observe(1.0);
        h.observe(3.0);
        h.observe(200.0);
        let mut s = String::new();
        h.render(&mut s, "x", "");
        assert!(s.contains("x_bucket{le=\"1\"} 1"), "{s}");
        assert!(s.contains("x_bucket{le=\"4\"} 2"), "{s}");
        assert!(s.contains("x_bucket{le=\"128\"} 2"), "{s}");
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3"), "{s}");
        assert!(s.contains("x_count 3"), "{s}");
    }

    #[test]
    fn render_has_every_family() {
        let m = Metrics::new(4, 2);
        m.record_request("/transcribe", 200, 0.3, None);
        m.record_request("/transcribe", 429, 0.001, Some(ErrorCode::Overloaded));
        m.record_batch(2, 0.5);
        let s = m.render();
        for needle in [
            "whisper_requests_total{endpoint=\"/transcribe\",status=\"200\"} 1",
            "whisper_errors_total{code=\"overloaded\"} 1",
            "whisper_errors_total{code=\"missing_file\"} 0",
            "whisper_batch_size_bucket{le=\"2\"} 1",
            "whisper_queue_depth 0",
            "whisper_speculative_acceptance_rate 0",
            "whisper_request_duration_seconds_count{endpoint=\"/transcribe\"} 2",
        ] {
            assert!(s.contains(needle), "missing {needle} in\n{s}");
        }
    }
}
