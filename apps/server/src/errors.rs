//! The one error type of the HTTP API: a stable `code`, a status and a message, rendered as
//! `{"error": {"code": "...", "message": "..."}}`.
use poem::error::ResponseError;
use poem::http::{header, StatusCode};
use poem::Response;
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};
use serde::Serialize;
use std::fmt;

/// Stable machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    MissingFile,
    InvalidAudio,
    UnsupportedAudio,
    EmptyAudio,
    FileTooLarge,
    AudioTooLong,
    Overloaded,
    ModelNotFound,
    InvalidParameter,
    UnsupportedTemperature,
    InferenceFailed,
    ModelLoading,
    ShuttingDown,
    InvalidRequest,
    NotFound,
    MethodNotAllowed,
    ClientClosed,
    UploadTimeout,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::MissingFile,
        ErrorCode::InvalidAudio,
        ErrorCode::UnsupportedAudio,
        ErrorCode::EmptyAudio,
        ErrorCode::FileTooLarge,
        ErrorCode::AudioTooLong,
        ErrorCode::Overloaded,
        ErrorCode::ModelNotFound,
        ErrorCode::InvalidParameter,
        ErrorCode::UnsupportedTemperature,
        ErrorCode::InferenceFailed,
        ErrorCode::ModelLoading,
        ErrorCode::ShuttingDown,
        ErrorCode::InvalidRequest,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::ClientClosed,
        ErrorCode::UploadTimeout,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingFile => "missing_file",
            ErrorCode::InvalidAudio => "invalid_audio",
            ErrorCode::UnsupportedAudio => "unsupported_audio",
            ErrorCode::EmptyAudio => "empty_audio",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::AudioTooLong => "audio_too_long",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::UnsupportedTemperature => "unsupported_temperature",
            ErrorCode::InferenceFailed => "inference_failed",
            ErrorCode::ModelLoading => "model_loading",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::ClientClosed => "client_closed",
            ErrorCode::UploadTimeout => "upload_timeout",
            ErrorCode::Internal => "internal_error",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::MissingFile
            | ErrorCode::InvalidAudio
            | ErrorCode::EmptyAudio
            | ErrorCode::InvalidParameter
            | ErrorCode::UnsupportedTemperature
            | ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedAudio => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::FileTooLarge | ErrorCode::AudioTooLong => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ModelNotFound | ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::UploadTimeout => StatusCode::REQUEST_TIMEOUT,
            // nginx's "client closed request"; never seen by the client.
            ErrorCode::ClientClosed => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorCode::ModelLoading | ErrorCode::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InferenceFailed | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's error `type` for the same class of problem.
    fn openai_type(self) -> &'static str {
        match self.status() {
            s if s.is_server_error()
                && self != ErrorCode::ModelLoading
                && self != ErrorCode::ShuttingDown =>
            {
                "server_error"
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => "rate_limit_error",
            _ => "invalid_request_error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer: code, message, and for overload a `Retry-After` in seconds.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after_s: Option<u64>,
    /// The request parameter at fault, if any (OpenAI's `param`).
    pub param: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_s: None,
            param: None,
        }
    }
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds.max(1));
        self
    }
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn missing_file(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MissingFile, message).with_param("file")
    }
    pub fn invalid_parameter(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameter, message).with_param(param)
    }
    pub fn overloaded(message: impl Into<String>, retry_after_s: u64) -> Self {
        Self::new(ErrorCode::Overloaded, message).with_retry_after(retry_after_s)
    }
    pub fn inference_failed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InferenceFailed, message)
    }

    /// Maps an audio decoding error of `whisper-burn`.
    pub fn from_audio(err: &whisper_burn::WhisperError) -> Self {
        use whisper_burn::WhisperError as W;
        match err {
            W::EmptyAudio => Self::new(
                ErrorCode::EmptyAudio,
                "the uploaded audio contains no samples",
            )
            .with_param("file"),
            W::UnsupportedAudio(m) => Self::new(
                ErrorCode::UnsupportedAudio,
                format!("unsupported audio format: {m}"),
            )
            .with_param("file"),
            W::AudioTooLong { max_s } => Self::new(
                ErrorCode::AudioTooLong,
                format!("the audio is longer than this server's limit of {max_s:.1} s"),
            )
            .with_param("file"),
            W::CorruptAudio(m) => Self::new(
                ErrorCode::InvalidAudio,
                format!("could not decode the audio: {m}"),
            )
            .with_param("file"),
            other => Self::new(
                ErrorCode::InvalidAudio,
                format!("could not decode the audio: {other}"),
            )
            .with_param("file"),
        }
    }

    /// Maps an inference error of the engine.
    pub fn from_engine(err: &spec_engine::SpecError) -> Self {
        match err {
            spec_engine::SpecError::Whisper(whisper_burn::WhisperError::EmptyAudio) => Self::new(
                ErrorCode::EmptyAudio,
                "the uploaded audio contains no samples",
            )
            .with_param("file"),
            other => Self::inference_failed(format!("inference failed: {other}")),
        }
    }

    pub fn body(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorDetail {
                code: self.code.as_str().to_string(),
                message: self.message.clone(),
                r#type: self.code.openai_type().to_string(),
                param: self.param.clone(),
            },
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Marks a response produced from an [`ApiError`] (read by the metrics middleware).
#[derive(Debug, Clone, Copy)]
pub struct ErrorMark(pub ErrorCode);

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.code.status()
    }

    fn as_response(&self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_else(|_| b"{}".to_vec());
        let mut builder = Response::builder()
            .status(self.status())
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(s) = self.retry_after_s {
            builder = builder.header(header::RETRY_AFTER, s.to_string());
        }
        let mut resp = builder.body(body);
        resp.set_data(ErrorMark(self.code));
        resp
    }
}

