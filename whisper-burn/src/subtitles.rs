//! Transcript files in the formats the `whisper` CLI writes (`txt`, `srt`, `vtt`, `tsv`,
//! `json`); the one implementation of these rules, shared by the CLI and the server.
use crate::{Segment, Transcript};
use std::fmt::Write as _;

/// A transcript file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubtitleFormat {
    Txt,
    Srt,
    Vtt,
    Tsv,
    Json,
}

impl SubtitleFormat {
    pub const ALL: [SubtitleFormat; 5] = [
        SubtitleFormat::Txt,
        SubtitleFormat::Srt,
        SubtitleFormat::Vtt,
        SubtitleFormat::Tsv,
        SubtitleFormat::Json,
    ];

    /// The file extension, which is also the name on the command line.
    pub fn extension(self) -> &'static str {
        match self {
            SubtitleFormat::Txt => "txt",
            SubtitleFormat::Srt => "srt",
            SubtitleFormat::Vtt => "vtt",
            SubtitleFormat::Tsv => "tsv",
            SubtitleFormat::Json => "json",
        }
    }

    /// Whether the format carries segment times (decoding must predict timestamps).
    pub fn needs_timestamps(self) -> bool {
        !matches!(self, SubtitleFormat::Txt)
    }

    /// The file's content for a transcript: one cue per segment.
    pub fn render(self, t: &Transcript) -> String {
        self.render_with(t, &CueOptions::default())
    }

    /// The file's content, with subtitle cues as `cues` asks (words regrouped when the
    /// segments have words).
    pub fn render_with(self, t: &Transcript, cues: &CueOptions) -> String {
        let regrouped;
        let segments = match cues.max_words_per_line {
            Some(n) if self != SubtitleFormat::Json => {
                regrouped = word_cues(&t.segments, n);
                &regrouped
            }
            _ => &t.segments,
        };
        match self {
            SubtitleFormat::Txt => to_text(&t.text),
            SubtitleFormat::Srt => to_srt(segments),
            SubtitleFormat::Vtt => to_vtt(segments),
            SubtitleFormat::Tsv => to_tsv(segments),
            SubtitleFormat::Json => to_json(t),
        }
    }
}

/// How subtitle cues are cut.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CueOptions {
    /// Cues of at most this many words, timed by their words, never across a segment
    /// (openai-whisper's `--max_words_per_line`; 1 gives one cue per word). Segments
    /// without words keep their one cue.
    pub max_words_per_line: Option<usize>,
}

/// Each segment's words in groups of at most `n`, as segments timed by their words.
fn word_cues(segments: &[Segment], n: usize) -> Vec<Segment> {
    let n = n.max(1);
    let mut out = Vec::new();
    for s in segments {
        if s.words.is_empty() {
            out.push(s.clone());
            continue;
        }
        for group in s.words.chunks(n) {
            let text: String = group.iter().map(|w| w.word.as_str()).collect();
            out.push(Segment {
                start_s: group[0].start_s,
                end_s: group[group.len() - 1].end_s,
                text,
                tokens: Vec::new(),
                words: group.to_vec(),
            });
        }
    }
    out
}

impl std::str::FromStr for SubtitleFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|f| f.extension() == s)
            .ok_or_else(|| {
                format!("unknown output format `{s}`: use txt, srt, vtt, tsv, json or all")
            })
    }
}

/// `HH:MM:SS<sep>mmm`
pub fn timestamp(seconds: f64, decimal_sep: char) -> String {
    let ms_total = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, rem) = (ms_total / 3_600_000, ms_total % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1000, rem % 1000);
    format!("{h:02}:{m:02}:{s:02}{decimal_sep}{ms:03}")
}

/// A cue's text: trimmed, and never containing the cue arrow.
fn cue_text(text: &str) -> String {
    text.trim().replace("-->", "->")
}

/// SubRip: numbered cues, `00:00:01,000 --> 00:00:02,500`.
pub fn to_srt(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(s.start_s as f64, ','),
            timestamp(s.end_s as f64, ','),
            cue_text(&s.text)
        );
    }
    out
}

/// WebVTT: `WEBVTT` header, `00:00:01.000 --> 00:00:02.500` cues.
pub fn to_vtt(segments: &[Segment]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for s in segments {
        let _ = write!(
            out,
            "{} --> {}\n{}\n\n",
            timestamp(s.start_s as f64, '.'),
            timestamp(s.end_s as f64, '.'),
            cue_text(&s.text)
        );
    }
    out
}

