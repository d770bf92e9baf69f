//! Tests of the model-independent benchmark parts: normaliser, WER, data
//! sets, summaries and report writers, plots.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use whisper_bench::dataset::{load_dataset, DatasetError, Utterance};
use whisper_bench::normalizer::normalize_english;
use whisper_bench::plots::{
    acceptance_histogram, beam_plot, latency_vs_wer, speedup_per_draft, PlotError,
};
use whisper_bench::report::{
    beam_markdown, csv_field, percentile_nearest_rank, results_csv, summarize, summary_markdown,
    write_beam_md, write_results_csv, write_summary_json, write_summary_md, BeamPoint,
    ConfigSummary, RunInfo, UtteranceResult, RESULTS_CSV_HEADER,
};
use whisper_bench::wer::{corpus_wer, word_errors, WerStats};

/// A fresh, empty directory under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "whisper-bench-{name}-{}-{nanos}",
        std::process::id()
    ));
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn touch(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, b"not really audio").unwrap();
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

// ---------------------------------------------------------------------------
// normaliser

/// (input, expected) pairs derived from the reference normaliser's rules;
/// every expected value was checked against the reference implementation.
const NORMALIZER_CASES: &[(&str, &str)] = &[
    // case, punctuation, whitespace
    ("Hello, World!", "hello world"),
    ("HELLO   world", "hello world"),
    (
        "rock-and-roll, e-mail; well... yes?",
        "rock and roll e mail well yes",
    ),
    // bracketed and parenthesised text, fillers
    ("[MUSIC] hello <unk> world (laughs)", "hello world"),
    ("Um, I uh think so, hmm.", "i think so"),
    // contractions and spoken forms
    ("I won't go", "i will not go"),
    ("I can't go", "i can not go"),
    ("Let's go", "let us go"),
    ("y'all gonna wanna see", "you all going to want to see"),
    ("She ain't here", "she aint here"),
    ("Yes ma'am", "yes madam"),
    (
        "I'd been there and she's been here",
        "i had been there and she has been here",
    ),
    ("He's got it", "he has got it"),
    (
        "They're sure we've done it and I'm glad",
        "they are sure we have done it and i am glad",
    ),
    (
        "It isn't what you'll think, it's what he'd do",
        "it is not what you will think it is what he would do",
    ),
    ("it 's fine", "it is fine"),
    // titles
    ("Mr. Smith and Mrs. Jones", "mister smith and missus jones"),
    ("Dr. Who met St. Peter", "doctor who met saint peter"),
    (
        "Prof. Lee, Capt. Kirk, Gen. Grant and Lt. Dan",
        "professor lee captain kirk general grant and lieutenant dan",
    ),
    // spelled-out numbers
    ("twenty one", "21"),
    ("twenty-one", "21"),
    ("one hundred and five", "105"),
    ("a hundred and one", "a 101"),
    ("two thousand and twenty", "2020"),
    ("nineteen ninety nine", "1999"),
    ("seven eleven", "711"),
    ("one oh one", "101"),
    ("double five", "55"),
    ("three point one four", "3.14"),
    ("three and a half", "3.5"),
    ("half a million", "500000"),
    // ordinals and plurals
    ("twenty first", "21st"),
    ("the nineteen sixties", "the 1960s"),
    ("the twenty twenties", "the 2020s"),
    (
        "the 1st and 2nd of the 1960s",
        "the 1st and 2nd of the 1960s",
    ),
    ("he was the ninth man", "he was the ninth man"),
    // currency, percent, signs
    ("twenty dollars", "$20"),
    ("$20 million", "$20000000"),
    ("$2 and 7 cents", "$2.07"),
    ("five dollars and fifty cents", "$5.50"),
    ("$0.07", "¢7"),
    ("ten percent", "10%"),
    ("ten per cent", "10%"),
    ("50 %", "50%"),
    ("minus five", "-5"),
    // written numbers
    ("1,000,000 people", "1000000 people"),
    ("it was 5.0 degrees", "it was 5 degrees"),
    ("in 2001, 2002", "in 2001 2002"),
    ("2kg of flour", "2 kg of flour"),
    ("one", "one"),
    ("it is 1.5 metres", "it is one.5 meters"),
    // British -> American spelling
    (
        "The colour of the theatre's centre",
        "the color of the theater is center",
    ),
    (
        "We realised the organisation analysed it",
        "we realized the organization analyzed it",
    ),
    (
        "He travelled to the grey neighbourhood",
        "he traveled to the gray neighborhood",
    ),
    (
        "a catalogue of defence programmes",
        "a catalog of defense programs",
    ),
    // diacritics
    ("café naïve résumé", "cafe naive resume"),
    ("Straße and Œuvre", "strasse and oeuvre"),
    // degenerate inputs
    ("", ""),
    ("wait.. what", "wait what"),
    // the reference keeps a lone "." left over from an ellipsis with nothing after it
    ("  ...  ", "."),
];

