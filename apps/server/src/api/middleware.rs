//! Outermost layer: turns every error (ours, the router's, poem's) into the JSON error
//! format and records request metrics.
use crate::errors::{ApiError, ErrorCode, ErrorMark};
use crate::metrics::{endpoint_label, Metrics};
use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};
use std::sync::Arc;
use std::time::Instant;

/// Converts a poem error into our JSON error answer.
pub fn error_response(err: poem::Error) -> Response {
    if let Some(api) = err.downcast_ref::<ApiError>() {
        return api.as_response();
    }
    let status = err.status();
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::FileTooLarge,
        s if s.is_client_error() => ErrorCode::InvalidRequest,
        _ => ErrorCode::Internal,
    };
    let message = match code {
        ErrorCode::NotFound => "no such endpoint; see /docs".to_string(),
        _ => err.to_string(),
    };
    ApiError::new(code, message).as_response()
}

/// Answers every request with either the endpoint's answer or a JSON error, and counts it.
pub async fn observe<E: Endpoint>(
    ep: Arc<E>,
    metrics: Arc<Metrics>,
    req: Request,
) -> poem::Result<Response> {
    let start = Instant::now();
    let endpoint = endpoint_label(req.uri().path());
    let method = req.method().clone();
    let mut resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => error_response(e),
    };
    // Errors rendered elsewhere (e.g. a caught panic) still get the JSON format.
    if !resp.is_success() && resp.data::<ErrorMark>().is_none() {
        let status = resp.status();
        let code = match status {
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            s if s.is_client_error() => ErrorCode::InvalidRequest,
            s if s.is_server_error() && s != StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Internal,
            _ => return Ok(finish(resp, &metrics, endpoint, start)),
        };
        let body = resp.take_body().into_string().await.unwrap_or_default();
        let message = if body.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            body
        };
        resp = ApiError::new(code, message).as_response();
    }
    let resp = finish(resp, &metrics, endpoint, start);
    let status = resp.status().as_u16();
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if matches!(
        endpoint,
        "/transcribe" | "/v1/audio/transcriptions" | "/v1/audio/translations"
    ) || status >= 500
    {
        match resp.data::<ErrorMark>() {
            Some(m) => tracing::info!("{method} {endpoint} {status} {} {ms:.0} ms", m.0),
            None => tracing::info!("{method} {endpoint} {status} {ms:.0} ms"),
        }
    } else {
        tracing::debug!("{method} {endpoint} {status} {ms:.0} ms");
    }
    Ok(resp)
}

fn finish(resp: Response, metrics: &Metrics, endpoint: &'static str, start: Instant) -> Response {
    let code = resp.data::<ErrorMark>().map(|m| m.0);
    metrics.record_request(
        endpoint,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
        code,
    );
    resp
}
