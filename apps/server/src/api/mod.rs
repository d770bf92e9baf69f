//! HTTP routes: handlers validate, decode the audio off the runtime and enqueue; the
//! batcher and the inference thread do the rest.
pub mod middleware;
pub mod multipart;
pub mod responses;

use crate::batcher::{Job, JobOutput};
use crate::errors::{ApiError, ErrorCode};
use crate::formats::{self, ResponseFormat};
use crate::state::AppState;
use crate::worker::{ModelInfo, ModelStatus};
use multipart::{ParsedForm, UploadForm, UploadedFile};
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{OpenApi, Tags};
use responses::*;
use std::sync::Arc;
use std::time::Instant;
use whisper_burn::{DecodeOptions, Task};

#[derive(Tags)]
enum ApiTags {
    /// Transcription with timing and speculative-decoding statistics
    Transcription,
    /// OpenAI-compatible audio API
    OpenAi,
    /// Health and metrics
    Operations,
}

/// The API; its OpenAPI document is generated from these operations.
pub struct Api {
    pub state: Arc<AppState>,
}

#[OpenApi]
impl Api {
    /// Transcribe an audio file
    ///
    /// Multipart field `file` holds the audio (`curl -F file=@audio.wav host:8000/transcribe`).
    /// Returns the text, timed segments, language, duration, timings and speculative
    /// decoding statistics.
    #[oai(
        path = "/transcribe",
        method = "post",
        operation_id = "transcribe",
        tag = "ApiTags::Transcription"
    )]
    async fn transcribe(
        &self,
        form: UploadForm<TranscribeForm>,
    ) -> Result<Json<TranscribeResponse>, ApiError> {
        let t0 = Instant::now();
        let mut form = form.form?;
        let model = self.state.model()?;
        check_model(&self.state, &form)?;
        let (temperature, seed) = sampling_options(&form)?;
        let task = match form.get("task").map(str::trim) {
            None | Some("") | Some("transcribe") => Task::Transcribe,
            Some("translate") => Task::Translate,
            Some(other) => {
                return Err(ApiError::invalid_parameter(
                    "task",
                    format!("unknown task `{other}`: use `transcribe` or `translate`"),
                ))
            }
        };
        let flag = |name: &str, default: bool| match form.get(name) {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| {
                ApiError::invalid_parameter(name, format!("`{v}` is not a boolean"))
            }),
        };
        let word_timestamps = flag("word_timestamps", false)?;
        let timestamps = flag("timestamps", true)?;
        if word_timestamps && !timestamps {
            return Err(ApiError::invalid_parameter(
                "word_timestamps",
                "word timestamps need timestamps=true",
            ));
        }
        let opts = DecodeOptions {
            language: language_option(&model, form.get("language"), task)?,
            task,
            timestamps,
            word_timestamps,
            initial_prompt: prompt_option(form.get("prompt")),
            temperature,
            seed,
            temperature_fallback: self.state.config.fallback_for(temperature),
            ..Default::default()
        };
        let file = form.take_file()?;
        let (out, decode_s) = run_job(&self.state, file, opts, form.peer).await?;
        drop(form);
        Ok(Json(TranscribeResponse::new(
            &out,
            &model,
            decode_s,
            t0.elapsed().as_secs_f64(),
        )))
    }

    /// Create a transcription (OpenAI-compatible)
    ///
    /// Same form as OpenAI's `POST /v1/audio/transcriptions`; an OpenAI client pointed at this
    /// server works unchanged.
    #[oai(
        path = "/v1/audio/transcriptions",
        method = "post",
        operation_id = "createTranscription",
        tag = "ApiTags::OpenAi"
    )]
    async fn openai_transcriptions(
        &self,
        form: UploadForm<OpenAiTranscriptionForm>,
    ) -> Result<OpenAiOutput, ApiError> {
        self.openai(form.form?, Task::Transcribe).await
    }

    /// Create a translation to English (OpenAI-compatible)
    ///
    /// Same form as OpenAI's `POST /v1/audio/translations`; needs a multilingual model.
    #[oai(
        path = "/v1/audio/translations",
        method = "post",
        operation_id = "createTranslation",
        tag = "ApiTags::OpenAi"
    )]
    async fn openai_translations(
        &self,
        form: UploadForm<OpenAiTranslationForm>,
    ) -> Result<OpenAiOutput, ApiError> {
        self.openai(form.form?, Task::Translate).await
    }

    /// List the served model (OpenAI-compatible)
    #[oai(
        path = "/v1/models",
        method = "get",
        operation_id = "listModels",
        tag = "ApiTags::OpenAi"
    )]
    async fn models(&self) -> Json<ModelList> {
        let id = self.state.config.model_id();
        let card = |id: String| ModelCard {
            id,
            object: "model".into(),
            created: 0,
            owned_by: "whisper-server".into(),
        };
        Json(ModelList {
            object: "list".into(),
            data: vec![card(id), card("whisper-1".into())],
        })
    }

    /// Health: 200 once the model is loaded, 503 while loading, after a failed load, or
    /// when shutting down
    #[oai(
        path = "/health",
        method = "get",
        operation_id = "health",
        tag = "ApiTags::Operations"
    )]
    async fn health(&self) -> HealthResponse {
        let s = &self.state;
        let mut h = Health {
            status: String::new(),
            model: None,
            main: s.config.main.clone(),
            draft: None,
            device: s.config.device.to_string(),
            multilingual: None,
            error: None,
            queue_depth: s.queue.len() as u64,
            in_flight: s.metrics.in_flight.get().max(0) as u64,
            version: env!("CARGO_PKG_VERSION").into(),
        };
        let status = s.status.borrow().clone();
        let ok = match status {
            ModelStatus::Loading => {
                h.status = "loading".into();
                false
            }
            ModelStatus::Failed(e) => {
                h.status = "failed".into();
                h.error = Some(e);
                false
            }
            ModelStatus::Ready(info) => {
                h.model = Some(info.id.clone());
                h.draft = Some(info.draft.clone());
                h.multilingual = Some(info.multilingual);
                h.status = "ok".into();
                true
            }
        };
        if s.is_shutting_down() {
            h.status = "shutting_down".into();
            return HealthResponse::Unavailable(Json(h));
        }
        if ok {
            HealthResponse::Ok(Json(h))
        } else {
            HealthResponse::Unavailable(Json(h))
        }
    }

    /// Prometheus metrics (text exposition format)
    #[oai(
        path = "/metrics",
        method = "get",
        operation_id = "metrics",
        tag = "ApiTags::Operations"
    )]
    async fn metrics(&self) -> PlainText<String> {
        PlainText(self.state.metrics.render())
    }
}

