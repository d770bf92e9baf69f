//! Both transcription endpoints, every response format, the bad-input table, health,
//! metrics and the OpenAPI document, against one in-process server with `tiny.en`.
mod common;
use common::*;
use serde_json::Value;

const JFK_WORDS: &str =
    "ask not what your country can do for you ask what you can do for your country";

#[tokio::test]
async fn transcribe_returns_text_segments_timings_and_stats() {
    let s = shared();
    let resp = post(&s.url, "/transcribe", clip("jfk.flac"), "jfk.flac", &[]).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(
        normalize(v["text"].as_str().unwrap()).contains(JFK_WORDS),
        "{v}"
    );
    assert_eq!(v["language"], "en");
    let d = v["duration_s"].as_f64().unwrap();
    assert!((d - 11.0).abs() < 0.2, "duration {d}");
    let segs = v["segments"].as_array().unwrap();
    assert!(!segs.is_empty());
    for seg in segs {
        let (a, b) = (seg["start"].as_f64().unwrap(), seg["end"].as_f64().unwrap());
        assert!(a <= b && b <= 11.5, "{seg}");
        assert!(seg["text"].is_string());
    }
    for k in [
        "audio_decode_s",
        "queue_s",
        "encode_s",
        "decode_s",
        "inference_s",
        "total_s",
    ] {
        assert!(
            v["timing"][k].as_f64().is_some_and(|x| x >= 0.0),
            "timing.{k}: {v}"
        );
    }
    assert!(v["timing"]["batch_size"].as_u64().unwrap() >= 1);
    for k in ["drafted", "accepted", "main_passes", "tokens"] {
        assert!(
            v["speculative"][k].as_u64().is_some(),
            "speculative.{k}: {v}"
        );
    }
    assert!(v["speculative"]["acceptance_rate"].as_f64().is_some());
    assert_eq!(v["speculative"]["draft"], "none");
    assert_eq!(v["model"], "tiny.en");
}