#[test]
fn normalizer_table() {
    assert!(NORMALIZER_CASES.len() >= 30);
    let mut failures = Vec::new();
    for (input, expected) in NORMALIZER_CASES {
        let got = normalize_english(input);
        if got != *expected {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "normaliser mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn normalizer_is_idempotent_on_librispeech_style_text() {
    let once = normalize_english("FORTHWITH ALL RAN TO THE OPENING OF THE TENT");
    assert_eq!(once, "forthwith all ran to the opening of the tent");
    assert_eq!(normalize_english(&once), once);
}

// ---------------------------------------------------------------------------
// WER

fn counts(s: &WerStats) -> (usize, usize, usize) {
    (s.substitutions, s.deletions, s.insertions)
}

#[test]
fn wer_insertions() {
    let s = word_errors("a b", "a x b y");
    assert_eq!(counts(&s), (0, 0, 2));
    assert_eq!((s.ref_words, s.hyp_words), (2, 4));
    assert!(close(s.wer(), 1.0));
}

#[test]
fn wer_deletions() {
    let s = word_errors("a b c d", "a d");
    assert_eq!(counts(&s), (0, 2, 0));
    assert!(close(s.wer(), 0.5));
}

#[test]
fn wer_substitutions() {
    let s = word_errors("a b c", "a x y");
    assert_eq!(counts(&s), (2, 0, 0));
    assert!(close(s.wer(), 2.0 / 3.0));
}

#[test]
fn wer_mixed() {
    // b->x substituted, d deleted, g inserted: 3 edits (all-substitution costs 4)
    let s = word_errors("a b c d e f", "a x c e f g");
    assert_eq!(counts(&s), (1, 1, 1));
    assert_eq!(s.errors(), 3);
    assert!(close(s.wer(), 0.5));
    // more errors than reference words
    let s = word_errors("yes", "no no no");
    assert_eq!(counts(&s), (1, 0, 2));
    assert!(close(s.wer(), 3.0));
}

#[test]
fn wer_empty_reference() {
    let s = word_errors("", "");
    assert_eq!(s, WerStats::default());
    assert_eq!(s.wer(), 0.0);
    let s = word_errors("  ", "uh huh");
    assert_eq!(counts(&s), (0, 0, 2));
    assert_eq!(s.ref_words, 0);
    assert!(close(s.wer(), 2.0), "one per inserted word");
}

#[test]
fn wer_empty_hypothesis() {
    let s = word_errors("the cat sat", "");
    assert_eq!(counts(&s), (0, 3, 0));
    assert!(close(s.wer(), 1.0));
}

#[test]
fn wer_add_and_corpus() {
    let mut total = word_errors("a b c d", "a b c d");
    total.add(&word_errors("a b", "a"));
    assert_eq!(
        total,
        WerStats {
            substitutions: 0,
            deletions: 1,
            insertions: 0,
            ref_words: 6,
            hyp_words: 5
        }
    );
    assert!(close(total.wer(), 1.0 / 6.0));

    let pairs = [("a b c d", "a b c d"), ("a b", "a")];
    assert_eq!(corpus_wer(pairs.iter().copied(), false), total);
    // corpus WER is not the mean of per-utterance WERs (that would be 0.25)
    assert!(!close(corpus_wer(pairs.iter().copied(), false).wer(), 0.25));
}

#[test]
fn corpus_wer_normalizes_when_asked() {
    let pairs = [
        ("Hello, World!", "hello world"),
        ("Mr. Smith won't go.", "mister smith will not go"),
    ];
    let raw = corpus_wer(pairs.iter().copied(), false);
    // Hello, World! Mr. Smith won't go. substituted, "not" inserted
    assert_eq!(
        (raw.substitutions, raw.deletions, raw.insertions),
        (6, 0, 1)
    );
    assert_eq!(raw.ref_words, 6);
    let norm = corpus_wer(pairs.iter().copied(), true);
    assert_eq!(norm.errors(), 0);
    assert_eq!(norm.ref_words, 7); // hello world mister smith will not go
}

// ---------------------------------------------------------------------------
// data sets

#[test]
fn dataset_librispeech_layout() {
    let dir = temp_dir("libri");
    let chapter = dir.join("LibriSpeech/test-clean/19/198");
    fs::create_dir_all(&chapter).unwrap();
    fs::write(
        chapter.join("19-198.trans.txt"),
        "19-198-0001 SECOND LINE\n19-198-0000 FIRST LINE HERE\n",
    )
    .unwrap();
    touch(&chapter.join("19-198-0000.flac"));
    touch(&chapter.join("19-198-0001.flac"));
    let other = dir.join("LibriSpeech/test-clean/2/30");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("2-30.trans.txt"), "2-30-0004 ANOTHER ONE\n\n").unwrap();
    touch(&other.join("2-30-0004.flac"));

    for start in [
        dir.clone(),
        dir.join("LibriSpeech"),
        dir.join("LibriSpeech/test-clean"),
    ] {
        let utts = load_dataset(&start, None, None).unwrap();
        let ids: Vec<&str> = utts.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["19-198-0000", "19-198-0001", "2-30-0004"]);
        assert_eq!(utts[0].reference.as_deref(), Some("FIRST LINE HERE"));
        assert_eq!(utts[1].reference.as_deref(), Some("SECOND LINE"));
        assert_eq!(utts[2].path, other.join("2-30-0004.flac"));
    }
    let limited = load_dataset(&dir, None, Some(2)).unwrap();
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[1].id, "19-198-0001");

    // a transcript line whose audio is missing is an error
    fs::write(
        other.join("2-30.trans.txt"),
        "2-30-0004 ANOTHER ONE\n2-30-0005 MISSING\n",
    )
    .unwrap();
    match load_dataset(&dir, None, None) {
        Err(DatasetError::MissingAudio { id, .. }) => assert_eq!(id, "2-30-0005"),
        other => panic!("expected MissingAudio, got {other:?}"),
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dataset_tsv_manifest() {
    let dir = temp_dir("tsv");
    touch(&dir.join("audio/x.wav"));
    touch(&dir.join("audio/y.flac"));
    let manifest = dir.join("set.tsv");
    fs::write(
        &manifest,
        "id\tpath\tduration_s\ttranscript\nutt-b\taudio/y.flac\t1.5\tSECOND ONE\nutt-a\taudio/x.wav\t2.0\tFIRST\n",
    )
    .unwrap();
    let utts = load_dataset(&manifest, None, None).unwrap();
    assert_eq!(
        utts,
        vec![
            Utterance {
                id: "utt-b".into(),
                path: dir.join("audio/y.flac"),
                reference: Some("SECOND ONE".into())
            },
            Utterance {
                id: "utt-a".into(),
                path: dir.join("audio/x.wav"),
                reference: Some("FIRST".into())
            },
        ],
        "manifest order is kept"
    );
    assert_eq!(load_dataset(&manifest, None, Some(1)).unwrap().len(), 1);

    // explicit root, no transcript column
    let elsewhere = dir.join("elsewhere.tsv");
    fs::write(&elsewhere, "path\tid\nx.wav\tonly\n").unwrap();
    let utts = load_dataset(&elsewhere, Some(&dir.join("audio")), None).unwrap();
    assert_eq!(
        utts,
        vec![Utterance {
            id: "only".into(),
            path: dir.join("audio/x.wav"),
            reference: None
        }]
    );
    // default root falls back to the subdirectory holding the audio
    let utts = load_dataset(&elsewhere, None, None).unwrap();
    assert_eq!(utts[0].path, dir.join("audio/x.wav"));

    let no_path = dir.join("bad.tsv");
    fs::write(&no_path, "id\tfile\nq\tx.wav\n").unwrap();
    assert!(matches!(
        load_dataset(&no_path, None, None),
        Err(DatasetError::MissingColumn { column: "path", .. })
    ));
    let missing = dir.join("missing.tsv");
    fs::write(&missing, "id\tpath\nq\tnope.wav\n").unwrap();
    assert!(matches!(
        load_dataset(&missing, None, None),
        Err(DatasetError::MissingAudio { .. })
    ));
    let dup = dir.join("dup.tsv");
    fs::write(&dup, "id\tpath\nq\taudio/x.wav\nq\taudio/y.flac\n").unwrap();
    assert!(matches!(
        load_dataset(&dup, None, None),
        Err(DatasetError::DuplicateId { .. })
    ));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dataset_audio_folder() {
    let dir = temp_dir("folder");
    for f in ["b.FLAC", "a.wav", "sub/c.mp3", "d.ogg", "e.opus", "f.m4a"] {
        touch(&dir.join(f));
    }
    fs::write(dir.join("notes.txt"), "not audio").unwrap();
    let utts = load_dataset(&dir, None, None).unwrap();
    let ids: Vec<&str> = utts.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "d", "e", "f", "sub/c"]);
    assert!(utts.iter().all(|u| u.reference.is_none()));
    assert_eq!(utts[5].path, dir.join("sub/c.mp3"));
    // a single file
    let one = load_dataset(&dir.join("a.wav"), None, None).unwrap();
    assert_eq!(
        one,
        vec![Utterance {
            id: "a".into(),
            path: dir.join("a.wav"),
            reference: None
        }]
    );

    let empty = temp_dir("empty");
    assert!(matches!(
        load_dataset(&empty, None, None),
        Err(DatasetError::Empty { .. })
    ));
    assert!(matches!(
        load_dataset(&empty.join("nope"), None, None),
        Err(DatasetError::NotFound { .. })
    ));
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_dir_all(&empty).unwrap();
}

