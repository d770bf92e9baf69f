//! `whisper-bench benchmark --mode longform` runs every configuration on a long file and
//! its version with silences, and reports drafts that change the output.
mod support;
use std::process::Command;
use support::{target_dir, tiny_en};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared");

#[test]
fn longform_mode_writes_tables_and_checks_drafts() {
    let out = target_dir("test-longform", "run");
    let vad = format!("{ROOT}/weights/models/silero_vad/silero_vad_v6.onnx");
    let run = Command::new(env!("CARGO_BIN_EXE_whisper-bench"))
        .args(["benchmark", "--mode", "longform", "--main", &tiny_en()])
        .args(["--dataset", &format!("{SHARED}/data/longform")])
        .args(["--limit", "1", "--limit-s", "50", "--repeats", "1"])
        .args(["--drafts", "self-q8", "--batch-sizes", "2", "--no-peers"])
        .args(["--vad-model", &vad, "--out"])
        .arg(&out)
        .output()
        .expect("whisper-bench runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for row in [
        "greedy seq",
        "greedy vad-b2",
        "self-q8 seq",
        "self-q8 vad-b2",
    ] {
        assert!(
            summary.contains(&format!("| {row} |")),
            "{row} missing:\n{summary}"
        );
    }
    assert!(summary.contains("## 1089-134686-silences"), "{summary}");
    assert_eq!(
        summary.matches("| yes |").count(),
        4,
        "drafts must equal greedy:\n{summary}"
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 4, "{csv}");
    assert!(out.join("audio/1089-134686-silences.wav").is_file());
}
