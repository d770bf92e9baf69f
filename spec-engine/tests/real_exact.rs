//! Speculative decoding on real weights is token for token the main model's greedy
//! output: `base` with self-q8 and self-q4, `tiny.en` with self-q4, over eval_quick_40;
//! and with temperature sampling, token for token plain sampling's output.
//! Needs `bash weights/fetch.sh` (CI runs it first).
use spec_engine::{DraftLength, DraftSpec, Engine, EngineConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use whisper_burn::backend::CpuBackend;
use whisper_burn::{audio, DecodeOptions, Pipeline};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared");

fn quick40() -> Vec<(String, Vec<f32>)> {
    let text = std::fs::read_to_string(format!("{SHARED}/data/librispeech/eval_quick_40.tsv"))
        .expect("manifest");
    let root = Path::new(SHARED).join("data/librispeech/LibriSpeech");
    text.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (
                c[0].to_string(),
                audio::load_audio_file(&root.join(c[1])).expect("audio"),
            )
        })
        .collect()
}

fn load(name: &str) -> Arc<Pipeline<CpuBackend>> {
    let dir: PathBuf = [ROOT, "weights", "models", name].iter().collect();
    assert!(
        dir.join("model.bin").is_file(),
        "{} missing: run `bash weights/fetch.sh`",
        dir.display()
    );
    Arc::new(Pipeline::load(dir.to_str().unwrap(), &Default::default()).expect("load"))
}

fn run(
    engine: &Engine<CpuBackend>,
    items: &[(String, Vec<f32>)],
    batch: usize,
) -> Vec<(Vec<u32>, usize, usize)> {
    run_with(
        engine,
        items,
        batch,
        &DecodeOptions {
            language: Some("en".into()),
            ..Default::default()
        },
    )
}

fn run_with(
    engine: &Engine<CpuBackend>,
    items: &[(String, Vec<f32>)],
    batch: usize,
    opts: &DecodeOptions,
) -> Vec<(Vec<u32>, usize, usize)> {
    let mut out = Vec::new();
    for chunk in items.chunks(batch) {
        let refs: Vec<&[f32]> = chunk.iter().map(|(_, a)| a.as_slice()).collect();
        out.extend(
            engine
                .transcribe_batch(&refs, opts)
                .expect("transcribe")
                .into_iter()
                .map(|t| (t.tokens, t.drafted, t.accepted)),
        );
    }
    out
}

fn check(model: &str, drafts: &[(&str, DraftLength, usize)]) {
    let main = load(model);
    let items = quick40();
    let device = Default::default();
    let greedy = Engine::with_main(main.clone(), EngineConfig::default(), &device).expect("engine");
    let want = run(&greedy, &items, 8);
    for (draft, length, batch) in drafts {
        let cfg = EngineConfig {
            draft: draft.parse::<DraftSpec>().expect("spec"),
            draft_length: length.clone(),
        };
        let engine = Engine::with_main(main.clone(), cfg, &device).expect("engine");
        let got = run(&engine, &items, *batch);
        let (drafted, accepted): (usize, usize) =
            got.iter().fold((0, 0), |a, g| (a.0 + g.1, a.1 + g.2));
        let identical = got.iter().zip(&want).filter(|(g, w)| g.0 == w.0).count();
        for ((id, _), (g, w)) in items.iter().zip(got.iter().zip(&want)) {
            if g.0 != w.0 {
                eprintln!(
                    "{model} {draft} {id}: differs\n  greedy {:?}\n  spec   {:?}",
                    w.0, g.0
                );
            }
        }
        eprintln!("{model} {draft} {length:?} batch {batch}: {identical}/40 identical, acceptance {accepted}/{drafted}");
        assert_eq!(
            identical, 40,
            "{model} with {draft}: speculative output differs from greedy"
        );
        assert!(
            drafted > 0 && accepted * 2 > drafted,
            "{model} {draft}: acceptance {accepted}/{drafted} is implausibly low"
        );
    }
}

#[test]
fn base_self_drafts_equal_greedy_on_quick40() {
    check(
        "base",
        &[
            ("self-q8", DraftLength::default(), 1),
            ("self-q4", DraftLength::Fixed(5), 8),
        ],
    );
}

#[test]
fn tiny_en_self_q4_equals_greedy_on_quick40() {
    check("tiny.en", &[("self-q4", DraftLength::default(), 4)]);
}

