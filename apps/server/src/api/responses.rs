//! Response bodies (with their OpenAPI schemas) and the request forms as documented.
use crate::batcher::JobOutput;
use crate::formats::{self, ResponseFormat};
use crate::worker::ModelInfo;
use poem::http::{header, StatusCode};
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::multipart::Upload;
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Multipart, Object, Union};
use serde::Serialize;
use whisper_burn::Task;

// ---- request forms, as the OpenAPI document describes them (parsing: `multipart.rs`) ----

/// `POST /transcribe`
#[allow(dead_code)]
#[derive(Debug, Multipart)]
pub struct TranscribeForm {
    /// The audio file (wav, flac, mp3, ogg/vorbis, m4a/aac, ...).
    pub file: Upload,
    /// Language code (`en`) or name (`english`); detected when absent (multilingual models).
    pub language: Option<String>,
    /// `transcribe` (default) or `translate` (to English; multilingual models).
    pub task: Option<String>,
    /// Decode timestamps and return timed segments (default `true`).
    pub timestamps: Option<bool>,
    /// Give each segment its `words` with their times (default `false`).
    pub word_timestamps: Option<bool>,
    /// Text that precedes the audio (spelling, style).
    pub prompt: Option<String>,
    /// Only `0` (greedy decoding) is served.
    pub temperature: Option<f64>,
    /// Optional; must name the served model, `whisper-1`, or be empty.
    pub model: Option<String>,
}

/// `POST /v1/audio/transcriptions` (OpenAI-compatible)
#[allow(dead_code)]
#[derive(Debug, Multipart)]
pub struct OpenAiTranscriptionForm {
    /// The audio file.
    pub file: Upload,
    /// The served model's name, `whisper-1`, or empty.
    pub model: Option<String>,
    /// ISO-639-1 language of the audio; detected when absent (multilingual models).
    pub language: Option<String>,
    /// Text to guide the model's style or continue a previous segment.
    pub prompt: Option<String>,
    /// `json` (default), `text`, `srt`, `vtt` or `verbose_json`.
    pub response_format: Option<String>,
    /// Only `0` (greedy decoding) is served.
    pub temperature: Option<f64>,
    /// `segment` (the default) and/or `word` (with `verbose_json`: the response's `words`).
    #[oai(rename = "timestamp_granularities[]")]
    pub timestamp_granularities: Vec<String>,
}

/// `POST /v1/audio/translations` (OpenAI-compatible): speech to English text.
#[allow(dead_code)]
#[derive(Debug, Multipart)]
pub struct OpenAiTranslationForm {
    /// The audio file.
    pub file: Upload,
    /// The served model's name, `whisper-1`, or empty.
    pub model: Option<String>,
    /// Text to guide the model's style (in English).
    pub prompt: Option<String>,
    /// `json` (default), `text`, `srt`, `vtt` or `verbose_json`.
    pub response_format: Option<String>,
    /// Only `0` (greedy decoding) is served.
    pub temperature: Option<f64>,
}

// ---- /transcribe ----

/// A stretch of the transcript with its times in seconds.
#[derive(Debug, Clone, Serialize, Object)]
pub struct SegmentOut {
    pub id: u32,
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// The segment's words (with `word_timestamps=true`).
    #[oai(skip_serializing_if_is_empty)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<WordOut>,
}

/// A word with its times in seconds and its mean token probability.
#[derive(Debug, Clone, Serialize, Object)]
pub struct WordOut {
    pub word: String,
    pub start: f64,
    pub end: f64,
    pub probability: f64,
}

impl WordOut {
    fn new(w: &whisper_burn::Word) -> Self {
        Self {
            word: w.word.clone(),
            start: decimal(w.start_s),
            end: decimal(w.end_s),
            probability: decimal(w.probability),
        }
    }
}

