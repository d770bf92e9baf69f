//! Shared helpers: in-process servers on loopback ports with the real `tiny.en` model, and
//! multipart requests.
#![allow(dead_code)]
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use whisper_server::ServerConfig;

pub const TINY_EN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../weights/models/tiny.en");
pub const CLIPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/clips");
pub const LIBRISPEECH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/librispeech/LibriSpeech/test-clean"
);

/// Short LibriSpeech utterances (relative to [`LIBRISPEECH`]).
pub const LIBRI_CLIPS: [&str; 5] = [
    "1089/134686/1089-134686-0006.flac",
    "1089/134686/1089-134686-0032.flac",
    "1089/134691/1089-134691-0019.flac",
    "1188/133604/1188-133604-0004.flac",
    "121/121726/121-121726-0006.flac",
];

pub fn clip(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(CLIPS).join(name))
        .unwrap_or_else(|e| panic!("reading clip {name}: {e}"))
}

pub fn libri(rel: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(LIBRISPEECH).join(rel))
        .unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// A test configuration: tiny.en, port 0, small limits.
pub fn config() -> ServerConfig {
    ServerConfig {
        port: 0,
        main: TINY_EN.into(),
        max_batch: 8,
        max_wait_ms: 20,
        queue_capacity: 64,
        decode_concurrency: 2,
        shutdown_timeout_s: 60,
        ..Default::default()
    }
}

/// A server running on its own runtime in a background thread, for the whole test process.
pub struct TestServer {
    pub url: String,
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl TestServer {
    /// Starts a server and waits until its model is loaded.
    pub fn start(config: ServerConfig) -> TestServer {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let handle = whisper_server::start::<whisper_burn::backend::CpuBackend>(
                    config,
                    Default::default(),
                )
                .await
                .expect("server starts");
                let ready = handle.wait_ready().await;
                tx.send(ready.map(|_| handle.url())).unwrap();
                let _ = stop_rx.await;
                let _ = handle.stop().await;
            });
        });
        let url = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("server ready in time")
            .expect("model loads");
        TestServer {
            url,
            stop: std::sync::Mutex::new(Some(stop_tx)),
        }
    }

    pub fn stop(&self) {
        if let Some(tx) = self.stop.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }
}

/// The default server shared by the tests of one test binary.
pub fn shared() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| TestServer::start(config()))
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
}

/// A multipart form with `file` (under `field`) and text fields.
pub fn form(
    field: &str,
    bytes: Vec<u8>,
    filename: &str,
    fields: &[(&str, &str)],
) -> reqwest::multipart::Form {
    let mut f = reqwest::multipart::Form::new().part(
        field.to_string(),
        reqwest::multipart::Part::bytes(bytes).file_name(filename.to_string()),
    );
    for (k, v) in fields {
        f = f.text(k.to_string(), v.to_string());
    }
    f
}

/// POSTs a file as field `file`.
pub async fn post(
    url: &str,
    path: &str,
    bytes: Vec<u8>,
    filename: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    client()
        .post(format!("{url}{path}"))
        .multipart(form("file", bytes, filename, fields))
        .send()
        .await
        .expect("request sent")
}

/// Asserts a JSON error answer with this status and code; returns the body.
pub async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    let got = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.text().await.unwrap();
    assert_eq!(got, status, "status for {code}: body {body}");
    assert!(
        ct.starts_with("application/json"),
        "content type {ct} for {code}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    assert_eq!(v["error"]["code"], code, "{body}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    v
}

pub fn normalize(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
