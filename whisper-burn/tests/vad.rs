//! Silero VAD against faster-whisper 1.2.1 (`reference/vad/faster_whisper_1.2.1.json`,
//! written by `scripts/vad_reference.py` with onnxruntime): speech probabilities, chunk
//! boundaries with the default options and with `min_silence_duration_ms=500`, the
//! timestamp map, and the timestamp logic alone on made-up probability sequences.
//! Needs `bash weights/fetch.sh` (CI runs it first) for the model.
use serde_json::Value;
use std::path::Path;
use whisper_burn::audio;
use whisper_burn::vad::{
    chunks_from_probs, collect_chunks, speech_timestamps, SileroVad, SpeechChunk, TimestampMap,
    VadOptions, DEFAULT_MODEL_PATH,
};
use whisper_burn::WhisperError;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared");
/// One 32 ms window.
const TOLERANCE: usize = 512;

fn model() -> SileroVad {
    let path = format!("{ROOT}/{DEFAULT_MODEL_PATH}");
    assert!(
        Path::new(&path).is_file(),
        "{path} missing: run `bash weights/fetch.sh`"
    );
    SileroVad::load(&path).expect("load the Silero model")
}

fn reference() -> Value {
    let path = format!("{ROOT}/reference/vad/faster_whisper_1.2.1.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("reference json")).expect("json")
}

fn options(v: &Value) -> VadOptions {
    let mut o = VadOptions::default();
    let get = |k: &str| v.get(k).filter(|x| !x.is_null());
    if let Some(x) = get("threshold") {
        o.threshold = x.as_f64().unwrap() as f32;
    }
    if let Some(x) = get("neg_threshold") {
        o.neg_threshold = Some(x.as_f64().unwrap() as f32);
    }
    if let Some(x) = get("min_speech_duration_ms") {
        o.min_speech_duration_ms = x.as_u64().unwrap() as u32;
    }
    if let Some(x) = get("max_speech_duration_s").and_then(|x| x.as_f64()) {
        o.max_speech_duration_s = x;
    }
    if let Some(x) = get("min_silence_duration_ms") {
        o.min_silence_duration_ms = x.as_u64().unwrap() as u32;
    }
    if let Some(x) = get("speech_pad_ms") {
        o.speech_pad_ms = x.as_u64().unwrap() as u32;
    }
    o
}

fn chunks(v: &Value) -> Vec<SpeechChunk> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| SpeechChunk {
            start: c[0].as_u64().unwrap() as usize,
            end: c[1].as_u64().unwrap() as usize,
        })
        .collect()
}

/// The audio of a reference entry, decoded by us (or built as the script built it).
fn load(entry: &Value) -> Vec<f32> {
    let data = Path::new(SHARED).join("data");
    if let Some(seconds) = entry.get("silence_s") {
        return vec![0.0; seconds.as_u64().unwrap() as usize * audio::SAMPLE_RATE as usize];
    }
    if let Some(inserts) = entry.get("inserts") {
        let base = audio::load_audio_file(&data.join(entry["base"].as_str().unwrap())).unwrap();
        return with_silences(&base, inserts.as_array().unwrap());
    }
    audio::load_audio_file(&data.join(entry["path"].as_str().unwrap())).expect("decode")
}

/// `base` with `[position, length]` runs of zeros inserted (positions in `base`).
fn with_silences(base: &[f32], inserts: &[Value]) -> Vec<f32> {
    let mut out = Vec::new();
    let mut prev = 0;
    for ins in inserts {
        let (pos, len) = (ins[0].as_u64().unwrap() as usize, ins[1].as_u64().unwrap());
        out.extend_from_slice(&base[prev..pos]);
        out.resize(out.len() + len as usize, 0.0);
        prev = pos;
    }
    out.extend_from_slice(&base[prev..]);
    out
}

fn crc32(samples: &[f32]) -> u32 {
    let mut crc = flate2::Crc::new();
    let bytes: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
    crc.update(&bytes);
    crc.sum()
}

