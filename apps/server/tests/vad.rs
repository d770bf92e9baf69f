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

/// The first `seconds` of a long-form chapter as FLAC.
fn chapter_flac(seconds: u32) -> Vec<u8> {
    let path = std::env::temp_dir().join(format!("whisper-server-chapter-{seconds}s.flac"));
    let src = format!("{ROOT}/../shared/data/longform/1089-134686.flac");
    let made = Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-y",
            "-i",
            &src,
            "-t",
            &seconds.to_string(),
        ])
        .args(["-c:a", "flac"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success());
    std::fs::read(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_server_decodes_a_long_upload_in_vad_groups_beside_others() {
    use whisper_burn::vad::{batched_vad_options, transcribe_chunked, SileroVad};
    let vad_model = format!("{ROOT}/{}", whisper_burn::vad::DEFAULT_MODEL_PATH);
    let s = {
        let vad_model = vad_model.clone();
        tokio::task::spawn_blocking(move || {
            TestServer::start(whisper_server::ServerConfig {
                batched: true,
                vad_model: vad_model.into(),
                max_wait_ms: 200,
                ..config()
            })
        })
        .await
        .unwrap()
    };
    let long = chapter_flac(100);
    let fields = [("response_format", "verbose_json")];
    let (a, b) = tokio::join!(
        post(
            &s.url,
            "/v1/audio/transcriptions",
            long.clone(),
            "chapter.flac",
            &fields
        ),
        post(
            &s.url,
            "/v1/audio/transcriptions",
            clip("jfk.flac"),
            "jfk.flac",
            &fields
        ),
    );
    assert_eq!(a.status(), 200);
    assert_eq!(b.status(), 200);
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert!(normalize(b["text"].as_str().unwrap()).contains("ask not what your country"));
    let segments = a["segments"].as_array().unwrap();
    assert!(segments.len() >= 10, "{a}");
    let mut last_start = 0.0;
    for seg in segments {
        let start = seg["start"].as_f64().unwrap();
        assert!(start >= last_start && start <= 100.5, "{seg}");
        last_start = start;
    }
    s.stop();
    // The same groups decoded in-process give the same text.
    let want = tokio::task::spawn_blocking(move || {
        let pipeline = whisper_burn::Pipeline::<whisper_burn::backend::CpuBackend>::load(
            TINY_EN,
            &Default::default(),
        )
        .unwrap();
        let vad = SileroVad::load(&vad_model).unwrap();
        let path = std::env::temp_dir().join("whisper-server-chapter-100s.flac");
        let audio = whisper_burn::audio::load_audio_file(&path).unwrap();
        let opts = whisper_burn::DecodeOptions {
            timestamps: true,
            condition_on_previous_text: false,
            ..Default::default()
        };
        transcribe_chunked(&vad, &batched_vad_options(), &audio, 8, |g| {
            pipeline.transcribe_batch(g, &opts, &mut whisper_burn::GreedyDecoder)
        })
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(a["text"].as_str().unwrap(), want.text);
}
