//! Upload size, audio length and queue limits: refused with the right JSON error, never a
//! crash or a wedge.
mod common;
use common::*;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

fn strict() -> &'static TestServer {
    static S: std::sync::OnceLock<TestServer> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        TestServer::start(whisper_server::ServerConfig {
            max_upload_mb: 0.5,
            max_audio_s: 8.0,
            ..config()
        })
    })
}

#[tokio::test]
async fn oversize_uploads_are_refused_while_reading() {
    let s = strict();
    // jfk.flac is 1.15 MB: over the 0.5 MB limit, read and refused at the limit.
    let v = expect_error(
        post(&s.url, "/transcribe", clip("jfk.flac"), "jfk.flac", &[]).await,
        413,
        "file_too_large",
    )
    .await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("0.5 MB"),
        "{v}"
    );

    // Streamed without a Content-Length (chunked), 3 MB: cut off while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..48).map(|_| Ok(vec![7u8; 64 << 10])).collect();
    let part = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(
        futures_util::stream::iter(chunks),
    ))
    .file_name("big.wav");
    let resp = client()
        .post(format!("{}/v1/audio/transcriptions", s.url))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await;
    match resp {
        Ok(r) => {
            expect_error(r, 413, "file_too_large").await;
        }
        // The server may close the connection before the client has written everything.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }

    // A declared Content-Length far over the limit is refused before reading the body.
    let t0 = Instant::now();
    let resp = client()
        .post(format!("{}/transcribe", s.url))
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .header("content-length", "50000000")
        .body(reqwest::Body::wrap_stream(futures_util::stream::pending::<
            Result<Vec<u8>, std::io::Error>,
        >()))
        .send()
        .await
        .unwrap();
    expect_error(resp, 413, "file_too_large").await;
    assert!(t0.elapsed() < Duration::from_secs(5));

    // Still serving.
    let ok = post(&s.url, "/transcribe", libri(LIBRI_CLIPS[1]), "a.flac", &[]).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn too_long_audio_is_refused() {
    let s = strict();
    // 11 s of mp3 at 8 kHz (89 KB) is under the upload limit but over --max-audio-s 8.
    let v = expect_error(
        post(
            &s.url,
            "/v1/audio/transcriptions",
            clip("en_apollo11_nasa_8k.mp3"),
            "a.mp3",
            &[],
        )
        .await,
        413,
        "audio_too_long",
    )
    .await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("8.0 s"),
        "{v}"
    );
    let ok = post(
        &s.url,
        "/v1/audio/transcriptions",
        libri(LIBRI_CLIPS[1]),
        "b.flac",
        &[],
    )
    .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn full_queue_answers_429_with_retry_after() {
    // One slot in the queue, batches of one, one decode at a time: at most 3 admitted.
    let s = TestServer::start(whisper_server::ServerConfig {
        queue_capacity: 1,
        max_batch: 1,
        decode_concurrency: 1,
        ..config()
    });
    let url = s.url.clone();
    let audio = clip("jfk.flac");
    let t0 = Instant::now();
    let answers: Vec<(u16, Option<String>, String)> = futures_util::stream::iter(0..12)
        .map(|_| {
            let (url, audio) = (url.clone(), audio.clone());
            async move {
                let r = post(
                    &url,
                    "/v1/audio/transcriptions",
                    audio,
                    "jfk.flac",
                    &[("response_format", "text")],
                )
                .await;
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                (r.status().as_u16(), retry, r.text().await.unwrap())
            }
        })
        .buffer_unordered(12)
        .collect()
        .await;
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    let refused: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert_eq!(ok + refused.len(), 12, "{answers:?}");
    assert!(ok >= 1 && !refused.is_empty(), "{answers:?}");
    for (_, retry, body) in &refused {
        assert!(
            retry
                .as_deref()
                .is_some_and(|r| r.parse::<u64>().unwrap() >= 1),
            "Retry-After: {retry:?}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "overloaded");
    }
    for (_, _, body) in answers.iter().filter(|a| a.0 == 200) {
        assert!(normalize(body).contains("ask not what your country can do for you"));
    }
    assert!(t0.elapsed() < Duration::from_secs(120));
    // Not wedged: a later request is served.
    assert_eq!(
        post(&url, "/transcribe", libri(LIBRI_CLIPS[1]), "a.flac", &[])
            .await
            .status(),
        200
    );
    let m = client()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains(&format!(
            "whisper_errors_total{{code=\"overloaded\"}} {}",
            refused.len()
        )),
        "{m}"
    );
    assert!(m.contains("whisper_queue_depth 0"), "{m}");
    assert!(m.contains("whisper_in_flight_requests 0"), "{m}");
    s.stop();
}
