//! Text output formats (plain text, SubRip, WebVTT), language names, and the per-segment
//! statistics OpenAI's `verbose_json` reports.

/// `response_format` of the OpenAI-compatible endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl ResponseFormat {
    pub const NAMES: [&'static str; 5] = ["json", "text", "srt", "vtt", "verbose_json"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "" | "json" => ResponseFormat::Json,
            "text" => ResponseFormat::Text,
            "srt" => ResponseFormat::Srt,
            "vtt" => ResponseFormat::Vtt,
            "verbose_json" => ResponseFormat::VerboseJson,
            _ => return None,
        })
    }

    /// Formats with segment times need timestamp decoding.
    pub fn needs_timestamps(self) -> bool {
        matches!(
            self,
            ResponseFormat::Srt | ResponseFormat::Vtt | ResponseFormat::VerboseJson
        )
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ResponseFormat::Json | ResponseFormat::VerboseJson => "application/json",
            ResponseFormat::Text => "text/plain; charset=utf-8",
            ResponseFormat::Srt => "application/x-subrip; charset=utf-8",
            ResponseFormat::Vtt => "text/vtt; charset=utf-8",
        }
    }
}

pub use whisper_burn::subtitles::{timestamp, to_srt, to_text, to_vtt};

pub use whisper_burn::decoding::fallback::compression_ratio;

/// Whisper's language codes and English names (`verbose_json` reports the name).
pub const LANGUAGE_NAMES: [(&str, &str); 100] = [
    ("en", "english"),
    ("zh", "chinese"),
    ("de", "german"),
    ("es", "spanish"),
    ("ru", "russian"),
    ("ko", "korean"),
    ("fr", "french"),
    ("ja", "japanese"),
    ("pt", "portuguese"),
    ("tr", "turkish"),
    ("pl", "polish"),
    ("ca", "catalan"),
    ("nl", "dutch"),
    ("ar", "arabic"),
    ("sv", "swedish"),
    ("it", "italian"),
    ("id", "indonesian"),
    ("hi", "hindi"),
    ("fi", "finnish"),
    ("vi", "vietnamese"),
    ("he", "hebrew"),
    ("uk", "ukrainian"),
    ("el", "greek"),
    ("ms", "malay"),
    ("cs", "czech"),
    ("ro", "romanian"),
    ("da", "danish"),
    ("hu", "hungarian"),
    ("ta", "tamil"),
    ("no", "norwegian"),
    ("th", "thai"),
    ("ur", "urdu"),
    ("hr", "croatian"),
    ("bg", "bulgarian"),
    ("lt", "lithuanian"),
    ("la", "latin"),
    ("mi", "maori"),
    ("ml", "malayalam"),
    ("cy", "welsh"),
    ("sk", "slovak"),
    ("te", "telugu"),
    ("fa", "persian"),
    ("lv", "latvian"),
    ("bn", "bengali"),
    ("sr", "serbian"),
    ("az", "azerbaijani"),
    ("sl", "slovenian"),
    ("kn", "kannada"),
    ("et", "estonian"),
    ("mk", "macedonian"),
    ("br", "breton"),
    ("eu", "basque"),
    ("is", "icelandic"),
    ("hy", "armenian"),
    ("ne", "nepali"),
    ("mn", "mongolian"),
    ("bs", "bosnian"),
    ("kk", "kazakh"),
    ("sq", "albanian"),
    ("sw", "swahili"),
    ("gl", "galician"),
    ("mr", "marathi"),
    ("pa", "punjabi"),
    ("si", "sinhala"),
    ("km", "khmer"),
    ("sn", "shona"),
    ("yo", "yoruba"),
    ("so", "somali"),
    ("af", "afrikaans"),
    ("oc", "occitan"),
    ("ka", "georgian"),
    ("be", "belarusian"),
    ("tg", "tajik"),
    ("sd", "sindhi"),
    ("gu", "gujarati"),
    ("am", "amharic"),
    ("yi", "yiddish"),
    ("lo", "lao"),
    ("uz", "uzbek"),
    ("fo", "faroese"),
    ("ht", "haitian creole"),
    ("ps", "pashto"),
    ("tk", "turkmen"),
    ("nn", "nynorsk"),
    ("mt", "maltese"),
    ("sa", "sanskrit"),
    ("lb", "luxembourgish"),
    ("my", "myanmar"),
    ("bo", "tibetan"),
    ("tl", "tagalog"),
    ("mg", "malagasy"),
    ("as", "assamese"),
    ("tt", "tatar"),
    ("haw", "hawaiian"),
    ("ln", "lingala"),
    ("ha", "hausa"),
    ("ba", "bashkir"),
    ("jw", "javanese"),
    ("su", "sundanese"),
    ("yue", "cantonese"),
];

