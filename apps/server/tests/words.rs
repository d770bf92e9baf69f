//! Word timestamps through the server: the official `openai` Python client asks
//! `timestamp_granularities=["word"]` and gets words; a server with a self-draft gives
//! exactly the words of a plain greedy one; `/transcribe` gives each segment its words.
mod common;
use common::*;
use serde_json::Value;
use std::process::Command;

/// The words the `openai` client gets from `url` for `file`.
fn openai_client_words(url: &str, file: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openai_words.py");
    let out = Command::new("python3")
        .args([script, url, file])
        .output()
        .expect("python3 runs (scripts/setup.sh installs the openai client)");
    assert!(
        out.status.success(),
        "the openai client failed (pip install openai; scripts/setup.sh does):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

fn jfk_path() -> String {
    format!("{CLIPS}/jfk.flac")
}

#[test]
fn openai_client_gets_words_and_a_draft_does_not_change_them() {
    let greedy = shared();
    let speculative = TestServer::start(whisper_server::ServerConfig {
        draft: "self-q8".into(),
        ..config()
    });
    let plain = openai_client_words(&greedy.url, &jfk_path());
    let drafted = openai_client_words(&speculative.url, &jfk_path());
    speculative.stop();
    let words = plain["words"].as_array().expect("words in the answer");
    assert!(words.len() >= 20, "{plain}");
    let joined: String = words
        .iter()
        .map(|w| w["word"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        normalize(&joined),
        normalize(plain["text"].as_str().unwrap())
    );
    let mut last_end = 0.0;
    for w in words {
        let (start, end) = (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap());
        assert!(
            start >= last_end - 1e-6 && start <= end && end <= 11.1,
            "words out of order: {w} after {last_end}"
        );
        assert!(!w["word"].as_str().unwrap().starts_with(' '), "{w}");
        last_end = end;
    }
    // openai-whisper's own test of this clip: "Americans" is being said at 1.8 s.
    let americans = words
        .iter()
        .find(|w| w["word"].as_str().unwrap().trim_matches(',') == "Americans")
        .expect("the word Americans");
    assert!(americans["start"].as_f64().unwrap() <= 1.8, "{americans}");
    assert!(americans["end"].as_f64().unwrap() >= 1.8, "{americans}");
    assert!(!plain["segments"].as_array().unwrap().is_empty());
    assert_eq!(
        plain["words"], drafted["words"],
        "a draft changed the words"
    );
    assert_eq!(plain["segments"], drafted["segments"]);
}

#[tokio::test]
async fn transcribe_endpoint_gives_segments_their_words() {
    let s = shared();
    let resp = post(
        &s.url,
        "/transcribe",
        clip("jfk.flac"),
        "jfk.flac",
        &[("word_timestamps", "true")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let segs = v["segments"].as_array().unwrap();
    for seg in segs {
        let words = seg["words"].as_array().expect("each segment has words");
        let (a, b) = (seg["start"].as_f64().unwrap(), seg["end"].as_f64().unwrap());
        // Segment edges move to their words', unless a word is implausibly long, which is
        // then cut to the segment (faster-whisper's rules): words cover the segment.
        assert!(words[0]["start"].as_f64().unwrap() <= a, "{seg}");
        assert!(words.last().unwrap()["end"].as_f64().unwrap() >= b, "{seg}");
        for w in words {
            let p = w["probability"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p), "{w}");
        }
    }
    let resp = post(
        &s.url,
        "/transcribe",
        clip("jfk.flac"),
        "jfk.flac",
        &[("word_timestamps", "true"), ("timestamps", "false")],
    )
    .await;
    expect_error(resp, 400, "invalid_parameter").await;
    let resp = post(
        &s.url,
        "/v1/audio/transcriptions",
        clip("jfk.flac"),
        "jfk.flac",
        &[
            ("timestamp_granularities[]", "word"),
            ("response_format", "srt"),
        ],
    )
    .await;
    expect_error(resp, 400, "invalid_parameter").await;
}