const SHARED_LIBRISPEECH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/librispeech"
);

#[test]
fn dataset_real_librispeech() {
    let base = Path::new(SHARED_LIBRISPEECH);
    if !base.join("eval_200.tsv").is_file() {
        eprintln!("skipping: {} not present", base.display());
        return;
    }
    let manifest = load_dataset(&base.join("eval_200.tsv"), None, None).unwrap();
    assert_eq!(manifest.len(), 200);
    assert_eq!(manifest[0].id, "61-70968-0010");
    assert!(manifest[0]
        .path
        .ends_with("LibriSpeech/test-clean/61/70968/61-70968-0010.flac"));
    assert_eq!(
        manifest[0].reference.as_deref(),
        Some("FORTHWITH ALL RAN TO THE OPENING OF THE TENT TO SEE WHAT MIGHT BE AMISS BUT MASTER WILL WHO PEEPED OUT FIRST NEEDED NO MORE THAN ONE GLANCE")
    );
    assert_eq!(
        manifest[1].reference.as_deref(),
        Some("SILENCE YOU KNAVE CRIED MONTFICHET")
    );
    assert!(manifest.iter().all(|u| u.path.is_file()));

    let quick = load_dataset(&base.join("eval_quick_40.tsv"), None, None).unwrap();
    assert_eq!(quick.len(), 40);
    assert_eq!(quick[0].id, "61-70968-0052");

    let with_root = load_dataset(
        &base.join("eval_200.tsv"),
        Some(&base.join("LibriSpeech")),
        Some(5),
    )
    .unwrap();
    assert_eq!(with_root.len(), 5);
    assert_eq!(with_root[..], manifest[..5]);

    // the directory layout gives the same utterances and transcripts, sorted by id
    let tree = load_dataset(&base.join("LibriSpeech"), None, None).unwrap();
    assert_eq!(tree.len(), 200);
    assert!(tree.windows(2).all(|w| w[0].id < w[1].id));
    let mut sorted = manifest.clone();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    for (t, m) in tree.iter().zip(&sorted) {
        assert_eq!(t.id, m.id);
        assert_eq!(t.reference, m.reference);
        assert_eq!(
            fs::canonicalize(&t.path).unwrap(),
            fs::canonicalize(&m.path).unwrap()
        );
    }
}

