//! `whisper-bench benchmark` end to end: the built binary on 3 LibriSpeech utterances with
//! a tiny random-weight model written by the test (garbage text, real pipeline).
mod support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{parse_csv, temp_dir, write_tiny_random_model, TinyConfig, LIBRISPEECH};

fn manifest() -> PathBuf {
    let m = Path::new(LIBRISPEECH).join("eval_quick_40.tsv");
    assert!(
        m.is_file(),
        "{} is missing (shared LibriSpeech data)",
        m.display()
    );
    m
}

fn bench(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_whisper-bench"))
        .arg("benchmark")
        .args(args)
        .output()
        .expect("running whisper-bench");
    eprintln!("--- stderr ---\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("--- stdout ---\n{}", String::from_utf8_lossy(&out.stdout));
    out
}

fn assert_png(path: &Path) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(
        bytes.len() > 1000,
        "{} is suspiciously small",
        path.display()
    );
}

fn assert_svg(path: &Path) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.contains("<svg") && text.trim_end().ends_with("</svg>"),
        "{} is not an SVG",
        path.display()
    );
}

fn assert_plot(out: &Path, stem: &str) {
    assert_png(&out.join(format!("{stem}.png")));
    assert_svg(&out.join(format!("{stem}.svg")));
}

/// results.csv rows per config (header checked).
fn rows_per_config(out: &Path) -> (HashMap<String, usize>, Vec<HashMap<String, String>>) {
    let rows = parse_csv(&fs::read_to_string(out.join("results.csv")).unwrap());
    let header = rows[0].clone();
    assert_eq!(header[0], "config");
    let records: Vec<HashMap<String, String>> = rows[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "CSV row {r:?}");
            header.iter().cloned().zip(r.iter().cloned()).collect()
        })
        .collect();
    let mut counts = HashMap::new();
    for r in &records {
        *counts.entry(r["config"].clone()).or_insert(0) += 1;
    }
    (counts, records)
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(out.join("summary.json")).unwrap())
        .expect("summary.json parses")
}

fn config_summary<'a>(s: &'a serde_json::Value, config: &str) -> &'a serde_json::Value {
    s["summaries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["config"] == config)
        .unwrap_or_else(|| panic!("no summary for {config}"))
}

#[test]
fn speculative_mode_end_to_end() {
    let dir = temp_dir("bench-e2e-spec");
    let model = write_tiny_random_model(&dir.join("model"), &TinyConfig::default(), 7);
    let out = dir.join("out");
    let o = bench(&[
        "--mode",
        "speculative",
        "--dataset",
        manifest().to_str().unwrap(),
        "--limit",
        "3",
        "--main",
        model.to_str().unwrap(),
        "--drafts",
        "self-q8,self-q4",
        "--max-new-tokens",
        "12",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "whisper-bench benchmark failed");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("NOT identical"));

    for f in ["results.csv", "summary.json", "summary.md"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for stem in [
        "latency_vs_wer",
        "speedup_per_draft",
        "acceptance_histogram",
    ] {
        assert_plot(&out, stem);
    }

    let (counts, records) = rows_per_config(&out);
    for config in ["greedy", "self-q8", "self-q4"] {
        assert_eq!(counts.get(config), Some(&3), "rows of {config}: {counts:?}");
    }
    assert_eq!(counts.len(), 3);
    for r in records.iter().filter(|r| r["config"] != "greedy") {
        assert_eq!(
            r["identical_to_baseline"], "true",
            "{} {} differs from greedy",
            r["config"], r["id"]
        );
        assert!(
            r["drafted"].parse::<usize>().unwrap() > 0,
            "{} drafted nothing",
            r["config"]
        );
    }
    assert!(records
        .iter()
        .all(|r| r["reference"].len() > 3 && r["latency_s"].parse::<f64>().unwrap() > 0.0));

    let s = summary(&out);
    assert_eq!(
        s["run"]["device"].as_str().unwrap().split(' ').next(),
        Some("cpu")
    );
    assert!(!s["run"]["command"].as_str().unwrap().is_empty());
    let q8 = config_summary(&s, "self-q8");
    assert_eq!(q8["all_identical_to_baseline"], true);
    assert_eq!(q8["n_utterances"], 3);
    assert!(q8["speedup_vs_baseline"].as_f64().unwrap() > 0.0);
    assert!(q8["acceptance_rate"].as_f64().is_some());
    assert!(q8["wer"].as_f64().is_some());
    assert_eq!(config_summary(&s, "greedy")["speedup_vs_baseline"], 1.0);
    let details = s["details"].as_array().unwrap();
    assert!(details
        .iter()
        .any(|d| d["config"] == "self-q8" && d["decoder_speedup_vs_baseline"].as_f64().is_some()));

    let md = fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("| self-q8 | cpu |") && md.contains("| greedy | cpu |"),
        "{md}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("| self-q4 | cpu |"),
        "summary table not printed"
    );
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn beam_mode_end_to_end() {
    let dir = temp_dir("bench-e2e-beam");
    let model = write_tiny_random_model(&dir.join("tiny-random"), &TinyConfig::default(), 11);
    let out = dir.join("out");
    let o = bench(&[
        "--mode",
        "beam",
        "--dataset",
        manifest().to_str().unwrap(),
        "--limit",
        "3",
        "--models",
        model.to_str().unwrap(),
        "--beams",
        "1,2",
        "--max-new-tokens",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "whisper-bench benchmark --mode beam failed"
    );
    let (counts, _) = rows_per_config(&out);
    for config in [
        "tiny-random/beam1",
        "tiny-random/beam2",
        "tiny-random/self-q8",
    ] {
        assert_eq!(counts.get(config), Some(&3), "rows of {config}: {counts:?}");
    }
    let s = summary(&out);
    assert_eq!(
        config_summary(&s, "tiny-random/self-q8")["all_identical_to_baseline"],
        true
    );
    // beam 2 is not expected to match greedy: no identity check, no warning
    assert!(config_summary(&s, "tiny-random/beam2")["all_identical_to_baseline"].is_null());
    assert!(!String::from_utf8_lossy(&o.stderr).contains("NOT identical"));
    assert_eq!(s["beam_points"].as_array().unwrap().len(), 3);
    assert_plot(&out, "beam_plot");
    assert_plot(&out, "latency_vs_wer");
    assert!(fs::read_to_string(out.join("summary.md"))
        .unwrap()
        .contains("## Beam search"));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn unknown_or_unbuilt_backend_is_a_clear_error() {
    let dir = temp_dir("bench-e2e-device");
    let o = bench(&[
        "--dataset",
        manifest().to_str().unwrap(),
        "--limit",
        "1",
        "--device",
        "cpu,cuda",
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    if cfg!(feature = "cuda") {
        return;
    }
    assert!(!o.status.success());
    assert!(stderr.contains("no CUDA backend"), "{stderr}");
    assert!(
        !dir.join("out").exists(),
        "nothing should run before the backends are checked"
    );

    let o = bench(&["--dataset", manifest().to_str().unwrap(), "--device", "tpu"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid value 'tpu'"));
    fs::remove_dir_all(&dir).ok();
}
