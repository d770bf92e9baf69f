//! What browsers and phones upload: Opus in WebM (MediaRecorder) and Ogg (messaging apps),
//! generated here from `jfk.flac` with ffmpeg (installed by `scripts/setup.sh`), through the
//! OpenAI endpoint; and absurd headers answered 4xx with a clear code.
mod common;
use common::*;
use std::process::Command;

fn encode(args: &[&str], name: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-uploads");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(format!("{CLIPS}/jfk.flac"))
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg is installed (bash scripts/setup.sh)");
    assert!(status.success(), "ffmpeg {args:?}");
    std::fs::read(out).unwrap()
}

async fn text_of(bytes: Vec<u8>, name: &str) -> String {
    let r = post(
        &shared().url,
        "/v1/audio/transcriptions",
        bytes,
        name,
        &[("response_format", "text")],
    )
    .await;
    assert_eq!(r.status(), 200, "{name}");
    r.text().await.unwrap()
}

#[tokio::test]
async fn opus_in_webm_and_ogg_transcribes_like_flac() {
    let flac = text_of(clip("jfk.flac"), "jfk.flac").await;
    assert!(normalize(&flac).contains("ask not what your country can do for you"));
    let webm = encode(&["-c:a", "libopus", "-b:a", "64k"], "jfk.webm");
    let ogg = encode(&["-c:a", "libopus", "-b:a", "32k", "-ac", "1"], "jfk.ogg");
    assert_eq!(text_of(webm.clone(), "recording.webm").await, flac);
    assert_eq!(text_of(ogg, "voice-note.ogg").await, flac);
    // The extension is only a hint: a WebM named .bin is still found.
    assert_eq!(text_of(webm, "upload.bin").await, flac);
}

/// A WAV header for 16-bit mono PCM at `rate_hz` with `samples` zero samples.
fn wav_header_only(rate_hz: u32, channels: u16, samples: usize) -> Vec<u8> {
    let data = (samples * 2 * channels as usize) as u32;
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&channels.to_le_bytes());
    w.extend_from_slice(&rate_hz.to_le_bytes());
    w.extend_from_slice(&(rate_hz * 2 * channels as u32).to_le_bytes());
    w.extend_from_slice(&(2 * channels).to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data.to_le_bytes());
    w.resize(w.len() + data as usize, 0);
    w
}

#[tokio::test]
async fn absurd_headers_are_4xx_with_a_clear_code() {
    let url = &shared().url;
    for (rate_hz, channels, what) in [
        (1u32, 1u16, "1 Hz"),
        (500_000, 1, "500000 Hz"),
        (16_000, 0, ""),
    ] {
        let r = post(
            url,
            "/v1/audio/transcriptions",
            wav_header_only(rate_hz, channels, 16_000),
            "absurd.wav",
            &[],
        )
        .await;
        let status = r.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{rate_hz} Hz, {channels} channels: {status}"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        let code = body["error"]["code"].as_str().unwrap();
        assert!(
            ["invalid_audio", "unsupported_audio"].contains(&code),
            "{rate_hz} Hz, {channels} channels: {body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(what),
            "{body}"
        );
    }
}