/// An `f32` through its shortest decimal form, so 0.7 reads 0.7, not 0.699999988.
fn decimal(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// Where the time went, in seconds.
#[derive(Debug, Clone, Serialize, Object)]
pub struct Timing {
    /// Reading and decoding the upload to 16 kHz samples.
    pub audio_decode_s: f64,
    /// Waiting in the queue for a batch.
    pub queue_s: f64,
    /// This request's share of the encoder time of its batch.
    pub encode_s: f64,
    /// This request's share of the decoder time of its batch.
    pub decode_s: f64,
    /// Wall time of the whole batch in the model.
    pub inference_s: f64,
    /// From admission to the answer.
    pub total_s: f64,
    /// Requests decoded together with this one (itself included).
    pub batch_size: u32,
    /// 30-second windows decoded.
    pub windows: u32,
}

/// Speculative decoding statistics of this request.
#[derive(Debug, Clone, Serialize, Object)]
pub struct Speculative {
    /// The draft in use (`none`, `self-q8`, `self-q4`, a model).
    pub draft: String,
    /// Tokens proposed by the draft.
    pub drafted: u64,
    /// Proposed tokens the main model agreed with.
    pub accepted: u64,
    /// `accepted / drafted` (0 when nothing was drafted).
    pub acceptance_rate: f64,
    /// Decoder forward passes of the main model.
    pub main_passes: u64,
    /// Text tokens generated.
    pub tokens: u64,
    /// Seconds spent in the draft.
    pub draft_s: f64,
}

/// The answer of `POST /transcribe`.
#[derive(Debug, Clone, Serialize, Object)]
pub struct TranscribeResponse {
    pub text: String,
    pub segments: Vec<SegmentOut>,
    /// Language code, given or detected.
    pub language: String,
    /// Probability of the detected language (1 when given).
    pub language_probability: f64,
    /// Audio duration in seconds.
    pub duration_s: f64,
    pub model: String,
    pub timing: Timing,
    pub speculative: Speculative,
}

impl TranscribeResponse {
    pub fn new(out: &JobOutput, model: &ModelInfo, audio_decode_s: f64, total_s: f64) -> Self {
        let t = &out.transcript;
        Self {
            text: t.text.clone(),
            segments: t
                .segments
                .iter()
                .enumerate()
                .map(|(i, s)| SegmentOut {
                    id: i as u32,
                    start: decimal(s.start_s),
                    end: decimal(s.end_s),
                    text: s.text.trim().to_string(),
                    words: s.words.iter().map(WordOut::new).collect(),
                })
                .collect(),
            language: t.language.clone(),
            language_probability: t.language_prob as f64,
            duration_s: t.audio_s,
            model: model.id.clone(),
            timing: Timing {
                audio_decode_s,
                queue_s: out.queue_s,
                encode_s: t.encode_s,
                decode_s: t.decode_s,
                inference_s: out.inference_s,
                total_s,
                batch_size: out.batch_size as u32,
                windows: t.windows as u32,
            },
            speculative: Speculative {
                draft: model.draft.clone(),
                drafted: t.drafted as u64,
                accepted: t.accepted as u64,
                acceptance_rate: if t.drafted == 0 {
                    0.0
                } else {
                    t.accepted as f64 / t.drafted as f64
                },
                main_passes: t.main_passes as u64,
                tokens: t.tokens.len() as u64,
                draft_s: t.draft_s,
            },
        }
    }
}

// ---- OpenAI-compatible ----

/// `response_format=json`
#[derive(Debug, Clone, Serialize, Object)]
pub struct TranscriptionJson {
    pub text: String,
}

/// One segment of `verbose_json`.
#[derive(Debug, Clone, Serialize, Object)]
pub struct VerboseSegment {
    pub id: u32,
    /// Start of the segment in 10 ms frames (OpenAI's `seek`).
    pub seek: u64,
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Token ids of the segment, timestamp tokens included.
    pub tokens: Vec<u32>,
    /// The sampling temperature (0: greedy).
    pub temperature: f64,
    /// Not computed by this server (0).
    pub avg_logprob: f64,
    /// zlib compression ratio of the segment text, as Whisper computes it.
    pub compression_ratio: f64,
    /// Not computed by this server (0).
    pub no_speech_prob: f64,
}

/// `response_format=verbose_json`
#[derive(Debug, Clone, Serialize, Object)]
pub struct VerboseTranscription {
    /// `transcribe` or `translate`.
    pub task: String,
    /// Language name (`english`).
    pub language: String,
    /// Audio duration in seconds.
    pub duration: f64,
    pub text: String,
    pub segments: Vec<VerboseSegment>,
    /// Every word with its times (with `timestamp_granularities[]=word`), as OpenAI
    /// returns them: the word without its leading space.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<VerboseWord>>,
}

/// One word of `verbose_json`.
#[derive(Debug, Clone, Serialize, Object)]
pub struct VerboseWord {
    pub word: String,
    pub start: f64,
    pub end: f64,
}

impl VerboseTranscription {
    pub fn new(out: &JobOutput, task: Task) -> Self {
        let t = &out.transcript;
        Self {
            task: match task {
                Task::Transcribe => "transcribe",
                Task::Translate => "translate",
            }
            .into(),
            language: formats::language_name(&t.language),
            duration: t.audio_s,
            text: t.text.clone(),
            segments: t
                .segments
                .iter()
                .enumerate()
                .map(|(i, s)| VerboseSegment {
                    id: i as u32,
                    seek: (s.start_s.max(0.0) as f64 * 100.0).floor() as u64,
                    start: decimal(s.start_s),
                    end: decimal(s.end_s),
                    text: s.text.clone(),
                    tokens: s.tokens.clone(),
                    // Through its decimal form, so 0.7 reads 0.7, not 0.699999988.
                    temperature: decimal(out.temperature),
                    avg_logprob: 0.0,
                    compression_ratio: formats::compression_ratio(&s.text),
                    no_speech_prob: 0.0,
                })
                .collect(),
            words: out.word_timestamps.then(|| {
                t.segments
                    .iter()
                    .flat_map(|s| &s.words)
                    .map(|w| VerboseWord {
                        word: w.word.trim().to_string(),
                        start: decimal(w.start_s),
                        end: decimal(w.end_s),
                    })
                    .collect()
            }),
        }
    }
}

/// The JSON bodies of the OpenAI-compatible endpoints.
#[derive(Debug, Clone, Union)]
#[oai(one_of)]
pub enum TranscriptionBody {
    Json(TranscriptionJson),
    Verbose(VerboseTranscription),
}

/// The answer of the OpenAI-compatible endpoints, in the requested `response_format`.
#[derive(Debug)]
pub enum OpenAiOutput {
    Json(TranscriptionJson),
    Verbose(Box<VerboseTranscription>),
    Text {
        format: ResponseFormat,
        body: String,
    },
}

impl OpenAiOutput {
    pub fn new(format: ResponseFormat, out: &JobOutput, task: Task) -> Self {
        let t = &out.transcript;
        match format {
            ResponseFormat::Json => OpenAiOutput::Json(TranscriptionJson {
                text: t.text.clone(),
            }),
            ResponseFormat::VerboseJson => {
                OpenAiOutput::Verbose(Box::new(VerboseTranscription::new(out, task)))
            }
            ResponseFormat::Text => OpenAiOutput::Text {
                format,
                body: formats::to_text(&t.text),
            },
            ResponseFormat::Srt => OpenAiOutput::Text {
                format,
                body: formats::to_srt(&t.segments),
            },
            ResponseFormat::Vtt => OpenAiOutput::Text {
                format,
                body: formats::to_vtt(&t.segments),
            },
        }
    }
}

fn json_response<T: Serialize>(v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(b),
        Err(e) => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(e.to_string()),
    }
}

