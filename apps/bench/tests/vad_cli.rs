//! `whisper-bench vad` prints faster-whisper's speech chunks (the chapter's chunks with
//! `--vad-min-silence-ms 500` from `reference/vad/faster_whisper_1.2.1.json`).
use std::path::Path;
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared");

fn vad(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_whisper-bench"))
        .arg("vad")
        .args(args)
        .output()
        .expect("whisper-bench runs")
}

#[test]
fn prints_faster_whisper_chunks() {
    let model = format!("{ROOT}/weights/models/silero_vad/silero_vad_v6.onnx");
    assert!(
        Path::new(&model).is_file(),
        "{model} missing: run `bash weights/fetch.sh`"
    );
    let file = format!("{SHARED}/data/longform/1089-134686.flac");
    let out = vad(&["--vad-model", &model, "--vad-min-silence-ms", "500", &file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let got: Vec<[u64; 2]> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let (start, end) = (v["start"].as_u64().unwrap(), v["end"].as_u64().unwrap());
            assert_eq!(v["start_s"].as_f64().unwrap(), start as f64 / 16_000.0);
            assert_eq!(v["end_s"].as_f64().unwrap(), end as f64 / 16_000.0);
            [start, end]
        })
        .collect();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/reference/vad/faster_whisper_1.2.1.json"))
            .unwrap(),
    )
    .unwrap();
    let entry = reference["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "longform/1089-134686.flac")
        .unwrap();
    let want: Vec<[u64; 2]> =
        serde_json::from_value(entry["chunks_min_silence_500"].clone()).unwrap();
    assert_eq!(got, want);
    println!("{} chunks; {stderr}", got.len());
}

#[test]
fn missing_model_names_the_fetch_script() {
    let file = format!("{SHARED}/data/clips/jfk.flac");
    let out = vad(&["--vad-model", "/nonexistent/silero.onnx", &file]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("weights/fetch.sh"), "{stderr}");
}
