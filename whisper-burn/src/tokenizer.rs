//! Whisper's tokenizer over the model's `tokenizer.json`; special tokens are looked up
//! in the vocabulary by their text, never hard-coded ids.
use crate::{Result, WhisperError};
use std::path::Path;

/// Whisper's language codes in token order (`<|en|>` first).
pub const LANGUAGES: [&str; 100] = [
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it",
    "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur",
    "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn",
    "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si",
    "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",
    "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln",
    "ha", "ba", "jw", "su", "yue",
];

/// Ids of the special tokens of one vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    pub eot: u32,
    pub sot: u32,
    pub sot_prev: u32,
    pub sot_lm: Option<u32>,
    pub no_speech: Option<u32>,
    pub no_timestamps: u32,
    pub transcribe: Option<u32>,
    pub translate: Option<u32>,
    /// `<|0.00|>`; every id from here up is a timestamp.
    pub timestamp_begin: u32,
    /// `(code, id)` of each language token present.
    pub languages: Vec<(String, u32)>,
}

/// The tokenizer of one checkpoint.
pub struct WhisperTokenizer {
    inner: tokenizers::Tokenizer,
    pub special: SpecialTokens,
    pub multilingual: bool,
}

impl WhisperTokenizer {
    /// Loads `tokenizer.json`; `multilingual` follows the model's vocabulary size.
    pub fn from_file(path: &Path, multilingual: bool) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| WhisperError::Tokenizer(format!("{}: {e}", path.display())))?;
        let special = resolve_special(&inner)?;
        Ok(Self {
            inner,
            special,
            multilingual,
        })
    }

    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.inner.token_to_id(text)
    }

    /// Text of generated tokens, special and timestamp tokens skipped.
    pub fn decode(&self, tokens: &[u32]) -> Result<String> {
        let text: Vec<u32> = tokens
            .iter()
            .copied()
            .filter(|t| *t < self.special.eot)
            .collect();
        self.inner
            .decode(&text, true)
            .map_err(|e| WhisperError::Tokenizer(e.to_string()))
    }

    /// Token ids of plain text (no special tokens added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| WhisperError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn language_token(&self, code: &str) -> Option<u32> {
        self.special
            .languages
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, id)| *id)
    }

    pub fn language_code(&self, token: u32) -> Option<&str> {
        self.special
            .languages
            .iter()
            .find(|(_, id)| *id == token)
            .map(|(c, _)| c.as_str())
    }

    /// The start-of-transcript sequence: `<|startoftranscript|>` plus, for multilingual
    /// models, the language and task tokens.
    pub fn sot_sequence(&self, language: Option<&str>, task: Task) -> Result<Vec<u32>> {
        let mut seq = vec![self.special.sot];
        if !self.multilingual {
            return Ok(seq);
        }
        let lang = language.unwrap_or("en");
        seq.push(self.language_token(lang).ok_or_else(|| {
            WhisperError::Decode(format!(
                "language `{lang}` is not in this model's vocabulary"
            ))
        })?);
        let task_token = match task {
            Task::Transcribe => self.special.transcribe,
            Task::Translate => self.special.translate,
        };
        seq.push(task_token.ok_or_else(|| {
            WhisperError::Decode(format!("{task:?} token missing from the vocabulary"))
        })?);
        Ok(seq)
    }

    /// Tokens never generated in text, beyond the checkpoint's `suppress_tokens`:
    /// task, start and no-speech tokens (as Whisper's `non_speech` special set).
    pub fn always_suppressed(&self) -> Vec<u32> {
        let s = &self.special;
        [
            s.transcribe,
            s.translate,
            Some(s.sot),
            Some(s.sot_prev),
            s.sot_lm,
            s.no_speech,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// The task a multilingual model is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    #[default]
    Transcribe,
    Translate,
}

fn resolve_special(t: &tokenizers::Tokenizer) -> Result<SpecialTokens> {
    let need = |s: &str| {
        t.token_to_id(s)
            .ok_or_else(|| WhisperError::Tokenizer(format!("token {s} missing")))
    };
    let languages = LANGUAGES
        .iter()
        .filter_map(|c| {
            t.token_to_id(&format!("<|{c}|>"))
                .map(|id| (c.to_string(), id))
        })
        .collect();
    let no_timestamps = need("<|notimestamps|>")?;
    Ok(SpecialTokens {
        eot: need("<|endoftext|>")?,
        sot: need("<|startoftranscript|>")?,
        sot_prev: need("<|startofprev|>")?,
        sot_lm: t.token_to_id("<|startoflm|>"),
        no_speech: t
            .token_to_id("<|nospeech|>")
            .or_else(|| t.token_to_id("<|nocaptions|>")),
        no_timestamps,
        transcribe: t.token_to_id("<|transcribe|>"),
        translate: t.token_to_id("<|translate|>"),
        timestamp_begin: t.token_to_id("<|0.00|>").unwrap_or(no_timestamps + 1),
        languages,
    })
}
