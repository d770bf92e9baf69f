//! Server settings: command-line flags (clap) with defaults usable from tests.
use anyhow::{bail, Result};
use clap::Args;
use std::time::Duration;
use whisper_burn::backend::{DeviceKind, DeviceSpec};

/// Everything the server needs to know, all of it settable from the command line.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Main model: a local directory (Hugging Face or CTranslate2 layout) or a hub id.
    #[arg(long, default_value = "weights/models/base")]
    pub main: String,
    /// Draft for speculative decoding: `none`, `self-q8`, `self-q4`, or a model dir / hub id.
    #[arg(long, default_value = "none")]
    pub draft: String,
    /// Device to run on: cpu, wgpu (wgpu:N, wgpu:cpu) or cuda (cuda:N); the GPU ones
    /// need a build with that feature.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// Name clients may use in the `model` field (besides `whisper-1`, the `--main` value and
    /// its last path component).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Most requests decoded together in one batch.
    #[arg(long, default_value_t = 8)]
    pub max_batch: usize,
    /// Longest time the oldest queued request waits for a batch to fill.
    #[arg(long, default_value_t = 10)]
    pub max_wait_ms: u64,
    /// Most requests waiting for inference; more are refused with 429 `overloaded`.
    #[arg(long, default_value_t = 64)]
    pub queue_capacity: usize,
    /// Most seconds of audio waiting for inference (bounds the queue's memory).
    #[arg(long, default_value_t = 4.0 * 3600.0)]
    pub max_queued_audio_s: f64,
    /// Largest upload in megabytes (10^6 bytes); enforced while the body is read.
    #[arg(long, default_value_t = 25.0)]
    pub max_upload_mb: f64,
    /// Memory budget in megabytes for request payloads: bodies being received and decoded
    /// audio waiting for or in inference. An upload that does not fit is answered 429 with
    /// `Retry-After` before its body is read. Worst-case memory is this plus the model,
    /// `decode_concurrency * max_audio_s * 64 kB/s` and the inference working memory (see the
    /// README); the default fits a 4 GiB container with `base`.
    #[arg(long, default_value_t = 1024.0)]
    pub max_inflight_upload_mb: f64,
    /// Longest time one upload's body may take to arrive, in seconds (408 past it).
    #[arg(long, default_value_t = 120)]
    pub upload_timeout_s: u64,
    /// Longest pause in an upload's body, in seconds (408 past it), so that clients that
    /// trickle bytes cannot hold the upload budget.
    #[arg(long, default_value_t = 15)]
    pub upload_idle_timeout_s: u64,
    /// Longest audio accepted, in seconds (after decoding).
    #[arg(long, default_value_t = 1800.0)]
    pub max_audio_s: f64,
    /// Most audio files decoded at once (each on a blocking thread).
    #[arg(long, default_value_t = default_decode_concurrency())]
    pub decode_concurrency: usize,
    /// Value of the `Retry-After` header on 429/503 answers, in seconds.
    #[arg(long, default_value_t = 1)]
    pub retry_after_s: u64,
    /// On SIGTERM / ctrl-c, how long to wait for in-flight requests before exiting.
    #[arg(long, default_value_t = 300)]
    pub shutdown_timeout_s: u64,
    /// For requests at temperature 0: decode a window again at these temperatures, in
    /// order, when its text repeats or is unlikely, keeping the best attempt (Whisper's
    /// rule, on by default as in openai-whisper, faster-whisper and OpenAI's API).
    #[arg(long, value_delimiter = ',', default_value = "0.2,0.4,0.6,0.8,1.0")]
    pub temperature_fallback: Vec<f32>,
    /// No temperature fallback: answers at temperature 0 are then the model's greedy
    /// output, token for token.
    #[arg(long)]
    pub no_fallback: bool,
    /// Skip the short warm-up inference after loading.
    #[arg(long)]
    pub no_warmup: bool,
    /// Transcribe the speech only (faster-whisper's `vad_filter=True`): Silero VAD removes
    /// silence, music and noise first, and times are mapped back to the upload's.
    #[arg(long)]
    pub vad: bool,
    /// Cut every upload at speech boundaries (Silero VAD, 160 ms silences) into groups of
    /// at most 30 s of speech, decoded `--max-batch` groups at a time beside other
    /// requests' groups, without previous-text conditioning (faster-whisper's
    /// BatchedInferencePipeline): a long upload fills a batch by itself.
    #[arg(long, conflicts_with = "vad")]
    pub batched: bool,
    /// The Silero VAD v6 ONNX file (`bash weights/fetch.sh` puts it there).
    #[arg(long, default_value = whisper_burn::vad::DEFAULT_MODEL_PATH)]
    pub vad_model: std::path::PathBuf,
    /// VAD: windows with a speech probability at or above this are speech.
    #[arg(long, default_value_t = 0.5)]
    pub vad_threshold: f32,
    /// VAD: silence this long ends a speech chunk (`--vad`; `--batched` cuts at 160 ms).
    #[arg(long, default_value_t = 2000)]
    pub vad_min_silence_ms: u32,
    /// VAD: padding added to each side of a speech chunk.
    #[arg(long, default_value_t = 400)]
    pub vad_speech_pad_ms: u32,
}

