//! Start-up and graceful shutdown: `/health` is 503 until the model is loaded; on shutdown
//! (in-process, and SIGTERM to the binary) in-flight and queued requests are answered
//! before the server exits.
mod common;
use common::*;
use futures_util::future::join_all;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn wait_in_flight(url: &str, n: u64) {
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
        let v: f64 = m
            .lines()
            .find(|l| l.starts_with("whisper_in_flight_requests "))
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        if v >= n as f64 {
            return;
        }
        assert!(Instant::now() < deadline, "requests never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_until_loaded_then_shutdown_finishes_queued_work() {
    let cfg = whisper_server::ServerConfig {
        max_batch: 1,
        ..config()
    };
    let handle =
        whisper_server::start::<whisper_burn::backend::CpuBackend>(cfg, Default::default())
            .await
            .unwrap();
    let url = handle.url();
    // Loading tiny.en and its warm-up take far longer than a loopback request.
    let resp = client().get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "loading");
    let early = post(&url, "/transcribe", clip("jfk.flac"), "jfk.flac", &[]).await;
    assert!(early.headers().contains_key("retry-after"));
    expect_error(early, 503, "model_loading").await;
    handle.wait_ready().await.unwrap();
    assert_eq!(
        client()
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Three requests: one decoding, two queued (batches of one) when shutdown starts.
    let requests: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let r = post(
                    &url,
                    "/v1/audio/transcriptions",
                    clip("jfk.flac"),
                    "jfk.flac",
                    &[("response_format", "text")],
                )
                .await;
                (r.status().as_u16(), r.text().await.unwrap())
            })
        })
        .collect();
    wait_in_flight(&url, 3).await;
    let t0 = Instant::now();
    let stopped = tokio::spawn(handle.stop());
    for r in join_all(requests).await {
        let (status, text) = r.unwrap();
        assert_eq!(status, 200, "{text}");
        assert!(
            normalize(&text).contains("ask not what your country can do for you"),
            "{text}"
        );
    }
    tokio::time::timeout(Duration::from_secs(60), stopped)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(60));
    // Gone: new connections are refused.
    assert!(client().get(format!("{url}/health")).send().await.is_err());
}

/// Starts the binary and returns it with its URL (read from its log).
fn spawn_binary(args: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_whisper-server"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[server] {line}");
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit in {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_finishes_in_flight_requests_on_sigterm() {
    let (mut child, lines) = spawn_binary(&["--port", "0", "--main", TINY_EN, "--max-batch", "1"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(120))
            .expect("server logs its address");
        if let Some(i) = line.find("listening on http://") {
            break line[i + "listening on ".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
        }
        assert!(Instant::now() < deadline);
    };
    loop {
        let r = client().get(format!("{url}/health")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 503);
        assert!(Instant::now() < deadline, "model never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let requests: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let r = post(&url, "/transcribe", clip("jfk.flac"), "jfk.flac", &[]).await;
                (r.status().as_u16(), r.text().await.unwrap())
            })
        })
        .collect();
    wait_in_flight(&url, 2).await;
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    for r in join_all(requests).await {
        let (status, body) = r.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(
            normalize(&body).contains("ask not what your country"),
            "{body}"
        );
    }
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(60)))
            .await
            .unwrap();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn binary_exits_with_an_error_when_the_model_does_not_load() {
    let (mut child, lines) = spawn_binary(&["--port", "0", "--main", "/nonexistent/model/dir"]);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert!(!status.success());
    let log: Vec<String> = lines.try_iter().collect();
    assert!(log.iter().any(|l| l.contains("nonexistent")), "{log:?}");
}

#[test]
fn binary_refuses_bad_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_whisper-server"))
        .args(["--max-batch", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-batch"));
    let out = Command::new(env!("CARGO_BIN_EXE_whisper-server"))
        .args(["--draft", "self-q3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
