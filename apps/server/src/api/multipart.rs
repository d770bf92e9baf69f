//! Reading `multipart/form-data` uploads with bounded memory.
//!
//! The request is admitted first (a bounded number of uploads at once), a `Content-Length`
//! far over the limit is refused before anything is read, and while reading, the `file`
//! field is cut off at `--max-upload-mb` (the rest of an oversize field is read and thrown
//! away, up to a bound, so that the client gets its 413 answer). Text fields are small and
//! few. Nothing is buffered beyond these limits.
use crate::errors::{ApiError, ErrorCode};
use crate::state::{AppState, InFlight};
use poem::web::Multipart;
use poem::{Body, Request, RequestBody};
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
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
/// Longest time reading one upload may take.
const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest time spent throwing away the rest of an oversize file.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The uploaded file.
#[derive(Debug)]
pub struct UploadedFile {
    pub bytes: Vec<u8>,
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

impl UploadedFile {
    /// The file name's extension, a hint for the audio probe.
    pub fn extension(&self) -> Option<String> {
        let name = self.filename.as_deref()?;
        let ext = std::path::Path::new(name).extension()?.to_str()?;
        Some(ext.to_ascii_lowercase())
    }
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
    let in_flight = match admit(state, request) {
        Ok(f) => f,
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
    let tripped = Arc::new(AtomicBool::new(false));
    let capped = CappedReader {
        inner: Box::pin(raw.into_async_read()),
        remaining: cap,
        tripped: tripped.clone(),
    };
    let mut capped_body = RequestBody::new(Body::from_async_read(capped));
    let mut multipart = <Multipart as poem::FromRequest>::from_request(request, &mut capped_body)
        .await
        .map_err(|e| ApiError::missing_file(format!("could not read the multipart form: {e}")))?;
    let read = async {
        let mut file = None;
        let mut fields = Vec::new();
        let mut other_files = Vec::new();
        let mut parts = 0usize;
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) if tripped.load(Ordering::Relaxed) => {
                    let _ = e;
                    return Err(too_large(limit));
                }
                Err(e) => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        format!("malformed multipart body: {e}"),
                    ))
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
                let bytes = match read_limited(field.into_async_read(), limit).await {
                    Ok(Some(b)) => b,
                    Ok(None) => return Err(too_large(limit)),
                    Err(_) if tripped.load(Ordering::Relaxed) => return Err(too_large(limit)),
                    Err(e) => {
                        return Err(ApiError::new(
                            ErrorCode::InvalidRequest,
                            format!("reading the upload failed: {e}"),
                        ))
                    }
                };
                file = Some(UploadedFile {
                    bytes,
                    filename,
                    content_type,
                });
            } else if field.file_name().is_some() {
                // A file under another name: skipped (read and dropped), named in the error.
                match read_limited(field.into_async_read(), 0).await {
                    Err(_) if tripped.load(Ordering::Relaxed) => return Err(too_large(limit)),
                    Err(e) => {
                        return Err(ApiError::new(
                            ErrorCode::InvalidRequest,
                            format!("reading the form failed: {e}"),
                        ))
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
                    Err(_) if tripped.load(Ordering::Relaxed) => return Err(too_large(limit)),
                    Err(e) => {
                        return Err(ApiError::new(
                            ErrorCode::InvalidRequest,
                            format!("reading the form failed: {e}"),
                        ))
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
    let (file, fields, other_files) =
        tokio::time::timeout(READ_TIMEOUT, read)
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    "reading the upload took too long",
                )
            })??;
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
    let mut buf = Vec::new();
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

/// Fails the body with an error once more than `remaining` bytes were read.
struct CappedReader {
    inner: Pin<Box<dyn AsyncRead + Send>>,
    remaining: usize,
    tripped: Arc<AtomicBool>,
}

impl AsyncRead for CappedReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = self.inner.as_mut().poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            let n = buf.filled().len() - before;
            if n > self.remaining {
                self.tripped.store(true, Ordering::Relaxed);
                return Poll::Ready(Err(io::Error::other("request body over the size limit")));
            }
            self.remaining -= n;
        }
        poll
    }
}
