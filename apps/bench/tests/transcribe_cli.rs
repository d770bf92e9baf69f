//! `whisper-bench transcribe` writes the transcript files users know from the `whisper` CLI.
mod support;
use std::path::PathBuf;
use std::process::Command;
use support::{target_dir, tiny_en};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared");

fn out_dir(name: &str) -> PathBuf {
    target_dir("test-cli", name)
}

fn transcribe(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_whisper-bench"))
        .arg("transcribe")
        .args(["--model", &tiny_en(), "--language", "en"])
        .args(args)
        .output()
        .expect("whisper-bench runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn output_format_all_writes_every_file() {
    let dir = out_dir("all");
    let jfk = format!("{SHARED}/data/clips/jfk.flac");
    let out = transcribe(&[
        "--output-format",
        "all",
        "--output-dir",
        dir.to_str().unwrap(),
        &jfk,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let read = |ext: &str| {
        std::fs::read_to_string(dir.join(format!("jfk.{ext}")))
            .unwrap_or_else(|e| panic!("jfk.{ext}: {e}"))
    };
    let txt = read("txt");
    assert_eq!(txt.trim(), stdout.trim(), "txt is the printed transcript");
    assert!(
        txt.contains("ask not what your country can do for you"),
        "{txt}"
    );

    let srt = read("srt");
    assert!(srt.starts_with("1\n00:00:0"), "{srt}");
    let cues: Vec<&str> = srt.lines().filter(|l| l.contains(" --> ")).collect();
    assert!(!cues.is_empty(), "{srt}");
    assert!(read("vtt").starts_with("WEBVTT\n\n00:00:0"));
    let tsv = read("tsv");
    assert!(tsv.starts_with("start\tend\ttext\n"), "{tsv}");
    assert_eq!(
        tsv.lines().count() - 1,
        cues.len(),
        "one tsv row per srt cue"
    );

    let json: serde_json::Value = serde_json::from_str(&read("json")).unwrap();
    let segments = json["segments"].as_array().unwrap();
    assert_eq!(segments.len(), cues.len());
    let last_end = segments.last().unwrap()["end"].as_f64().unwrap();
    assert!(
        last_end > 9.0 && last_end <= 11.1,
        "last segment ends at {last_end}"
    );
    assert_eq!(json["language"], "en");
    assert!(!dir.read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".partial")));
}

#[test]
fn bad_output_format_and_colliding_names_are_clear_errors() {
    let jfk = format!("{SHARED}/data/clips/jfk.flac");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_whisper-bench"))
            .arg("transcribe")
            .args(["--model", &tiny_en()])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--output-format", "docx", &jfk]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown output format `docx`"));
    let dir = out_dir("collide");
    let copy = dir.join("other");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(&jfk, copy.join("jfk.flac")).unwrap();
    let out = run(&[
        "--output-format",
        "srt",
        "--output-dir",
        dir.to_str().unwrap(),
        &jfk,
        copy.join("jfk.flac").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would write the same output files"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The initial prompt reaches the decoder: a prompt in a style the audio lacks changes the
/// transcript's tokens (here the model follows the prompt's lower-case, unpunctuated style).
#[test]
fn initial_prompt_conditions_the_transcript() {
    let jfk = format!("{SHARED}/data/clips/jfk.flac");
    let plain = transcribe(&["--json", &jfk]);
    let prompted = transcribe(&[
        "--json",
        "--initial-prompt",
        "so my fellow americans ask not what your country can do for you",
        &jfk,
    ]);
    let tokens = |o: &std::process::Output| {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["tokens"].clone()
    };
    assert_ne!(
        tokens(&plain),
        tokens(&prompted),
        "the prompt changed nothing"
    );
}

/// Browser, phone and messaging uploads through the CLI (generated from `jfk.flac` with
/// ffmpeg, installed by `scripts/setup.sh`): each gives the FLAC's transcript.
#[test]
fn upload_formats_give_the_flac_transcript() {
    let dir = out_dir("formats");
    std::fs::create_dir_all(&dir).unwrap();
    let jfk = format!("{SHARED}/data/clips/jfk.flac");
    let mut files = Vec::new();
    for (name, args) in [
        ("jfk.webm", &["-c:a", "libopus", "-b:a", "64k"][..]),
        (
            "jfk.ogg",
            &["-c:a", "libopus", "-b:a", "32k", "-ac", "1"][..],
        ),
        ("jfk.m4a", &["-c:a", "aac", "-b:a", "128k"][..]),
        ("jfk.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"][..]),
    ] {
        let path = dir.join(name);
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i", &jfk])
            .args(args)
            .arg(&path)
            .status()
            .expect("ffmpeg is installed (bash scripts/setup.sh)");
        assert!(status.success(), "ffmpeg {name}");
        files.push(path.to_str().unwrap().to_string());
    }
    let flac = transcribe(&[&jfk]);
    let expected = String::from_utf8_lossy(&flac.stdout).trim().to_string();
    assert!(
        expected.contains("ask not what your country can do for you"),
        "{expected}"
    );
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let out = transcribe(&args);
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(lines.len(), files.len(), "{lines:?}");
    for (file, line) in files.iter().zip(&lines) {
        assert_eq!(line, &expected, "{file}");
    }
}

#[test]
fn word_timestamps_in_json_and_one_cue_per_word() {
    let dir = out_dir("words");
    let jfk = format!("{SHARED}/data/clips/jfk.flac");
    let out = transcribe(&[
        "--word-timestamps",
        "--json",
        "--max-words-per-line",
        "1",
        "--output-format",
        "srt,json",
        "--output-dir",
        dir.to_str().unwrap(),
        &jfk,
    ]);
    let printed: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let words: Vec<&serde_json::Value> = printed["segments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["words"].as_array().expect("each segment has words"))
        .collect();
    assert!(words.len() >= 20, "{printed}");
    for w in &words {
        let (a, b) = (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap());
        assert!(a <= b && b <= 11.1, "{w}");
        assert!(w["probability"].as_f64().is_some() && w["word"].is_string());
    }
    let srt = std::fs::read_to_string(dir.join("jfk.srt")).unwrap();
    let cues = srt.lines().filter(|l| l.contains(" --> ")).count();
    assert_eq!(cues, words.len(), "one cue per word:\n{srt}");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("jfk.json")).unwrap()).unwrap();
    assert_eq!(
        file["segments"][0]["words"],
        printed["segments"][0]["words"]
    );

    // --max-words-per-line without --word-timestamps is refused by the parser.
    let refused = Command::new(env!("CARGO_BIN_EXE_whisper-bench"))
        .args([
            "transcribe",
            "--model",
            &tiny_en(),
            "--max-words-per-line",
            "2",
            &jfk,
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--word-timestamps"));
}

#[test]
fn vad_on_twelve_minutes_of_silence_gives_no_segments() {
    let dir = out_dir("vad-silence");
    let silence = dir.join("silence.flac");
    let made = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .args(["anullsrc=r=16000:cl=mono", "-t", "720", "-c:a", "flac"])
        .arg(&silence)
        .status()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(made.success());
    let vad_model = format!("{ROOT}/weights/models/silero_vad/silero_vad_v6.onnx");
    let out = transcribe(&[
        "--vad",
        "--vad-model",
        &vad_model,
        "--json",
        silence.to_str().unwrap(),
    ]);
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(v["text"], "", "{v}");
    assert_eq!(v["segments"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["audio_s"], 720.0);
    assert_eq!(v["main_passes"], 0, "nothing was decoded: {v}");
}

#[test]
fn vad_keeps_the_speech_and_its_times() {
    let jfk = format!("{SHARED}/data/clips/jfk.flac");
    let vad_model = format!("{ROOT}/weights/models/silero_vad/silero_vad_v6.onnx");
    let out = transcribe(&[
        "--vad",
        "--vad-model",
        &vad_model,
        "--word-timestamps",
        "--json",
        &jfk,
    ]);
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("ask not what your country can do for you"),
        "{v}"
    );
    let segments = v["segments"].as_array().unwrap();
    let last = segments.last().unwrap();
    assert!(last["end_s"].as_f64().unwrap() <= 11.1, "{last}");
    assert!(segments[0]["words"]
        .as_array()
        .is_some_and(|w| !w.is_empty()));
}

#[test]
fn no_fallback_and_a_fallback_ladder_are_refused_together() {
    let jfk = format!("{SHARED}/data/clips/jfk.flac");
    let out = Command::new(env!("CARGO_BIN_EXE_whisper-bench"))
        .args(["transcribe", "--model", &tiny_en(), "--no-fallback"])
        .args(["--temperature-fallback", "0.2,0.4", &jfk])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    // --no-fallback alone is greedy decoding: the transcript of the default run here.
    let plain = transcribe(&["--no-fallback", &jfk]);
    let default = transcribe(&[&jfk]);
    assert_eq!(plain.stdout, default.stdout);
}