// ---------------------------------------------------------------------------
// summaries and writers

#[allow(clippy::too_many_arguments)]
fn result(
    config: &str,
    id: &str,
    audio_s: f64,
    latency_s: f64,
    decode_s: f64,
    n_tokens: usize,
    drafted: usize,
    accepted: usize,
    main_passes: usize,
    text: &str,
    reference: &str,
    identical: Option<bool>,
) -> UtteranceResult {
    UtteranceResult {
        config: config.into(),
        device: "cpu".into(),
        id: id.into(),
        audio_s,
        latency_s,
        decode_s,
        n_tokens,
        drafted,
        accepted,
        main_passes,
        text: text.into(),
        reference: Some(reference.into()),
        identical_to_baseline: identical,
    }
}

fn sample_results() -> Vec<UtteranceResult> {
    vec![
        result(
            "greedy",
            "a",
            2.0,
            1.0,
            0.5,
            10,
            0,
            0,
            10,
            "The cat sat.",
            "THE CAT SAT",
            None,
        ),
        result(
            "greedy",
            "b",
            4.0,
            2.0,
            1.0,
            20,
            0,
            0,
            20,
            "on the mat",
            "ON THE MAT",
            None,
        ),
        result(
            "greedy",
            "c",
            6.0,
            3.0,
            1.5,
            30,
            0,
            0,
            30,
            "hello word",
            "HELLO WORLD",
            None,
        ),
        result(
            "spec",
            "a",
            2.0,
            0.5,
            0.25,
            10,
            8,
            6,
            4,
            "the cat sat",
            "THE CAT SAT",
            Some(true),
        ),
        result(
            "spec",
            "b",
            4.0,
            1.0,
            0.5,
            20,
            16,
            12,
            8,
            "on a mat",
            "ON THE MAT",
            Some(true),
        ),
        result(
            "spec",
            "c",
            6.0,
            2.0,
            1.0,
            30,
            16,
            12,
            10,
            "hello world",
            "HELLO WORLD",
            Some(false),
        ),
        result(
            "spec-partial",
            "a",
            2.0,
            0.5,
            0.25,
            10,
            4,
            4,
            6,
            "the cat sat",
            "THE CAT SAT",
            Some(true),
        ),
        result(
            "spec-partial",
            "b",
            4.0,
            0.5,
            0.25,
            20,
            4,
            0,
            20,
            "on the mat",
            "ON THE MAT",
            Some(true),
        ),
    ]
}

