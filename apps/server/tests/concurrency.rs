//! Many clients at once: batched transcripts equal the one-at-a-time transcripts; clients
//! that give up are dropped from the queue without being decoded.
mod common;
use common::*;
use futures_util::StreamExt;
use serde_json::Value;
use std::time::{Duration, Instant};

fn clips() -> Vec<(String, Vec<u8>)> {
    let mut v = vec![("jfk.flac".to_string(), clip("jfk.flac"))];
    v.extend(
        LIBRI_CLIPS
            .iter()
            .map(|c| (c.rsplit('/').next().unwrap().to_string(), libri(c))),
    );
    v
}

/// `(endpoint, text, segments)` of one request; `/transcribe` decodes with timestamps,
/// the OpenAI `json` format without, so both batch keys are exercised.
async fn transcribe(url: &str, endpoint: &str, name: &str, bytes: Vec<u8>) -> (String, Value, u64) {
    let resp = post(url, endpoint, bytes, name, &[]).await;
    assert_eq!(resp.status(), 200, "{name} on {endpoint}");
    let v: Value = resp.json().await.unwrap();
    let batch = v["timing"]["batch_size"].as_u64().unwrap_or(0);
    (
        v["text"].as_str().unwrap().to_string(),
        v["segments"].clone(),
        batch,
    )
}

#[tokio::test]
async fn concurrent_clients_get_the_single_request_transcripts() {
    let s = TestServer::start(whisper_server::ServerConfig {
        max_batch: 8,
        max_wait_ms: 50,
        ..config()
    });
    let url = s.url.clone();
    let clips = clips();
    let endpoints = ["/transcribe", "/v1/audio/transcriptions"];

    // One at a time: every batch has one request.
    let mut single = std::collections::HashMap::new();
    for (name, bytes) in &clips {
        for ep in endpoints {
            let (text, segs, batch) = transcribe(&url, ep, name, bytes.clone()).await;
            if ep == "/transcribe" {
                assert_eq!(batch, 1);
                assert!(!segs.as_array().unwrap().is_empty());
            }
            assert!(!text.is_empty(), "{name}");
            single.insert((name.clone(), ep), (text, segs));
        }
    }

    // 16 clients, 3 requests each, mixed clips and endpoints.
    let t0 = Instant::now();
    let total = 48;
    let results: Vec<(usize, &str, String, Value, u64)> = futures_util::stream::iter(0..total)
        .map(|i| {
            let (name, bytes) = clips[i % clips.len()].clone();
            let ep = endpoints[(i / clips.len()) % 2];
            let url = url.clone();
            async move {
                let (text, segs, batch) = transcribe(&url, ep, &name, bytes).await;
                (i, ep, text, segs, batch)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let elapsed = t0.elapsed();
    assert_eq!(results.len(), total);
    for (i, ep, text, segs, _) in &results {
        let name = &clips[i % clips.len()].0;
        let (t1, s1) = &single[&(name.clone(), *ep)];
        assert_eq!(
            text, t1,
            "request {i} ({name} on {ep}) differs from its single-request transcript"
        );
        if *ep == "/transcribe" {
            assert_eq!(segs, s1, "segments of request {i} ({name})");
        }
    }
    let max_batch = results.iter().map(|r| r.4).max().unwrap();
    assert!(max_batch > 1, "16 concurrent clients were never batched");
    assert!(max_batch <= 8);
    assert!(elapsed < Duration::from_secs(400), "{elapsed:?}");

    let m = client()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let batches = m
        .lines()
        .find(|l| l.starts_with("whisper_batch_size_count"))
        .unwrap();
    let n: f64 = batches.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        n < (total + 2 * clips.len()) as f64,
        "fewer batches than requests: {batches}"
    );
    s.stop();
}

#[tokio::test]
async fn clients_that_leave_are_dropped_from_the_queue() {
    let s = TestServer::start(whisper_server::ServerConfig {
        max_batch: 1,
        max_wait_ms: 0,
        ..config()
    });
    let url = s.url.clone();
    let metric = |m: &str, name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // A request that keeps the inference thread busy...
    let busy = {
        let url = url.clone();
        tokio::spawn(async move {
            post(
                &url,
                "/transcribe",
                clip("en_librivox_sonnet_p001.mp3"),
                "sonnet.mp3",
                &[],
            )
            .await
            .status()
            .as_u16()
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    // ...and clients that give up while queued behind it.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let gave_up = futures_util::future::join_all((0..4).map(|_| {
        impatient
            .post(format!("{url}/transcribe"))
            .multipart(form("file", libri(LIBRI_CLIPS[0]), "a.flac", &[]))
            .send()
    }))
    .await;
    for r in gave_up {
        assert!(r.is_err() || r.unwrap().status() == 200);
    }
    assert_eq!(busy.await.unwrap(), 200);
    // Let the queue settle, then count.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = client()
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let (cancelled, done, depth) = (
            metric(&m, "whisper_cancelled_requests_total"),
            metric(&m, "whisper_transcriptions_total"),
            metric(&m, "whisper_queue_depth"),
        );
        if depth == 0.0 && cancelled + done >= 5.0 {
            assert!(
                cancelled >= 1.0,
                "no request was dropped: cancelled {cancelled}, transcribed {done}"
            );
            assert!(done < 5.0, "requests of clients that left were decoded");
            break;
        }
        assert!(Instant::now() < deadline, "queue never settled:\n{m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        post(&url, "/transcribe", libri(LIBRI_CLIPS[1]), "b.flac", &[])
            .await
            .status(),
        200
    );
    s.stop();
}