impl Api {
    async fn openai(&self, mut form: ParsedForm, task: Task) -> Result<OpenAiOutput, ApiError> {
        let model = self.state.model()?;
        check_model(&self.state, &form)?;
        let (temperature, seed) = sampling_options(&form)?;
        let format_field = form.get("response_format").unwrap_or("");
        let format = ResponseFormat::parse(format_field).ok_or_else(|| {
            ApiError::invalid_parameter(
                "response_format",
                format!(
                    "unknown response_format `{format_field}`: use one of {}",
                    ResponseFormat::NAMES.join(", ")
                ),
            )
        })?;
        let words = word_granularity(&form, format)?;
        if let Some(v) = form.get("stream") {
            if parse_bool(v) == Some(true) {
                return Err(ApiError::invalid_parameter(
                    "stream",
                    "streaming responses are not supported",
                ));
            }
        }
        let language = match task {
            Task::Transcribe => language_option(&model, form.get("language"), task)?,
            Task::Translate => {
                language_option(&model, None, task)?;
                None
            }
        };
        let opts = DecodeOptions {
            language,
            task,
            timestamps: format.needs_timestamps(),
            word_timestamps: words,
            initial_prompt: prompt_option(form.get("prompt")),
            temperature,
            seed,
            temperature_fallback: self.state.config.fallback_for(temperature),
            ..Default::default()
        };
        let file = form.take_file()?;
        let (out, _) = run_job(&self.state, file, opts, form.peer).await?;
        drop(form);
        Ok(OpenAiOutput::new(format, &out, task))
    }
}

/// Whether `timestamp_granularities[]` asks for words (`segment`, `word`, or both, as
/// OpenAI's API; like it, only with `verbose_json`).
fn word_granularity(form: &ParsedForm, format: ResponseFormat) -> Result<bool, ApiError> {
    let mut words = false;
    for g in form
        .get_all("timestamp_granularities[]")
        .chain(form.get_all("timestamp_granularities"))
    {
        match g.trim() {
            "segment" => {}
            "word" => words = true,
            other => {
                return Err(ApiError::invalid_parameter(
                    "timestamp_granularities[]",
                    format!("unknown timestamp granularity `{other}`: use `segment` or `word`"),
                ))
            }
        }
    }
    if words && format != ResponseFormat::VerboseJson {
        return Err(ApiError::invalid_parameter(
            "timestamp_granularities[]",
            "word timestamps need response_format=verbose_json",
        ));
    }
    Ok(words)
}