#[test]
fn percentiles_nearest_rank() {
    let v: Vec<f64> = (1..=20).map(f64::from).collect();
    assert_eq!(percentile_nearest_rank(&v, 50.0), 10.0);
    assert_eq!(percentile_nearest_rank(&v, 95.0), 19.0);
    assert_eq!(percentile_nearest_rank(&v, 100.0), 20.0);
    assert_eq!(percentile_nearest_rank(&v, 0.0), 1.0);
    assert_eq!(percentile_nearest_rank(&[3.0, 7.0, 9.0], 50.0), 7.0);
    assert_eq!(percentile_nearest_rank(&[], 50.0), 0.0);
}

#[test]
fn summarize_hand_computed() {
    let s = summarize(&sample_results(), Some("greedy"));
    assert_eq!(s.len(), 3);
    let (g, sp, part) = (&s[0], &s[1], &s[2]);

    assert_eq!(
        (g.config.as_str(), g.device.as_str(), g.n_utterances),
        ("greedy", "cpu", 3)
    );
    assert!(close(g.wer.unwrap(), 1.0 / 8.0), "{:?}", g.wer); // word vs world
    assert!(close(g.mean_latency_s, 2.0));
    assert!(close(g.p50_latency_s, 2.0));
    assert!(close(g.p95_latency_s, 3.0));
    assert!(close(g.rtf, 0.5));
    assert!(close(g.tokens_per_s, 20.0));
    assert_eq!(g.acceptance_rate, None);
    assert_eq!(g.mean_accepted_per_main_pass, None);
    assert!(close(g.speedup_vs_baseline.unwrap(), 1.0));
    assert_eq!(g.all_identical_to_baseline, None);
    assert_eq!(g.load_s, 0.0);

    assert!(close(sp.wer.unwrap(), 1.0 / 8.0)); // the vs a
    assert!(close(sp.mean_latency_s, 3.5 / 3.0));
    assert!(close(sp.p50_latency_s, 1.0));
    assert!(close(sp.p95_latency_s, 2.0));
    assert!(close(sp.rtf, 3.5 / 12.0));
    assert!(close(sp.tokens_per_s, 60.0 / 1.75));
    assert!(close(sp.acceptance_rate.unwrap(), 0.75));
    assert!(close(sp.mean_accepted_per_main_pass.unwrap(), 30.0 / 22.0));
    assert!(close(sp.speedup_vs_baseline.unwrap(), 6.0 / 3.5));
    assert_eq!(sp.all_identical_to_baseline, Some(false));

    // speed-up only over the ids both ran: (1 + 2) / (0.5 + 0.5)
    assert!(close(part.speedup_vs_baseline.unwrap(), 3.0));
    assert_eq!(part.wer, Some(0.0));
    assert!(close(part.acceptance_rate.unwrap(), 0.5));
    assert_eq!(part.all_identical_to_baseline, Some(true));

    // without a baseline, or with one that is not there
    assert!(summarize(&sample_results(), None)
        .iter()
        .all(|c| c.speedup_vs_baseline.is_none()));
    assert!(summarize(&sample_results(), Some("nope"))
        .iter()
        .all(|c| c.speedup_vs_baseline.is_none()));
    // no references: no WER
    let mut no_ref = sample_results();
    no_ref.iter_mut().for_each(|r| r.reference = None);
    assert!(summarize(&no_ref, None).iter().all(|c| c.wer.is_none()));
}

