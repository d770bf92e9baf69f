//! Reading `multipart/form-data` uploads with bounded memory.
//!
//! The request is admitted first: a bounded number of requests at once, and a reservation
//! of the upload budget for the body (its `Content-Length`, or `--max-upload-mb` when the
//! body is chunked); a request that does not fit is answered 429 before its body is read.
//! A `Content-Length` far over the limit is refused at once. While reading, the `file` field
//! is cut off at the smaller of `--max-upload-mb` and the reservation (the rest of an
//! oversize field is read and thrown away, up to a bound, so that the client gets its 413
//! answer), into a buffer allocated once. A body that pauses longer than
//! `--upload-idle-timeout-s`, or takes longer than `--upload-timeout-s`, is answered 408.
//! Text fields are small and few. Nothing is buffered beyond these limits.
use crate::errors::{ApiError, ErrorCode};
use crate::memory::Reservation;
use crate::state::{AppState, InFlight};
use poem::web::Multipart;
use poem::{Body, Request, RequestBody};
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// Allowance for boundaries, part headers and text fields on top of the file limit.
const FORM_OVERHEAD_BYTES: usize = 1 << 20;
/// Largest text field.
const MAX_TEXT_FIELD_BYTES: usize = 64 << 10;
/// Most parts in one form.
const MAX_FIELDS: usize = 32;
/// Longest time spent throwing away the rest of an oversize file.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The uploaded file.
#[derive(Debug)]
pub struct UploadedFile {
    pub bytes: Vec<u8>,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// The body's share of the upload budget; the decoded audio takes it over.
    pub memory: Reservation,
}

/// A parsed form: the file, the text fields in order, and the admission of the request.
pub struct ParsedForm {
    pub file: Option<UploadedFile>,
    pub fields: Vec<(String, String)>,
    /// Names of file parts other than `file` (ignored).
    pub other_files: Vec<String>,
    /// The client's address (to notice it leaving).
    pub peer: Option<std::net::SocketAddr>,
    pub in_flight: InFlight,
}

impl ParsedForm {
    /// The last value of a text field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a (repeatable) field.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The file, or 400 `missing_file` naming the fields that were sent.
    pub fn take_file(&mut self) -> Result<UploadedFile, ApiError> {
        self.file.take().ok_or_else(|| {
            let names: Vec<&str> = self
                .other_files
                .iter()
                .map(String::as_str)
                .chain(self.fields.iter().map(|(n, _)| n.as_str()))
                .collect();
            let got = if names.is_empty() {
                "no fields".to_string()
            } else {
                format!("fields: {}", names.join(", "))
            };
            ApiError::missing_file(format!(
                "the form has no `file` field ({got}); send the audio as multipart field `file`"
            ))
        })
    }
}

/// A multipart upload whose OpenAPI schema is `D` (a `#[derive(Multipart)]` struct used
/// only for documentation) and whose parsing is done here, with limits. Parsing never
/// fails the extraction: the handler gets the error and answers it.
pub struct UploadForm<D> {
    pub form: Result<ParsedForm, ApiError>,
    _doc: PhantomData<fn() -> D>,
}

impl<'a, D: Payload> ApiExtractor<'a> for UploadForm<D> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        D::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "multipart/form-data",
                schema: D::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let form = match request.data::<Arc<AppState>>() {
            Some(state) => parse(state, request, body).await,
            None => Err(ApiError::new(ErrorCode::Internal, "server state missing")),
        };
        Ok(Self {
            form,
            _doc: PhantomData,
        })
    }
}

fn upload_timeout(state: &AppState) -> ApiError {
    ApiError::new(
        ErrorCode::UploadTimeout,
        format!(
            "the upload arrived too slowly: a body must arrive within {} s, with no pause \
             longer than {} s",
            state.config.upload_timeout_s, state.config.upload_idle_timeout_s
        ),
    )
}

/// What stopped the body, when the capped reader stopped it.
#[derive(Debug, Clone, Default)]
struct BodyWatch {
    over_size: Arc<AtomicBool>,
    idle: Arc<AtomicBool>,
}

