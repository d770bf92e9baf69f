//! Prometheus metrics through the `prometheus` crate (tikv/rust-prometheus): one registry,
//! typed counters, gauges and histograms, rendered in the text exposition format.
use crate::errors::ErrorCode;
use crate::memory::MemoryBudget;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

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
    registry: Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    request_latency: HistogramVec,
    queue_wait: Histogram,
    inference_latency: Histogram,
    batch_size: Histogram,
    pub queue_depth: IntGauge,
    pub queued_audio_s: Gauge,
    pub in_flight: IntGauge,
    pub decoding: IntGauge,
    pub model_loaded: IntGauge,
    acceptance_rate: Gauge,
    audio_s: Gauge,
    encode_s: Gauge,
    decode_s: Gauge,
    pub transcriptions: IntCounter,
    pub batches: IntCounter,
    pub cancelled: IntCounter,
    pub drafted: IntCounter,
    pub accepted: IntCounter,
    pub main_passes: IntCounter,
    pub generated_tokens: IntCounter,
    upload_budget: Option<(MemoryBudget, IntGauge, IntGauge)>,
    resident: IntGauge,
    resident_max: IntGauge,
}

/// Registers a metric built from `opts` (names are fixed here, so failures are bugs).
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique and valid");
    metric
}

fn int_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, IntGauge::new(name, help).expect("valid gauge"))
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    register(registry, Gauge::new(name, help).expect("valid gauge"))
}

fn int_counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(
        registry,
        IntCounter::new(name, help).expect("valid counter"),
    )
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(
        registry,
        Histogram::with_opts(opts).expect("valid histogram"),
    )
}