#[test]
fn csv_quoting() {
    assert_eq!(csv_field("plain"), "plain");
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");

    let mut results = sample_results();
    results.truncate(1);
    results[0].text = "Well, he said \"no\".".into();
    results[0].reference = None;
    let csv = results_csv(&results);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], RESULTS_CSV_HEADER);
    assert_eq!(
        lines[1],
        "greedy,cpu,a,2,1,0.5,10,0,0,10,\"Well, he said \"\"no\"\".\",,"
    );
    assert_eq!(lines.len(), 2);

    let dir = temp_dir("csv");
    let path = dir.join("nested/results.csv");
    write_results_csv(&path, &results).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), csv);
    fs::remove_dir_all(&dir).unwrap();
}

fn run_info() -> RunInfo {
    RunInfo {
        command: "whisper-bench bench --data eval_200.tsv".into(),
        commit: "abc1234".into(),
        device: "cpu (ndarray)".into(),
        date: "2026-01-02T03:04:05Z".into(),
    }
}

#[test]
fn summary_writers() {
    let mut summaries = summarize(&sample_results(), Some("greedy"));
    summaries[0].load_s = 1.25;
    summaries[2].rtf = f64::NAN;
    let dir = temp_dir("summary");

    let json_path = dir.join("summary.json");
    write_summary_json(&json_path, &run_info(), &summaries).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(v["run"]["commit"], "abc1234");
    assert_eq!(v["summaries"].as_array().unwrap().len(), 3);
    assert_eq!(v["summaries"][0]["config"], "greedy");
    assert_eq!(v["summaries"][0]["load_s"], 1.25);
    assert_eq!(
        v["summaries"][0]["acceptance_rate"],
        serde_json::Value::Null
    );
    assert_eq!(v["summaries"][1]["acceptance_rate"], 0.75);
    assert_eq!(v["summaries"][1]["all_identical_to_baseline"], false);
    assert_eq!(
        v["summaries"][2]["rtf"],
        serde_json::Value::Null,
        "NaN is written as null"
    );

    let md = summary_markdown(&run_info(), &summaries);
    assert!(md.contains("- command: `whisper-bench bench --data eval_200.tsv`"));
    assert!(md.contains("- commit: `abc1234`"));
    assert!(md.contains("- device: cpu (ndarray)"));
    assert!(md.contains("- date: 2026-01-02T03:04:05Z"));
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 4, "header + 3 configs");
    assert_eq!(rows[1], "| greedy | cpu | 3 | 12.50 | 2.000 | 2.000 | 3.000 | 0.500 | 20.0 | – | – | 1.00× | – | 1.25 |");
    assert_eq!(rows[2], "| spec | cpu | 3 | 12.50 | 1.167 | 1.000 | 2.000 | 0.292 | 34.3 | 75.0 | 1.36 | 1.71× | no | 0.00 |");
    let md_path = dir.join("summary.md");
    write_summary_md(&md_path, &run_info(), &summaries).unwrap();
    assert_eq!(fs::read_to_string(&md_path).unwrap(), md);

    let points = vec![
        BeamPoint {
            model: "tiny".into(),
            beam_size: 5,
            wer: 0.042,
            mean_latency_s: 0.1234,
        },
        BeamPoint {
            model: "base|x".into(),
            beam_size: 1,
            wer: 0.05,
            mean_latency_s: 0.5,
        },
    ];
    let beam = beam_markdown(&points);
    assert!(beam.contains("| tiny | 5 | 4.20 | 0.123 |"));
    assert!(beam.contains("| base\\|x | 1 | 5.00 | 0.500 |"));
    let beam_path = dir.join("beam.md");
    write_beam_md(&beam_path, &run_info(), &points).unwrap();
    let doc = fs::read_to_string(&beam_path).unwrap();
    assert!(doc.contains("- commit: `abc1234`") && doc.contains("| tiny | 5 | 4.20 | 0.123 |"));
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// plots