/// `{"error": {...}}`
#[derive(Debug, Clone, Serialize, Object)]
pub struct ErrorEnvelope {
    pub error: ErrorDetail,
}

/// One error: a stable `code` to branch on and a human-readable `message`.
#[derive(Debug, Clone, Serialize, Object)]
pub struct ErrorDetail {
    /// Stable error code, e.g. `missing_file`, `invalid_audio`, `overloaded`.
    pub code: String,
    pub message: String,
    /// OpenAI-style error class: `invalid_request_error`, `rate_limit_error`, `server_error`.
    pub r#type: String,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
}

/// Every error status an endpoint of this server may answer, for the OpenAPI document.
impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        let statuses: [(u16, &'static str); 9] = [
            (400, "Bad request: `missing_file`, `invalid_audio`, `empty_audio`, `invalid_parameter`, `unsupported_temperature`"),
            (404, "`model_not_found`: the `model` field names a model this server does not serve"),
            (413, "`file_too_large` (upload over --max-upload-mb) or `audio_too_long` (over --max-audio-s)"),
            (415, "`unsupported_audio`: a container or codec the decoder does not know"),
            (408, "`upload_timeout`: the body arrived too slowly (--upload-timeout-s, --upload-idle-timeout-s)"),
            (429, "`overloaded`: too many requests or upload bytes in flight, or the queue is full; retry after `Retry-After` seconds"),
            (500, "`inference_failed`"),
            (503, "`model_loading` or `shutting_down`; retry after `Retry-After` seconds"),
            (405, "`method_not_allowed`"),
        ];
        let responses = statuses
            .into_iter()
            .map(|(status, description)| MetaResponse {
                description,
                status: Some(status),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/json",
                    schema: ErrorEnvelope::schema_ref(),
                }],
                headers: if status == 429 || status == 503 {
                    vec![MetaHeader {
                        name: "Retry-After".into(),
                        description: Some("Seconds to wait before retrying".into()),
                        required: true,
                        deprecated: false,
                        schema: u64::schema_ref(),
                    }]
                } else {
                    vec![]
                },
            })
            .collect();
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        ErrorEnvelope::register(registry);
    }
}