#[test]
fn tiny_en_speculative_sampling_equals_plain_sampling() {
    let main = load("tiny.en");
    let items: Vec<(String, Vec<f32>)> = quick40().into_iter().take(16).collect();
    let device = Default::default();
    let opts = DecodeOptions {
        language: Some("en".into()),
        temperature: 0.7,
        seed: 3,
        ..Default::default()
    };
    let plain = run_with(
        &Engine::with_main(main.clone(), EngineConfig::default(), &device).expect("engine"),
        &items,
        4,
        &opts,
    );
    let greedy = run(
        &Engine::with_main(main.clone(), EngineConfig::default(), &device).expect("engine"),
        &items,
        4,
    );
    let changed = plain
        .iter()
        .zip(&greedy)
        .filter(|(p, g)| p.0 != g.0)
        .count();
    assert!(
        changed > 0,
        "sampling at 0.7 changed no transcript: is the temperature applied?"
    );
    for draft in ["self-q8", "self-q4"] {
        let cfg = EngineConfig {
            draft: draft.parse::<DraftSpec>().expect("spec"),
            draft_length: DraftLength::default(),
        };
        let got = run_with(
            &Engine::with_main(main.clone(), cfg, &device).expect("engine"),
            &items,
            4,
            &opts,
        );
        let identical = got.iter().zip(&plain).filter(|(g, p)| g.0 == p.0).count();
        let (drafted, accepted): (usize, usize) =
            got.iter().fold((0, 0), |a, g| (a.0 + g.1, a.1 + g.2));
        eprintln!("tiny.en {draft} T=0.7: {identical}/16 identical to plain sampling ({changed} differ from greedy), acceptance {accepted}/{drafted}");
        assert_eq!(
            identical, 16,
            "{draft}: speculative sampling differs from plain sampling"
        );
        assert!(
            accepted * 2 > drafted,
            "{draft}: acceptance {accepted}/{drafted} is implausibly low"
        );
    }
}

#[test]
fn words_with_a_draft_are_greedy_words_in_batches_and_long_form() {
    let main = load("tiny.en");
    let device = Default::default();
    let mut items: Vec<(String, Vec<f32>)> = quick40().into_iter().take(6).collect();
    let long = audio::load_audio_file(&Path::new(SHARED).join("data/longform/1089-134686.flac"))
        .expect("audio");
    items.push(("1089-134686-70s".into(), long[..70 * 16_000].to_vec()));
    let opts = DecodeOptions {
        language: Some("en".into()),
        timestamps: true,
        word_timestamps: true,
        ..Default::default()
    };
    let transcribe = |draft: &str, batch: usize| {
        let cfg = EngineConfig {
            draft: draft.parse::<DraftSpec>().expect("spec"),
            draft_length: DraftLength::default(),
        };
        let engine = Engine::with_main(main.clone(), cfg, &device).expect("engine");
        let mut out = Vec::new();
        for chunk in items.chunks(batch) {
            let refs: Vec<&[f32]> = chunk.iter().map(|(_, a)| a.as_slice()).collect();
            out.extend(engine.transcribe_batch(&refs, &opts).expect("transcribe"));
        }
        out
    };
    let greedy = transcribe("none", 1);
    let words: usize = greedy
        .iter()
        .flat_map(|t| &t.segments)
        .map(|s| s.words.len())
        .sum();
    assert!(words > 150, "only {words} words");
    for (draft, batch) in [("self-q8", 4), ("self-q4", 1)] {
        let got = transcribe(draft, batch);
        for ((id, _), (g, want)) in items.iter().zip(got.iter().zip(&greedy)) {
            assert_eq!(
                g.segments, want.segments,
                "{id}: {draft} batch {batch} changed the segments or words"
            );
        }
        assert!(
            got.iter().map(|t| t.drafted).sum::<usize>() > 0,
            "{draft} drafted nothing"
        );
    }
}

#[test]
fn vad_batched_pipeline_with_a_draft_is_the_greedy_pipeline() {
    use whisper_burn::vad::{batched_vad_options, transcribe_chunked, SileroVad};
    let main = load("tiny.en");
    let device = Default::default();
    let vad_path = Path::new(ROOT).join(whisper_burn::vad::DEFAULT_MODEL_PATH);
    let vad = SileroVad::load(&vad_path).expect("silero vad: run `bash weights/fetch.sh`");
    let chapter = audio::load_audio_file(&Path::new(SHARED).join("data/longform/1089-134686.flac"))
        .expect("audio");
    let audio = &chapter[..100 * 16_000];
    let opts = DecodeOptions {
        language: Some("en".into()),
        timestamps: true,
        condition_on_previous_text: false,
        ..Default::default()
    };
    let run = |draft: &str| {
        let cfg = EngineConfig {
            draft: draft.parse::<DraftSpec>().expect("spec"),
            draft_length: DraftLength::default(),
        };
        let engine = Engine::with_main(main.clone(), cfg, &device).expect("engine");
        transcribe_chunked(&vad, &batched_vad_options(), audio, 4, |groups| {
            engine.transcribe_batch(groups, &opts)
        })
        .expect("batched pipeline")
    };
    let greedy = run("none");
    assert!(greedy.windows >= 4, "{} windows", greedy.windows);
    // In order; a segment may start a little before the previous one's end (the model's
    // end timestamp can run past the speech its group ends with).
    let mut last_end = 0.0;
    for s in &greedy.segments {
        assert!(
            s.start_s >= last_end - 0.5 && s.start_s <= s.end_s && s.end_s <= 101.0,
            "segments out of order: {s:?} after {last_end}"
        );
        last_end = s.end_s;
    }
    let sequential = main
        .transcribe(audio, &opts, &mut whisper_burn::GreedyDecoder)
        .expect("sequential");
    let words = |t: &str| t.split_whitespace().count();
    let (a, b) = (words(&greedy.text), words(&sequential.text));
    assert!(
        a.abs_diff(b) * 20 < b,
        "batched {a} words vs sequential {b}: words lost at group boundaries?"
    );
    let drafted = run("self-q8");
    assert_eq!(
        drafted.segments, greedy.segments,
        "self-q8 changed the batched pipeline's output"
    );
    assert!(drafted.drafted > 0);
}