impl BodyWatch {
    /// The answer for a failed read: 413 or 408 when the reader stopped the body, else
    /// `other`.
    fn error(&self, limit: usize, state: &AppState, other: impl FnOnce() -> ApiError) -> ApiError {
        if self.over_size.load(Ordering::Relaxed) {
            too_large(limit)
        } else if self.idle.load(Ordering::Relaxed) {
            upload_timeout(state)
        } else {
            other()
        }
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::FileTooLarge,
        format!(
            "the upload is larger than this server's limit of {:.1} MB",
            limit as f64 / 1e6
        ),
    )
    .with_param("file")
}

async fn parse(
    state: &AppState,
    request: &Request,
    body: &mut RequestBody,
) -> Result<ParsedForm, ApiError> {
    let limit = state.config.max_upload_bytes();
    // Reading continues past the limit only to drain the rest of an oversize file.
    let cap = limit.saturating_mul(2).saturating_add(FORM_OVERHEAD_BYTES);
    let declared = request
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(too_large(limit));
    }
    let most_read = limit + FORM_OVERHEAD_BYTES;
    let reserve_bytes = declared.map_or(most_read, |n| (n as usize).min(most_read));
    let admitted =
        admit(state, request).and_then(|in_flight| Ok((in_flight, state.reserve(reserve_bytes)?)));
    let (in_flight, memory) = match admitted {
        Ok(a) => a,
        Err(e) => {
            // Refused before reading: read and drop the body (bounded) so that the client,
            // still sending, gets the answer rather than a broken pipe.
            if !request
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            {
                if let Ok(raw) = body.take() {
                    discard(raw, cap).await;
                }
            }
            return Err(e);
        }
    };
    let raw = body
        .take()
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.to_string()))?;
    // The file never grows past its reservation (a declared length bounds the body).
    let file_limit = limit.min(reserve_bytes);
    let watch = BodyWatch::default();
    let idle_timeout = state.config.upload_idle_timeout();
    let capped = CappedReader {
        inner: Box::pin(raw.into_async_read()),
        remaining: cap,
        watch: watch.clone(),
        idle_timeout,
        idle: Box::pin(tokio::time::sleep(idle_timeout)),
    };
    let mut capped_body = RequestBody::new(Body::from_async_read(capped));
    let mut multipart = <Multipart as poem::FromRequest>::from_request(request, &mut capped_body)
        .await
        .map_err(|e| ApiError::missing_file(format!("could not read the multipart form: {e}")))?;
    let mut memory = Some(memory);
    let read = async {
        let mut file = None;
        let mut fields = Vec::new();
        let mut other_files = Vec::new();
        let mut parts = 0usize;
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    return Err(watch.error(limit, state, || {
                        ApiError::new(
                            ErrorCode::InvalidRequest,
                            format!("malformed multipart body: {e}"),
                        )
                    }))
                }
            };
            parts += 1;
            if parts > MAX_FIELDS {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("the form has more than {MAX_FIELDS} parts"),
                ));
            }
            let name = field.name().unwrap_or("").to_string();
            if name == "file" {
                if file.is_some() {
                    return Err(ApiError::invalid_parameter(
                        "file",
                        "the form has more than one `file` field",
                    ));
                }
                let filename = field.file_name().map(str::to_string);
                let content_type = field.content_type().map(str::to_string);
                let bytes = match read_limited(field.into_async_read(), file_limit).await {
                    Ok(Some(b)) => b,
                    Ok(None) => return Err(too_large(limit)),
                    Err(e) => {
                        return Err(watch.error(limit, state, || {
                            ApiError::new(
                                ErrorCode::InvalidRequest,
                                format!("reading the upload failed: {e}"),
                            )
                        }))
                    }
                };
                let Some(memory) = memory.take() else {
                    return Err(ApiError::new(
                        ErrorCode::Internal,
                        "upload reservation lost",
                    ));
                };
                file = Some(UploadedFile {
                    bytes,
                    filename,
                    content_type,
                    memory,
                });
            } else if field.file_name().is_some() {
                // A file under another name: skipped (read and dropped), named in the error.
                match read_limited(field.into_async_read(), 0).await {
                    Err(e) => {
                        return Err(watch.error(limit, state, || {
                            ApiError::new(
                                ErrorCode::InvalidRequest,
                                format!("reading the form failed: {e}"),
                            )
                        }))
                    }
                    Ok(_) => other_files.push(name),
                }
            } else {
                let bytes = match read_limited(field.into_async_read(), MAX_TEXT_FIELD_BYTES).await
                {
                    Ok(Some(b)) => b,
                    Ok(None) => {
                        return Err(ApiError::invalid_parameter(
                            name.clone(),
                            format!("field `{name}` is longer than {MAX_TEXT_FIELD_BYTES} bytes"),
                        ))
                    }
                    Err(e) => {
                        return Err(watch.error(limit, state, || {
                            ApiError::new(
                                ErrorCode::InvalidRequest,
                                format!("reading the form failed: {e}"),
                            )
                        }))
                    }
                };
                let text = String::from_utf8(bytes).map_err(|_| {
                    ApiError::invalid_parameter(
                        name.clone(),
                        format!("field `{name}` is not UTF-8 text"),
                    )
                })?;
                fields.push((name, text));
            }
        }
        Ok((file, fields, other_files))
    };
    let (file, fields, other_files) = tokio::time::timeout(state.config.upload_timeout(), read)
        .await
        .map_err(|_| upload_timeout(state))??;
    let peer = request.remote_addr().as_socket_addr().copied();
    Ok(ParsedForm {
        file,
        fields,
        other_files,
        peer,
        in_flight,
    })
}