/// Boundaries of `a` (starts with starts, ends with ends) with one of `b` within
/// [`TOLERANCE`] samples, counted both ways: (matched, total).
fn matched_boundaries(a: &[SpeechChunk], b: &[SpeechChunk]) -> (usize, usize) {
    let near = |v: usize, ys: Vec<usize>| ys.iter().any(|w| v.abs_diff(*w) <= TOLERANCE);
    let one_way = |x: &[SpeechChunk], y: &[SpeechChunk]| -> usize {
        let starts: Vec<usize> = y.iter().map(|d| d.start).collect();
        let ends: Vec<usize> = y.iter().map(|d| d.end).collect();
        x.iter()
            .map(|c| near(c.start, starts.clone()) as usize + near(c.end, ends.clone()) as usize)
            .sum()
    };
    (one_way(a, b) + one_way(b, a), 2 * (a.len() + b.len()))
}

/// Probabilities within 1e-4 of onnxruntime's wherever our decoder gives faster-whisper's
/// samples (16 kHz mono FLAC: both chapters, the utterances, the synthetic file), and
/// chunk boundaries within one window of faster-whisper's on >= 95% of boundaries over
/// every input (decoders differ on the resampled and lossy ones).
#[test]
fn matches_faster_whisper() {
    let vad = model();
    let reference = reference();
    let opts = [
        (
            "default",
            options(&reference["options"]["default"]),
            "chunks_default",
        ),
        (
            "min_silence_500",
            options(&reference["options"]["min_silence_500"]),
            "chunks_min_silence_500",
        ),
    ];
    assert_eq!(
        opts[0].1,
        VadOptions::default(),
        "faster-whisper's defaults"
    );
    let (mut matched, mut total, mut worst_prob) = (0, 0, 0f32);
    let mut exact_decodes = 0;
    for entry in reference["files"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let samples = load(entry);
        let same_samples = samples.len() as u64 == entry["n_samples"].as_u64().unwrap()
            && crc32(&samples) as u64 == entry["crc32_f32le"].as_u64().unwrap();
        exact_decodes += same_samples as usize;
        let probs = vad.speech_probs(&samples).unwrap();
        let want: Vec<f32> = entry["probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap() as f32)
            .collect();
        let max_diff = want
            .iter()
            .zip(&probs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        if !want.is_empty() {
            assert!(
                same_samples,
                "{name}: our decode differs from faster-whisper's"
            );
            assert!(
                max_diff < 1e-4,
                "{name}: probabilities differ by {max_diff}"
            );
            worst_prob = worst_prob.max(max_diff);
        }
        let mut line = format!(
            "{name}: samples {} ({}), prob max diff {}",
            samples.len(),
            if same_samples {
                "same as PyAV"
            } else {
                "differ from PyAV"
            },
            if want.is_empty() {
                "-".into()
            } else {
                format!("{max_diff:.2e} over {}", want.len())
            }
        );
        for (label, o, key) in &opts {
            let ours = chunks_from_probs(&probs, samples.len(), o).unwrap();
            let theirs = chunks(&entry[key]);
            let (m, t) = matched_boundaries(&ours, &theirs);
            matched += m;
            total += t;
            line += &format!(
                "; {label}: {} vs {} chunks, {m}/{t} boundaries",
                ours.len(),
                theirs.len()
            );
            if same_samples {
                assert_eq!(ours, theirs, "{name} {label}: same samples, same chunks");
            }
        }
        println!("{line}");
    }
    let fraction = matched as f64 / total as f64;
    println!(
        "boundaries within {TOLERANCE} samples: {matched}/{total} = {fraction:.4}; \
         {exact_decodes} inputs decoded to PyAV's samples; prob max diff {worst_prob:.2e}"
    );
    assert!(fraction >= 0.95, "only {fraction:.4} of boundaries match");
}

/// 12 minutes of digital silence: no speech.
#[test]
fn silence_has_no_speech() {
    let vad = model();
    let silence = vec![0f32; 12 * 60 * 16_000];
    let chunks = speech_timestamps(&vad, &silence, &VadOptions::default()).unwrap();
    assert!(chunks.is_empty(), "{chunks:?}");
    let (speech, map) = collect_chunks(&silence, &chunks);
    assert!(speech.is_empty() && map.is_empty());
}

/// Bad input and a missing model are errors that say what is wrong, not panics.
#[test]
fn bad_input_is_a_clear_error() {
    let err = SileroVad::load("/nonexistent/silero_vad_v6.onnx").unwrap_err();
    assert!(matches!(err, WhisperError::Vad(_)));
    assert!(err.to_string().contains("weights/fetch.sh"), "{err}");
    let err = SileroVad::from_onnx_bytes(b"not a model").unwrap_err();
    assert!(matches!(err, WhisperError::Vad(_)), "{err}");

    let vad = model();
    // A truncated model file.
    let bytes = std::fs::read(format!("{ROOT}/{DEFAULT_MODEL_PATH}")).unwrap();
    let err = SileroVad::from_onnx_bytes(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(matches!(err, WhisperError::Vad(_)), "{err}");
    let opts = VadOptions::default();
    let err = speech_timestamps(&vad, &[], &opts).unwrap_err();
    assert!(matches!(err, WhisperError::EmptyAudio), "{err}");
    let err = speech_timestamps(&vad, &[0.0, f32::NAN, 0.0], &opts).unwrap_err();
    assert!(err.to_string().contains("sample 1"), "{err}");
    let bad = VadOptions {
        threshold: 1.5,
        ..VadOptions::default()
    };
    let err = speech_timestamps(&vad, &[0.0; 1000], &bad).unwrap_err();
    assert!(err.to_string().contains("threshold"), "{err}");
    // One sample, or a length that is a multiple of the window (faster-whisper then adds
    // a whole window of zeros): probabilities, no panic.
    assert_eq!(vad.speech_probs(&[0.1]).unwrap().len(), 1);
    assert_eq!(vad.speech_probs(&[0.1; 1024]).unwrap().len(), 3);
}

/// The timestamp logic alone, on faster-whisper's output for made-up probabilities
/// (the model replaced by a fake): every option (hysteresis, splitting long chunks,
/// minimum speech, padding) on runs of speech, silence and in-between values.
#[test]
fn timestamp_logic_matches_on_made_up_probabilities() {
    let reference = reference();
    let cases = reference["probability_cases"].as_array().unwrap();
    for (i, case) in cases.iter().enumerate() {
        let probs: Vec<f32> = case["probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap() as f32)
            .collect();
        let n = case["n_samples"].as_u64().unwrap() as usize;
        let got = chunks_from_probs(&probs, n, &options(&case["options"])).unwrap();
        assert_eq!(
            got,
            chunks(&case["chunks"]),
            "case {i}: {}",
            case["options"]
        );
    }
    println!("{} probability sequences: same chunks", cases.len());
}

/// `collect_chunks` and `TimestampMap` against `SpeechTimestampsMap.get_original_time`
/// around chunk ends (with and without `is_end`), and the speech audio's samples.
#[test]
fn timestamp_map_matches_faster_whisper() {
    let reference = reference();
    let mut checked = 0;
    for entry in reference["files"].as_array().unwrap() {
        let cs = chunks(&entry["chunks_min_silence_500"]);
        let map = TimestampMap::new(&cs, 16_000);
        for t in entry["original_times"].as_array().unwrap() {
            // The time as Python's repr: parsed exactly (serde_json's f64 parse may be a
            // unit in the last place off, enough to move a rounding tie).
            let time: f64 = t[0].as_str().unwrap().parse().unwrap();
            let is_end = t[1].as_bool().unwrap();
            let (got, want) = (
                map.original_time(time, None, is_end),
                t[2].as_f64().unwrap(),
            );
            assert!(
                (got - want).abs() < 1e-9,
                "{}: {time} (is_end {is_end}): {got} vs {want}",
                entry["name"]
            );
            checked += 1;
        }
        // The speech audio is the chunks' samples in order.
        let n = entry["n_samples"].as_u64().unwrap() as usize;
        let audio: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let (speech, map2) = collect_chunks(&audio, &cs);
        assert_eq!(map2, map);
        assert_eq!(speech.len(), cs.iter().map(|c| c.len()).sum::<usize>());
        let mut at = 0;
        for c in &cs {
            assert_eq!(speech[at], c.start as f32);
            assert_eq!(speech[at + c.len() - 1], (c.end - 1) as f32);
            at += c.len();
        }
    }
    assert!(checked > 100, "{checked}");
    println!("{checked} mapped times equal");
}

fn run(p: &[(f32, usize)]) -> Vec<f32> {
    p.iter()
        .flat_map(|&(v, n)| std::iter::repeat_n(v, n))
        .collect()
}

fn spans(v: &[(usize, usize)]) -> Vec<SpeechChunk> {
    v.iter()
        .map(|&(start, end)| SpeechChunk { start, end })
        .collect()
}

/// Hand-worked cases of each rule, 512 samples per window.
#[test]
fn timestamp_rules_by_hand() {
    let base = VadOptions::default();
    // Hysteresis: 0.4 (between neg_threshold 0.35 and threshold 0.5) continues speech;
    // the chunk ends where the first window under 0.35 starts, once 100 ms of it passed.
    let probs = run(&[(0.1, 4), (0.9, 10), (0.4, 10), (0.1, 100)]);
    let opts = VadOptions {
        min_silence_duration_ms: 100,
        speech_pad_ms: 0,
        ..base.clone()
    };
    let got = chunks_from_probs(&probs, probs.len() * 512, &opts).unwrap();
    assert_eq!(got, spans(&[(2048, 12288)]));

    // Padding: a gap under twice the pad is split in half between the two chunks.
    let probs = run(&[(0.9, 10), (0.1, 4), (0.9, 10), (0.1, 50)]);
    let opts = VadOptions {
        min_silence_duration_ms: 0,
        speech_pad_ms: 100,
        ..base.clone()
    };
    let got = chunks_from_probs(&probs, probs.len() * 512, &opts).unwrap();
    assert_eq!(got, spans(&[(0, 6144), (6144, 13888)]));

    // Splitting: no silence in 1 s of speech, so cut where the chunk passes
    // 16000 - 512 samples; speech up to the end ends at the audio's end.
    let probs = run(&[(0.9, 100)]);
    let opts = VadOptions {
        max_speech_duration_s: 1.0,
        speech_pad_ms: 0,
        ..base.clone()
    };
    let got = chunks_from_probs(&probs, 51_200, &opts).unwrap();
    assert_eq!(
        got,
        spans(&[(0, 15872), (16384, 32256), (32768, 48640), (49152, 51200)])
    );

    // Minimum speech: 5 windows (2560 samples) are dropped at 250 ms, 9 (4608) kept and
    // padded by 400 ms, clamped to the audio.
    let opts = VadOptions {
        min_speech_duration_ms: 250,
        min_silence_duration_ms: 100,
        ..base.clone()
    };
    let short = run(&[(0.9, 5), (0.1, 200)]);
    assert!(chunks_from_probs(&short, short.len() * 512, &opts)
        .unwrap()
        .is_empty());
    let long = run(&[(0.9, 9), (0.1, 200)]);
    let got = chunks_from_probs(&long, long.len() * 512, &opts).unwrap();
    assert_eq!(got, spans(&[(0, 11008)]));

    // No chunks: no speech audio, and times map to themselves.
    let (speech, map) = collect_chunks(&[0.5; 100], &[]);
    assert!(speech.is_empty());
    assert_eq!(map.original_time(1.234, None, false), 1.23);
}