const LANGUAGE_ALIASES: [(&str, &str); 12] = [
    ("burmese", "my"),
    ("valencian", "ca"),
    ("flemish", "nl"),
    ("haitian", "ht"),
    ("letzeburgesch", "lb"),
    ("pushto", "ps"),
    ("panjabi", "pa"),
    ("moldavian", "ro"),
    ("moldovan", "ro"),
    ("sinhalese", "si"),
    ("castilian", "es"),
    ("mandarin", "zh"),
];

/// The Whisper code of a language given as a code (`en`) or an English name (`English`).
pub fn language_code(input: &str) -> Option<&'static str> {
    let l = input.trim().to_ascii_lowercase();
    LANGUAGE_NAMES
        .iter()
        .find(|(c, n)| *c == l || *n == l)
        .map(|(c, _)| *c)
        .or_else(|| {
            LANGUAGE_ALIASES
                .iter()
                .find(|(a, _)| *a == l)
                .map(|(_, c)| *c)
        })
}

/// The English name of a Whisper language code (the code itself when unknown).
pub fn language_name(code: &str) -> String {
    LANGUAGE_NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use whisper_burn::Segment;

    fn seg(a: f32, b: f32, t: &str) -> Segment {
        Segment {
            start_s: a,
            end_s: b,
            text: t.into(),
            tokens: vec![],
            words: vec![],
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0.0, ','), "00:00:00,000");
        assert_eq!(timestamp(3723.456, '.'), "01:02:03.456");
        assert_eq!(timestamp(-1.0, '.'), "00:00:00.000");
    }

    #[test]
    fn srt_and_vtt() {
        let s = [seg(0.0, 2.5, " Hello there."), seg(2.5, 4.0, " A --> B")];
        assert_eq!(to_srt(&s), "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n00:00:02,500 --> 00:00:04,000\nA -> B\n\n");
        assert_eq!(
            to_vtt(&s),
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n00:00:02.500 --> 00:00:04.000\nA -> B\n\n"
        );
    }

    #[test]
    fn languages() {
        assert_eq!(language_code("EN"), Some("en"));
        assert_eq!(language_code("English"), Some("en"));
        assert_eq!(language_code("castilian"), Some("es"));
        assert_eq!(language_code("xx"), None);
        assert_eq!(language_name("de"), "german");
        assert_eq!(
            LANGUAGE_NAMES.len(),
            whisper_burn::tokenizer::LANGUAGES.len()
        );
        for ((c, _), w) in LANGUAGE_NAMES
            .iter()
            .zip(whisper_burn::tokenizer::LANGUAGES)
        {
            assert_eq!(*c, w);
        }
    }

    #[test]
    fn formats() {
        assert_eq!(
            ResponseFormat::parse("verbose_json"),
            Some(ResponseFormat::VerboseJson)
        );
        assert_eq!(ResponseFormat::parse(""), Some(ResponseFormat::Json));
        assert_eq!(ResponseFormat::parse("xml"), None);
        assert!(ResponseFormat::Srt.needs_timestamps());
        assert!(!ResponseFormat::Text.needs_timestamps());
    }
}