/// Decodes the upload off the runtime, checks its length, enqueues it and waits for the
/// transcript. Returns the output and the audio decoding seconds.
async fn run_job(
    state: &Arc<AppState>,
    file: UploadedFile,
    opts: DecodeOptions,
    peer: Option<std::net::SocketAddr>,
) -> Result<(JobOutput, f64), ApiError> {
    let t0 = Instant::now();
    let UploadedFile {
        bytes,
        filename,
        memory: mut reservation,
        ..
    } = file;
    let audio = {
        let _slot = state
            .decode_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::new(ErrorCode::ShuttingDown, "the server is shutting down"))?;
        state.metrics.decoding.inc();
        let ext = extension(filename.as_deref());
        let limits = whisper_burn::audio::DecodeLimits {
            max_duration_s: state.config.max_audio_s,
        };
        let decoded = tokio::task::spawn_blocking(move || {
            whisper_burn::audio::decode_audio_bytes_limited(bytes, ext.as_deref(), limits)
        })
        .await;
        state.metrics.decoding.dec();
        match decoded {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => return Err(ApiError::from_audio(&e)),
            Err(e) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidAudio,
                    format!("decoding the audio failed: {e}"),
                )
                .with_param("file"))
            }
        }
    };
    let decode_s = t0.elapsed().as_secs_f64();
    // The body is gone: the reservation now holds the decoded audio.
    let audio_bytes = audio.capacity() * std::mem::size_of::<f32>();
    if !reservation.resize(audio_bytes) {
        return Err(state.out_of_budget(audio_bytes));
    }
    let (job, reply) = Job::new(audio, opts);
    let job = job.holding(reservation);
    state.queue.push(job).map_err(|(_, e)| e)?;
    // A client that leaves drops `reply` (here, or when poem drops this future), which takes
    // the job out of the queue before inference.
    let out = tokio::select! {
        r = reply => r.map_err(|_| ApiError::inference_failed("the inference thread stopped before answering"))??,
        _ = state.connections.closed(peer) => {
            return Err(ApiError::new(ErrorCode::ClientClosed, "the client closed the connection before the answer"));
        }
    };
    Ok((out, decode_s))
}

/// A file name's extension, a hint for the audio probe.
fn extension(filename: Option<&str>) -> Option<String> {
    let ext = std::path::Path::new(filename?).extension()?.to_str()?;
    Some(ext.to_ascii_lowercase())
}

fn check_model(state: &AppState, form: &ParsedForm) -> Result<(), ApiError> {
    match form.get("model") {
        Some(m) if !state.config.accepts_model(m) => Err(ApiError::new(
            ErrorCode::ModelNotFound,
            format!("the model `{m}` does not exist on this server; it serves `{}` (also accepted: `whisper-1`)", state.config.model_id()),
        )
        .with_param("model")),
        _ => Ok(()),
    }
}

/// `temperature` (0 to 1, as OpenAI's API; 0 is greedy) and `seed` (an extension: the
/// sampling streams' seed; without it each sampled request gets its own, so repeated
/// requests differ as with OpenAI's API).
fn sampling_options(form: &ParsedForm) -> Result<(f32, u64), ApiError> {
    let field = |name: &str| form.get(name).map(str::trim).filter(|v| !v.is_empty());
    let temperature = match field("temperature") {
        None => 0.0,
        Some(raw) => {
            let t: f32 = raw.parse().map_err(|_| {
                ApiError::invalid_parameter("temperature", format!("`{raw}` is not a number"))
            })?;
            if !(0.0..=1.0).contains(&t) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedTemperature,
                    format!("temperature {raw} is out of range: use 0 (greedy) to 1"),
                )
                .with_param("temperature"));
            }
            t
        }
    };
    let seed = match field("seed") {
        None if temperature > 0.0 => fresh_seed(),
        None => 0,
        Some(raw) => raw.parse().map_err(|_| {
            ApiError::invalid_parameter("seed", format!("`{raw}` is not a non-negative integer"))
        })?,
    };
    Ok((temperature, seed))
}

/// A seed no earlier request of this process got: the clock mixed with a counter.
fn fresh_seed() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn prompt_option(p: Option<&str>) -> Option<String> {
    p.map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

/// The language to force, checked against the model; `None` detects it.
fn language_option(
    model: &ModelInfo,
    requested: Option<&str>,
    task: Task,
) -> Result<Option<String>, ApiError> {
    if task == Task::Translate && !model.multilingual {
        return Err(ApiError::invalid_parameter(
            "task",
            format!(
                "the model `{}` is English-only and cannot translate; serve a multilingual model",
                model.id
            ),
        ));
    }
    let requested = requested
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "auto");
    let Some(l) = requested else {
        return Ok(if model.multilingual {
            None
        } else {
            Some("en".into())
        });
    };
    let code = formats::language_code(l).ok_or_else(|| {
        ApiError::invalid_parameter(
            "language",
            format!("unknown language `{l}`: use an ISO-639-1 code such as `en`"),
        )
    })?;
    if !model.multilingual && code != "en" {
        return Err(ApiError::invalid_parameter(
            "language",
            format!(
                "the model `{}` is English-only; language `{code}` is not available",
                model.id
            ),
        ));
    }
    Ok(Some(code.to_string()))
}