/// The checks made before reading the body: model ready, room for one more request,
/// a multipart body.
fn admit(state: &AppState, request: &Request) -> Result<InFlight, ApiError> {
    state.ready_model()?;
    let in_flight = state.admit()?;
    let is_multipart = request
        .content_type()
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("multipart/form-data")
        })
        .unwrap_or(false);
    if !is_multipart {
        return Err(ApiError::missing_file(format!(
            "expected a multipart/form-data body with the audio in field `file` (got content type `{}`)",
            request.content_type().unwrap_or("none")
        )));
    }
    Ok(in_flight)
}

/// Reads and drops at most `cap` bytes of a body, for at most [`DRAIN_TIMEOUT`].
async fn discard(body: Body, cap: usize) {
    let reader = body.into_async_read();
    tokio::pin!(reader);
    let mut chunk = vec![0u8; 16 << 10];
    let mut total = 0usize;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while total <= cap {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

/// Reads at most `limit` bytes; `Ok(None)` when there is more, after reading and discarding
/// the rest (bounded in time, and in size by the body cap) so the client can read our answer.
async fn read_limited(reader: impl AsyncRead + Send, limit: usize) -> io::Result<Option<Vec<u8>>> {
    tokio::pin!(reader);
    // Allocated once at the limit: pages are only resident once written, and a growing
    // vector would briefly hold twice its size while it moves.
    let mut buf = Vec::with_capacity(limit);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Some(buf));
        }
        if buf.len() + n > limit {
            drop(buf);
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
                while reader
                    .read(&mut chunk)
                    .await
                    .map(|n| n > 0)
                    .unwrap_or(false)
                {}
            })
            .await;
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Fails the body with an error once more than `remaining` bytes were read, or when no
/// byte arrives for `idle_timeout`.
struct CappedReader {
    inner: Pin<Box<dyn AsyncRead + Send>>,
    remaining: usize,
    watch: BodyWatch,
    idle_timeout: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl AsyncRead for CappedReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = self.inner.as_mut().poll_read(cx, buf);
        match &poll {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n > self.remaining {
                    self.watch.over_size.store(true, Ordering::Relaxed);
                    return Poll::Ready(Err(io::Error::other("request body over the size limit")));
                }
                self.remaining -= n;
                let deadline = tokio::time::Instant::now() + self.idle_timeout;
                self.idle.as_mut().reset(deadline);
            }
            Poll::Pending if self.idle.as_mut().poll(cx).is_ready() => {
                self.watch.idle.store(true, Ordering::Relaxed);
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no body bytes within the idle timeout",
                )));
            }
            _ => {}
        }
        poll
    }
}