/// Tab-separated `start`, `end` (integer milliseconds) and `text`, with a header, as the
/// `whisper` CLI writes it; tabs inside the text become spaces.
pub fn to_tsv(segments: &[Segment]) -> String {
    let mut out = String::from("start\tend\ttext\n");
    for s in segments {
        let ms = |t: f32| (t.max(0.0) as f64 * 1000.0).round() as u64;
        let _ = writeln!(
            out,
            "{}\t{}\t{}",
            ms(s.start_s),
            ms(s.end_s),
            s.text.trim().replace('\t', " ")
        );
    }
    out
}

/// Plain text: the transcript and a newline.
pub fn to_text(text: &str) -> String {
    format!("{}\n", text.trim())
}

/// `{"text", "language", "segments": [{"id", "start", "end", "text", "tokens", "words"?}]}`,
/// as the `whisper` CLI's JSON file (`words` with word timestamps).
pub fn to_json(t: &Transcript) -> String {
    let segments: Vec<serde_json::Value> = t
        .segments
        .iter()
        .enumerate()
        .map(|(id, s)| {
            let mut v = serde_json::json!({
                "id": id, "start": s.start_s, "end": s.end_s, "text": s.text, "tokens": s.tokens,
            });
            if !s.words.is_empty() {
                v["words"] = serde_json::json!(s.words);
            }
            v
        })
        .collect();
    let v = serde_json::json!({"text": t.text, "language": t.language, "segments": segments});
    format!("{v}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start_s: f32, end_s: f32, text: &str) -> Segment {
        Segment {
            start_s,
            end_s,
            text: text.into(),
            tokens: vec![1, 2],
            words: Vec::new(),
        }
    }

    fn word(word: &str, start_s: f32, end_s: f32) -> crate::Word {
        crate::Word {
            word: word.into(),
            start_s,
            end_s,
            probability: 0.5,
        }
    }

    #[test]
    fn word_cues_stay_inside_their_segments() {
        let mut a = seg(0.0, 1.5, " One two three.");
        a.words = vec![
            word(" One", 0.0, 0.4),
            word(" two", 0.5, 0.9),
            word(" three.", 1.0, 1.5),
        ];
        let b = seg(2.0, 3.0, " No words here.");
        let t = Transcript {
            segments: vec![a, b],
            ..Default::default()
        };
        let cues = CueOptions {
            max_words_per_line: Some(2),
        };
        assert_eq!(
            SubtitleFormat::Srt.render_with(&t, &cues),
            "1\n00:00:00,000 --> 00:00:00,900\nOne two\n\n\
             2\n00:00:01,000 --> 00:00:01,500\nthree.\n\n\
             3\n00:00:02,000 --> 00:00:03,000\nNo words here.\n\n"
        );
        let one = CueOptions {
            max_words_per_line: Some(1),
        };
        assert_eq!(
            SubtitleFormat::Vtt
                .render_with(&t, &one)
                .matches(" --> ")
                .count(),
            4
        );
        let v: serde_json::Value =
            serde_json::from_str(&SubtitleFormat::Json.render_with(&t, &one)).unwrap();
        assert_eq!(v["segments"][0]["words"][1]["start"], 0.5);
        assert_eq!(v["segments"][0]["words"][1]["word"], " two");
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0.0, ','), "00:00:00,000");
        assert_eq!(timestamp(3725.5, '.'), "01:02:05.500");
        assert_eq!(timestamp(-1.0, '.'), "00:00:00.000");
    }

    #[test]
    fn every_format() {
        let t = Transcript {
            text: " Hello there. General --> Kenobi".into(),
            segments: vec![
                seg(0.0, 1.5, " Hello there."),
                seg(1.5, 3.25, " General\t--> Kenobi"),
            ],
            language: "en".into(),
            ..Default::default()
        };
        assert_eq!(
            SubtitleFormat::Txt.render(&t),
            "Hello there. General --> Kenobi\n"
        );
        assert_eq!(
            SubtitleFormat::Srt.render(&t),
            "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n2\n00:00:01,500 --> 00:00:03,250\nGeneral\t-> Kenobi\n\n"
        );
        assert!(SubtitleFormat::Vtt
            .render(&t)
            .starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n\n"));
        assert_eq!(
            SubtitleFormat::Tsv.render(&t),
            "start\tend\ttext\n0\t1500\tHello there.\n1500\t3250\tGeneral --> Kenobi\n"
        );
        let v: serde_json::Value = serde_json::from_str(&SubtitleFormat::Json.render(&t)).unwrap();
        assert_eq!(v["segments"][1]["end"], 3.25);
        assert_eq!(v["language"], "en");
        assert_eq!("SRT".parse::<SubtitleFormat>(), Ok(SubtitleFormat::Srt));
        assert!("doc".parse::<SubtitleFormat>().is_err());
    }
}