fn assert_png_and_svg(stem: &Path, expect_text: &str) {
    let png = fs::read(stem.with_extension("png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 5_000,
        "PNG suspiciously small: {} bytes",
        png.len()
    );
    let svg = fs::read_to_string(stem.with_extension("svg")).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "not an SVG: {}",
        &svg[..svg.len().min(80)]
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains(expect_text), "SVG lacks {expect_text:?}");
}

fn summaries_for_plots() -> Vec<ConfigSummary> {
    summarize(&sample_results(), Some("greedy"))
}

#[test]
fn plot_latency_vs_wer() {
    let dir = temp_dir("plot-lw");
    let stem = dir.join("latency_vs_wer");
    latency_vs_wer(&summaries_for_plots(), &stem).unwrap();
    assert_png_and_svg(&stem, "spec-partial");
    let mut none = summaries_for_plots();
    none.iter_mut().for_each(|s| s.wer = None);
    assert!(matches!(
        latency_vs_wer(&none, &dir.join("x")),
        Err(PlotError::NoData(_))
    ));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plot_speedup_per_draft() {
    let dir = temp_dir("plot-sp");
    let stem = dir.join("sub/speedup");
    speedup_per_draft(&summaries_for_plots(), &stem).unwrap();
    assert_png_and_svg(&stem, "acc 75%");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plot_acceptance_histogram() {
    let dir = temp_dir("plot-hist");
    let stem = dir.join("acceptance");
    acceptance_histogram(&[0, 1, 1, 2, 3, 3, 3, 4, 4, 4, 4, 2], &stem).unwrap();
    assert_png_and_svg(&stem, "accepted tokens");
    assert!(matches!(
        acceptance_histogram(&[], &dir.join("x")),
        Err(PlotError::NoData(_))
    ));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plot_beam() {
    let dir = temp_dir("plot-beam");
    let stem = dir.join("beam");
    let points: Vec<BeamPoint> = [("tiny.en", 0.061, 0.20), ("base", 0.045, 0.45)]
        .iter()
        .flat_map(|(model, wer, lat)| {
            [1usize, 2, 5].into_iter().map(move |b| BeamPoint {
                model: model.to_string(),
                beam_size: b,
                wer: wer - 0.002 * b as f64,
                mean_latency_s: lat * (1.0 + 0.3 * b as f64),
            })
        })
        .collect();
    beam_plot(&points, &stem).unwrap();
    assert_png_and_svg(&stem, "tiny.en");
    fs::remove_dir_all(&dir).unwrap();
}