impl IntoResponse for OpenAiOutput {
    fn into_response(self) -> Response {
        match self {
            OpenAiOutput::Json(j) => json_response(&j),
            OpenAiOutput::Verbose(v) => json_response(&v),
            OpenAiOutput::Text { format, body } => Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, format.content_type())
                .body(body),
        }
    }
}

impl ApiResponse for OpenAiOutput {
    fn meta() -> MetaResponses {
        let text = String::schema_ref();
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The transcript: `json` gives `{\"text\"}`, `verbose_json` adds task, language, duration and \
                              segments; `text`, `srt` and `vtt` are plain text",
                status: Some(200),
                status_range: None,
                content: vec![
                    MetaMediaType { content_type: "application/json", schema: TranscriptionBody::schema_ref() },
                    MetaMediaType { content_type: "text/plain", schema: text.clone() },
                    MetaMediaType { content_type: "application/x-subrip", schema: text.clone() },
                    MetaMediaType { content_type: "text/vtt", schema: text },
                ],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        TranscriptionBody::register(registry);
    }
}

// ---- health, models ----

/// Server and model status.
#[derive(Debug, Clone, Serialize, Object)]
pub struct Health {
    /// `ok`, `loading`, `failed` or `shutting_down`.
    pub status: String,
    pub model: Option<String>,
    pub main: String,
    pub draft: Option<String>,
    pub device: String,
    pub multilingual: Option<bool>,
    /// Why loading failed.
    pub error: Option<String>,
    pub queue_depth: u64,
    pub in_flight: u64,
    pub version: String,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The model is loaded and requests are served.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// Loading, failed, or shutting down.
    #[oai(status = 503)]
    Unavailable(Json<Health>),
}

/// One model (OpenAI's `GET /v1/models`).
#[derive(Debug, Clone, Serialize, Object)]
pub struct ModelCard {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

#[derive(Debug, Clone, Serialize, Object)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelCard>,
}