impl Metrics {
    pub fn new(queue_capacity: usize, max_batch: usize) -> Self {
        let r = Registry::new();
        let requests = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "whisper_requests_total",
                    "HTTP requests by endpoint and status.",
                ),
                &["endpoint", "status"],
            )
            .expect("valid counter"),
        );
        let errors = register(
            &r,
            IntCounterVec::new(
                Opts::new("whisper_errors_total", "Error answers by error code."),
                &["code"],
            )
            .expect("valid counter"),
        );
        for code in ErrorCode::ALL {
            errors.with_label_values(&[code.as_str()]);
        }
        let request_latency = register(
            &r,
            HistogramVec::new(
                HistogramOpts::new(
                    "whisper_request_duration_seconds",
                    "HTTP request latency by endpoint.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["endpoint"],
            )
            .expect("valid histogram"),
        );
        let m = Self {
            requests,
            errors,
            request_latency,
            queue_wait: histogram(
                &r,
                "whisper_queue_wait_seconds",
                "Time from enqueueing to the start of inference.",
                &LATENCY_BUCKETS,
            ),
            inference_latency: histogram(
                &r,
                "whisper_inference_duration_seconds",
                "Wall time of one batch in the model.",
                &LATENCY_BUCKETS,
            ),
            batch_size: histogram(
                &r,
                "whisper_batch_size",
                "Requests per inference batch.",
                &BATCH_BUCKETS,
            ),
            queue_depth: int_gauge(&r, "whisper_queue_depth", "Requests waiting for inference."),
            queued_audio_s: gauge(
                &r,
                "whisper_queued_audio_seconds",
                "Seconds of audio waiting for inference.",
            ),
            in_flight: int_gauge(
                &r,
                "whisper_in_flight_requests",
                "Transcription requests admitted and not yet answered.",
            ),
            decoding: int_gauge(
                &r,
                "whisper_audio_decodes_in_progress",
                "Uploads being decoded to samples.",
            ),
            model_loaded: int_gauge(
                &r,
                "whisper_model_loaded",
                "1 once the model is loaded and serving.",
            ),
            acceptance_rate: gauge(
                &r,
                "whisper_speculative_acceptance_rate",
                "Accepted over drafted tokens since start.",
            ),
            audio_s: gauge(
                &r,
                "whisper_audio_seconds_total",
                "Seconds of audio transcribed.",
            ),
            encode_s: gauge(
                &r,
                "whisper_encode_seconds_total",
                "Encoder seconds (per-request shares).",
            ),
            decode_s: gauge(
                &r,
                "whisper_decode_seconds_total",
                "Decoder seconds (per-request shares).",
            ),
            transcriptions: int_counter(
                &r,
                "whisper_transcriptions_total",
                "Transcripts delivered by the model.",
            ),
            batches: int_counter(&r, "whisper_batches_total", "Inference batches run."),
            cancelled: int_counter(
                &r,
                "whisper_cancelled_requests_total",
                "Queued requests dropped because the client went away.",
            ),
            drafted: int_counter(
                &r,
                "whisper_speculative_drafted_tokens_total",
                "Tokens proposed by the draft.",
            ),
            accepted: int_counter(
                &r,
                "whisper_speculative_accepted_tokens_total",
                "Drafted tokens the main model accepted.",
            ),
            main_passes: int_counter(
                &r,
                "whisper_main_model_passes_total",
                "Decoder forward passes of the main model.",
            ),
            generated_tokens: int_counter(
                &r,
                "whisper_generated_tokens_total",
                "Text tokens generated.",
            ),
            upload_budget: None,
            resident: int_gauge(
                &r,
                "process_resident_memory_bytes",
                "Resident set size of the server process.",
            ),
            resident_max: int_gauge(
                &r,
                "process_resident_memory_max_bytes",
                "Peak resident set size of the server process since it started.",
            ),
            registry: r,
        };
        int_gauge(
            &m.registry,
            "whisper_queue_capacity",
            "Most requests that may wait for inference.",
        )
        .set(queue_capacity as i64);
        int_gauge(
            &m.registry,
            "whisper_max_batch",
            "Configured largest batch.",
        )
        .set(max_batch as i64);
        int_gauge(&m.registry, "whisper_build_info", "Constant 1.").set(1);
        m
    }

    /// Reports the upload budget's size and use.
    pub fn with_upload_budget(mut self, budget: MemoryBudget) -> Self {
        let total = int_gauge(
            &self.registry,
            "whisper_upload_budget_bytes",
            "Size of the payload budget (--max-inflight-upload-mb).",
        );
        let reserved = int_gauge(
            &self.registry,
            "whisper_upload_reserved_bytes",
            "Bytes of the payload budget held by bodies and decoded audio.",
        );
        self.upload_budget = Some((budget, total, reserved));
        self
    }

    /// One finished HTTP request.
    pub fn record_request(
        &self,
        endpoint: &'static str,
        status: u16,
        latency_s: f64,
        error: Option<ErrorCode>,
    ) {
        self.requests
            .with_label_values(&[endpoint, &status.to_string()])
            .inc();
        self.request_latency
            .with_label_values(&[endpoint])
            .observe(latency_s);
        if let Some(code) = error {
            self.errors.with_label_values(&[code.as_str()]).inc();
        }
    }

    /// One batch sent through the model.
    pub fn record_batch(&self, size: usize, latency_s: f64) {
        self.batches.inc();
        self.batch_size.observe(size as f64);
        self.inference_latency.observe(latency_s);
    }

    pub fn record_queue_wait(&self, seconds: f64) {
        self.queue_wait.observe(seconds);
    }

    /// One transcript delivered.
    pub fn record_transcript(&self, t: &whisper_burn::Transcript) {
        self.transcriptions.inc();
        self.drafted.inc_by(t.drafted as u64);
        self.accepted.inc_by(t.accepted as u64);
        self.main_passes.inc_by(t.main_passes as u64);
        self.generated_tokens.inc_by(t.tokens.len() as u64);
        self.audio_s.add(t.audio_s);
        self.encode_s.add(t.encode_s);
        self.decode_s.add(t.decode_s);
    }

    /// The text exposition format, with the values read at scrape time refreshed.
    pub fn render(&self) -> String {
        let drafted = self.drafted.get();
        self.acceptance_rate.set(if drafted == 0 {
            0.0
        } else {
            self.accepted.get() as f64 / drafted as f64
        });
        if let Some((budget, total, reserved)) = &self.upload_budget {
            total.set(budget.total_bytes() as i64);
            reserved.set(budget.reserved_bytes() as i64);
        }
        if let Some((rss, peak)) = process_memory() {
            self.resident.set(rss as i64);
            self.resident_max.set(peak as i64);
        }
        let mut out = Vec::with_capacity(8192);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("rendering metrics: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_every_family() {
        let m = Metrics::new(4, 2);
        m.record_request("/transcribe", 200, 0.3, None);
        m.record_request("/transcribe", 429, 0.001, Some(ErrorCode::Overloaded));
        m.record_batch(2, 0.5);
        m.record_batch(3, 0.5);
        m.record_batch(200, 0.5);
        let s = m.render();
        for needle in [
            "whisper_requests_total{endpoint=\"/transcribe\",status=\"200\"} 1",
            "whisper_errors_total{code=\"overloaded\"} 1",
            "whisper_errors_total{code=\"missing_file\"} 0",
            "whisper_batch_size_bucket{le=\"2\"} 1",
            "whisper_batch_size_bucket{le=\"4\"} 2",
            "whisper_batch_size_bucket{le=\"+Inf\"} 3",
            "whisper_batch_size_count 3",
            "whisper_queue_depth 0",
            "whisper_queue_capacity 4",
            "whisper_max_batch 2",
            "whisper_speculative_acceptance_rate 0",
            "whisper_request_duration_seconds_count{endpoint=\"/transcribe\"} 2",
            "# TYPE whisper_build_info gauge",
            "# TYPE whisper_batches_total counter",
        ] {
            assert!(s.contains(needle), "missing {needle} in\n{s}");
        }
    }
}