#[tokio::test]
async fn transcribe_without_timestamps_and_with_prompt() {
    let s = shared();
    let resp = post(
        &s.url,
        "/transcribe",
        clip("jfk.flac"),
        "jfk.flac",
        &[
            ("timestamps", "false"),
            ("prompt", "JFK inaugural address."),
            ("language", "en"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(
        normalize(v["text"].as_str().unwrap()).contains("ask not what your country"),
        "{v}"
    );
    let bad = post(
        &s.url,
        "/transcribe",
        clip("jfk.flac"),
        "jfk.flac",
        &[("timestamps", "maybe")],
    )
    .await;
    expect_error(bad, 400, "invalid_parameter").await;
    let bad = post(
        &s.url,
        "/transcribe",
        clip("jfk.flac"),
        "jfk.flac",
        &[("task", "summarize")],
    )
    .await;
    expect_error(bad, 400, "invalid_parameter").await;
}

#[tokio::test]
async fn openai_every_response_format() {
    let s = shared();
    let url = &s.url;
    let path = "/v1/audio/transcriptions";

    // json (the default) -> {"text"}
    let resp = post(
        url,
        path,
        clip("jfk.flac"),
        "jfk.flac",
        &[("model", "whisper-1")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1, "only `text`: {v}");
    let text = v["text"].as_str().unwrap().to_string();
    assert!(normalize(&text).contains(JFK_WORDS), "{text}");

    let resp = post(
        url,
        path,
        clip("jfk.flac"),
        "jfk.flac",
        &[("model", "whisper-1"), ("response_format", "json")],
    )
    .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["text"], text.as_str());

    // text
    let resp = post(
        url,
        path,
        clip("jfk.flac"),
        "jfk.flac",
        &[("response_format", "text")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(resp.text().await.unwrap(), format!("{text}\n"));

    // srt
    let resp = post(
        url,
        path,
        clip("jfk.flac"),
        "jfk.flac",
        &[("response_format", "srt"), ("model", "tiny.en")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let srt = resp.text().await.unwrap();
    assert!(srt.starts_with("1\n00:00:00,000 --> 00:00:"), "{srt}");
    assert!(
        normalize(&srt).contains("ask not what your country"),
        "{srt}"
    );
    let cues = srt.trim_end().split("\n\n").count();
    for (i, cue) in srt.trim_end().split("\n\n").enumerate() {
        let lines: Vec<&str> = cue.lines().collect();
        assert_eq!(lines[0], (i + 1).to_string(), "{srt}");
        assert!(
            lines[1].len() == 29 && lines[1].contains(" --> ") && lines[1].contains(','),
            "{srt}"
        );
    }

    // vtt
    let resp = post(
        url,
        path,
        clip("jfk.flac"),
        "jfk.flac",
        &[("response_format", "vtt"), ("model", "")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/vtt"));
    let vtt = resp.text().await.unwrap();
    assert!(
        vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:"),
        "{vtt}"
    );
    assert_eq!(
        vtt.trim_end().split("\n\n").count(),
        cues + 1,
        "same cues as srt: {vtt}"
    );

    // verbose_json
    let resp = post(
        url,
        path,
        clip("jfk.flac"),
        "jfk.flac",
        &[
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "segment"),
            ("temperature", "0"),
            ("language", "en"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["task"], "transcribe");
    assert_eq!(v["language"], "english");
    assert!((v["duration"].as_f64().unwrap() - 11.0).abs() < 0.2);
    assert!(normalize(v["text"].as_str().unwrap()).contains(JFK_WORDS));
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), cues);
    for (i, seg) in segs.iter().enumerate() {
        assert_eq!(seg["id"], i as u64);
        for k in [
            "seek",
            "start",
            "end",
            "temperature",
            "avg_logprob",
            "compression_ratio",
            "no_speech_prob",
        ] {
            assert!(seg[k].is_number(), "segment {k}: {seg}");
        }
        assert!(seg["text"].is_string());
        assert!(!seg["tokens"].as_array().unwrap().is_empty());
        assert!(seg["compression_ratio"].as_f64().unwrap() > 0.0);
    }

    // Sampling: temperature and seed are honoured, and the same seed gives the same text.
    let sampled = || async {
        let form = [
            ("response_format", "verbose_json"),
            ("temperature", "0.5"),
            ("seed", "11"),
            ("language", "en"),
        ];
        let resp = post(url, path, clip("jfk.flac"), "jfk.flac", &form).await;
        assert_eq!(resp.status(), 200);
        resp.json::<Value>().await.unwrap()
    };
    let (a, b) = (sampled().await, sampled().await);
    assert_eq!(a["text"], b["text"], "same seed, different text");
    assert!(
        a["segments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["temperature"].as_f64() == Some(0.5)),
        "{a}"
    );
}

#[tokio::test]
async fn translations_endpoint_validates_and_needs_a_multilingual_model() {
    let s = shared();
    let path = "/v1/audio/translations";
    let resp = post(
        &s.url,
        path,
        clip("jfk.flac"),
        "jfk.flac",
        &[("model", "whisper-1")],
    )
    .await;
    let v = expect_error(resp, 400, "invalid_parameter").await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("English-only"),
        "{v}"
    );
    expect_error(
        post(
            &s.url,
            path,
            clip("jfk.flac"),
            "jfk.flac",
            &[("model", "whisper-9")],
        )
        .await,
        404,
        "model_not_found",
    )
    .await;
    expect_error(
        post(
            &s.url,
            path,
            clip("jfk.flac"),
            "jfk.flac",
            &[("response_format", "xml")],
        )
        .await,
        400,
        "invalid_parameter",
    )
    .await;
}

#[tokio::test]
async fn bad_input_table() {
    let s = shared();
    let url = &s.url;
    let t = "/v1/audio/transcriptions";

    // Random bytes: not audio.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..50_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let resp = post(url, t, noise, "noise.bin", &[]).await;
    let st = resp.status().as_u16();
    assert!(st == 400 || st == 415, "random bytes: {st}");
    expect_error(
        resp,
        st,
        if st == 415 {
            "unsupported_audio"
        } else {
            "invalid_audio"
        },
    )
    .await;

    // Truncated FLAC header: undecodable.
    let flac = clip("jfk.flac");
    let resp = post(url, t, flac[..100].to_vec(), "cut.flac", &[]).await;
    let st = resp.status().as_u16();
    assert!(st == 400 || st == 415, "truncated header: {st}");
    // A FLAC cut mid-stream decodes what is there (or is refused), never a 5xx.
    let resp = post(url, t, flac[..flac.len() / 3].to_vec(), "half.flac", &[]).await;
    let st = resp.status().as_u16();
    assert!(
        st == 200 || st == 400,
        "truncated flac: {st} {}",
        resp.text().await.unwrap()
    );

    // Zero-length file and a WAV with no samples.
    expect_error(
        post(url, t, Vec::new(), "empty.wav", &[]).await,
        400,
        "empty_audio",
    )
    .await;
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&36u32.to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&0u32.to_le_bytes());
    let resp = post(url, t, wav, "zero.wav", &[]).await;
    let st = resp.status().as_u16();
    assert!(st == 400, "zero-sample wav: {st}");
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["code"] == "empty_audio" || v["error"]["code"] == "invalid_audio",
        "{v}"
    );

    // 8 kHz MP3 decodes fine.
    let resp = post(url, t, clip("en_apollo11_nasa_8k.mp3"), "apollo.mp3", &[]).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(v["text"].as_str().unwrap().len() > 5, "{v}");

    // Missing or misnamed file field; not multipart at all.
    let resp = client()
        .post(format!("{url}{t}"))
        .multipart(form(
            "audio",
            clip("jfk.flac"),
            "jfk.flac",
            &[("model", "whisper-1")],
        ))
        .send()
        .await
        .unwrap();
    let v = expect_error(resp, 400, "missing_file").await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("audio"),
        "names the fields sent: {v}"
    );
    let resp = client()
        .post(format!("{url}/transcribe"))
        .multipart(reqwest::multipart::Form::new().text("model", "whisper-1"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "missing_file").await;
    let resp = client()
        .post(format!("{url}/transcribe"))
        .json(&serde_json::json!({"file": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "missing_file").await;
    let resp = client()
        .post(format!("{url}/transcribe"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "missing_file").await;

    // Unknown model, bad parameters.
    expect_error(
        post(
            url,
            t,
            clip("jfk.flac"),
            "jfk.flac",
            &[("model", "gpt-4o-transcribe")],
        )
        .await,
        404,
        "model_not_found",
    )
    .await;
    expect_error(
        post(
            url,
            t,
            clip("jfk.flac"),
            "jfk.flac",
            &[("response_format", "docx")],
        )
        .await,
        400,
        "invalid_parameter",
    )
    .await;
    let v = expect_error(
        post(
            url,
            t,
            clip("jfk.flac"),
            "jfk.flac",
            &[("temperature", "1.7")],
        )
        .await,
        400,
        "unsupported_temperature",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("out of range"),
        "{v}"
    );
    expect_error(
        post(
            url,
            t,
            clip("jfk.flac"),
            "jfk.flac",
            &[("temperature", "0.5"), ("seed", "-3")],
        )
        .await,
        400,
        "invalid_parameter",
    )
    .await;
    expect_error(
        post(
            url,
            t,
            clip("jfk.flac"),
            "jfk.flac",
            &[("temperature", "warm")],
        )
        .await,
        400,
        "invalid_parameter",
    )
    .await;
    expect_error(
        post(url, t, clip("jfk.flac"), "jfk.flac", &[("language", "de")]).await,
        400,
        "invalid_parameter",
    )
    .await;
    expect_error(
        post(
            url,
            t,
            clip("jfk.flac"),
            "jfk.flac",
            &[("language", "klingon")],
        )
        .await,
        400,
        "invalid_parameter",
    )
    .await;
    expect_error(
        post(
            url,
            t,
            clip("jfk.flac"),
            "jfk.flac",
            &[("timestamp_granularities[]", "word")],
        )
        .await,
        400,
        "invalid_parameter",
    )
    .await;

    // Routing errors are JSON too.
    expect_error(
        client().get(format!("{url}/nope")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        client()
            .get(format!("{url}/transcribe"))
            .send()
            .await
            .unwrap(),
        405,
        "method_not_allowed",
    )
    .await;

    // And the server still works.
    let resp = post(
        url,
        t,
        clip("jfk.flac"),
        "jfk.flac",
        &[("response_format", "text")],
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn health_models_openapi_and_docs() {
    let s = shared();
    let resp = client()
        .get(format!("{}/health", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["model"], "tiny.en");
    assert_eq!(v["multilingual"], false);

    let v: Value = client()
        .get(format!("{}/v1/models", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][0]["id"], "tiny.en");

    let resp = client()
        .get(format!("{}/openapi.json", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let spec: Value = resp.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/transcribe", "post"),
        ("/v1/audio/transcriptions", "post"),
        ("/v1/audio/translations", "post"),
        ("/health", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            spec["paths"][path][method].is_object(),
            "{path} {method} missing from the spec"
        );
    }
    let op = &spec["paths"]["/v1/audio/transcriptions"]["post"];
    assert!(
        op["requestBody"]["content"]["multipart/form-data"].is_object(),
        "{op}"
    );
    for status in ["200", "400", "404", "413", "415", "429", "500"] {
        assert!(
            op["responses"][status].is_object(),
            "response {status} missing: {op}"
        );
    }
    let text = spec.to_string();
    for field in [
        "response_format",
        "timestamp_granularities[]",
        "ErrorEnvelope",
        "TranscribeResponse",
        "VerboseTranscription",
    ] {
        assert!(text.contains(field), "{field} missing from the spec");
    }

    let resp = client()
        .get(format!("{}/docs", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("swagger") || html.contains("Swagger"));
    assert!(
        html.contains("/v1/audio/transcriptions"),
        "the docs page embeds the spec"
    );
}

#[tokio::test]
async fn metrics_count_requests_errors_batches_and_audio() {
    let s = shared();
    assert_eq!(
        post(&s.url, "/transcribe", clip("jfk.flac"), "jfk.flac", &[])
            .await
            .status(),
        200
    );
    expect_error(
        post(&s.url, "/transcribe", Vec::new(), "x.wav", &[]).await,
        400,
        "empty_audio",
    )
    .await;
    let resp = client()
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let m = resp.text().await.unwrap();
    let value = |name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("{name} missing in\n{m}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(value("whisper_requests_total{endpoint=\"/transcribe\",status=\"200\"}") >= 1.0);
    assert!(value("whisper_errors_total{code=\"empty_audio\"}") >= 1.0);
    assert!(value("whisper_audio_seconds_total") >= 10.9);
    assert!(value("whisper_batch_size_count") >= 1.0);
    assert!(value("whisper_request_duration_seconds_count{endpoint=\"/transcribe\"}") >= 2.0);
    assert!(value("whisper_queue_wait_seconds_count") >= 1.0);
    assert_eq!(value("whisper_model_loaded"), 1.0);
    assert_eq!(value("whisper_queue_capacity"), 64.0);
    for family in [
        "whisper_queue_depth",
        "whisper_speculative_drafted_tokens_total",
        "whisper_speculative_accepted_tokens_total",
        "whisper_speculative_acceptance_rate",
        "whisper_inference_duration_seconds_bucket",
        "# TYPE whisper_batch_size histogram",
    ] {
        assert!(m.contains(family), "{family} missing");
    }
}
