//! A server started with `--vad` transcribes the speech only: 12 minutes of silence give
//! no text at once, and speech keeps its times in the upload.
mod common;
use common::*;
use serde_json::Value;
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn silence_flac(seconds: u32) -> Vec<u8> {
    let path = std::env::temp_dir().join(format!("whisper-server-silence-{seconds}s.flac"));
    let made = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .args(["anullsrc=r=16000:cl=mono", "-t", &seconds.to_string()])
        .args(["-c:a", "flac"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(made.success());
    std::fs::read(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vad_server_skips_silence_and_keeps_speech_times() {
    let s = tokio::task::spawn_blocking(|| {
        TestServer::start(whisper_server::ServerConfig {
            vad: true,
            vad_model: format!("{ROOT}/{}", whisper_burn::vad::DEFAULT_MODEL_PATH).into(),
            ..config()
        })
    })
    .await
    .unwrap();
    let resp = post(
        &s.url,
        "/v1/audio/transcriptions",
        silence_flac(720),
        "silence.flac",
        &[("response_format", "verbose_json")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["text"], "", "{v}");
    assert_eq!(v["segments"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["duration"], 720.0);

    let resp = post(
        &s.url,
        "/v1/audio/transcriptions",
        clip("jfk.flac"),
        "jfk.flac",
        &[
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(normalize(v["text"].as_str().unwrap()).contains("ask not what your country"));
    let words = v["words"].as_array().unwrap();
    let last_end = words.last().unwrap()["end"].as_f64().unwrap();
    assert!(last_end > 9.0 && last_end <= 11.1, "{last_end}");
    s.stop();
}