fn default_decode_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4)
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8000,
            main: "weights/models/base".into(),
            draft: "none".into(),
            device: DeviceKind::Cpu.into(),
            served_model_name: None,
            max_batch: 8,
            max_wait_ms: 10,
            queue_capacity: 64,
            max_queued_audio_s: 4.0 * 3600.0,
            max_upload_mb: 25.0,
            max_inflight_upload_mb: 1024.0,
            upload_timeout_s: 120,
            upload_idle_timeout_s: 15,
            max_audio_s: 1800.0,
            decode_concurrency: default_decode_concurrency(),
            retry_after_s: 1,
            shutdown_timeout_s: 300,
            temperature_fallback: vec![0.2, 0.4, 0.6, 0.8, 1.0],
            no_fallback: false,
            no_warmup: false,
            vad: false,
            batched: false,
            vad_model: whisper_burn::vad::DEFAULT_MODEL_PATH.into(),
            vad_threshold: 0.5,
            vad_min_silence_ms: 2000,
            vad_speech_pad_ms: 400,
        }
    }
}

impl ServerConfig {
    /// The fallback temperatures of a request at `temperature` (none above 0, as OpenAI's
    /// API: only temperature 0 falls back).
    pub fn fallback_for(&self, temperature: f32) -> Vec<f32> {
        if self.no_fallback || temperature != 0.0 {
            return Vec::new();
        }
        self.temperature_fallback.clone()
    }

    /// The VAD options (faster-whisper's defaults for those not on the command line; with
    /// `--batched`, its batched pipeline's: 160 ms silences, groups of at most 30 s).
    pub fn vad_options(&self) -> whisper_burn::vad::VadOptions {
        let base = match self.batched {
            true => whisper_burn::vad::batched_vad_options(),
            false => whisper_burn::vad::VadOptions {
                min_silence_duration_ms: self.vad_min_silence_ms,
                ..Default::default()
            },
        };
        whisper_burn::vad::VadOptions {
            threshold: self.vad_threshold,
            speech_pad_ms: self.vad_speech_pad_ms,
            ..base
        }
    }
}

impl ServerConfig {
    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.max_batch == 0 {
            bail!("--max-batch must be at least 1");
        }
        if self.queue_capacity == 0 {
            bail!("--queue-capacity must be at least 1");
        }
        if self.decode_concurrency == 0 {
            bail!("--decode-concurrency must be at least 1");
        }
        if !(self.max_upload_mb > 0.0 && self.max_upload_mb.is_finite()) {
            bail!("--max-upload-mb must be a positive number");
        }
        if !(self.max_audio_s > 0.0 && self.max_audio_s.is_finite()) {
            bail!("--max-audio-s must be a positive number");
        }
        if !(self.max_inflight_upload_mb >= self.max_upload_mb
            && self.max_inflight_upload_mb.is_finite())
        {
            bail!(
                "--max-inflight-upload-mb ({}) must be at least --max-upload-mb ({}), or no \
                 upload of the largest size could ever be admitted",
                self.max_inflight_upload_mb,
                self.max_upload_mb
            );
        }
        let max_audio_mb = self.max_audio_bytes() as f64 / 1e6;
        if max_audio_mb > self.max_inflight_upload_mb {
            bail!(
                "--max-inflight-upload-mb ({}) must hold the longest audio, {max_audio_mb:.0} MB \
                 once decoded (--max-audio-s {} at 64 kB/s)",
                self.max_inflight_upload_mb,
                self.max_audio_s
            );
        }
        if self.upload_timeout_s == 0 || self.upload_idle_timeout_s == 0 {
            bail!("--upload-timeout-s and --upload-idle-timeout-s must be at least 1");
        }
        if self.max_queued_audio_s.is_nan() || self.max_queued_audio_s <= 0.0 {
            bail!("--max-queued-audio-s must be a positive number");
        }
        if let Some(t) = self
            .temperature_fallback
            .iter()
            .find(|t| !(**t > 0.0 && **t <= 1.0))
        {
            bail!("--temperature-fallback temperatures must be above 0 and at most 1 (got {t})");
        }
        self.draft
            .parse::<spec_engine::DraftSpec>()
            .map_err(|e| anyhow::anyhow!("--draft: {e}"))?;
        Ok(())
    }

    pub fn max_upload_bytes(&self) -> usize {
        (self.max_upload_mb * 1e6) as usize
    }

    pub fn max_inflight_upload_bytes(&self) -> usize {
        (self.max_inflight_upload_mb * 1e6) as usize
    }

    /// Bytes of the longest accepted audio once decoded (16 kHz mono f32).
    pub fn max_audio_bytes(&self) -> usize {
        (self.max_audio_s * whisper_burn::audio::SAMPLE_RATE as f64 * 4.0) as usize
    }

    pub fn upload_timeout(&self) -> Duration {
        Duration::from_secs(self.upload_timeout_s)
    }

    pub fn upload_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.upload_idle_timeout_s)
    }

    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }

    /// Most transcription requests admitted at once (reading, decoding, queued or running);
    /// bounds the memory held by uploads.
    pub fn max_in_flight(&self) -> usize {
        self.queue_capacity + self.max_batch + self.decode_concurrency
    }

    /// The model id reported to clients: `--served-model-name`, else the last component of
    /// `--main`.
    pub fn model_id(&self) -> String {
        if let Some(n) = &self.served_model_name {
            return n.clone();
        }
        let trimmed = self.main.trim_end_matches('/');
        trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
    }

    /// Whether a request's `model` field names the served model (empty and `whisper-1`
    /// included).
    pub fn accepts_model(&self, requested: &str) -> bool {
        let r = requested.trim();
        r.is_empty()
            || r == "whisper-1"
            || r == self.main
            || r == self.main.trim_end_matches('/')
            || r == self.model_id()
    }
}
