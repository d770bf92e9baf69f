//! Tokens to words, and punctuation merged into its word, as openai-whisper's
//! tokenizer and `merge_punctuations` (and faster-whisper's copies of them) do it.
use super::WordTiming;
use crate::tokenizer::WhisperTokenizer;
use crate::Result;

/// Python's `string.punctuation`.
const ASCII_PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
/// Punctuation merged into the following word (openai-whisper's default).
pub const PREPEND_PUNCTUATIONS: &str = "\"'“¿([{-";
/// Punctuation merged into the preceding word (openai-whisper's default).
pub const APPEND_PUNCTUATIONS: &str = "\"'.。,，!！?？:：”)]}、";

/// Languages written without spaces: words split wherever the tokens decode to whole
/// characters.
fn splits_on_unicode(language: &str) -> bool {
    matches!(language, "zh" | "ja" | "th" | "lo" | "my" | "yue")
}

/// Words of `tokens` (text tokens, then end-of-text) and each word's tokens.
pub fn split_to_word_tokens(
    tokenizer: &WhisperTokenizer,
    tokens: &[u32],
    language: &str,
) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
    if splits_on_unicode(language) {
        return split_on_unicode(tokenizer, tokens);
    }
    split_on_spaces(tokenizer, tokens)
}

/// Groups of tokens that decode to whole characters (no U+FFFD of a split UTF-8
/// sequence, unless the full text has one there too).
fn split_on_unicode(
    tokenizer: &WhisperTokenizer,
    tokens: &[u32],
) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
    const REPLACEMENT: char = '\u{fffd}';
    let full: Vec<char> = tokenizer.decode(tokens)?.chars().collect();
    let (mut words, mut word_tokens) = (Vec::new(), Vec::new());
    let (mut current, mut offset_chars) = (Vec::new(), 0usize);
    for &t in tokens {
        current.push(t);
        let decoded = tokenizer.decode(&current)?;
        let bad = decoded.chars().position(|c| c == REPLACEMENT);
        let whole = match bad {
            None => true,
            Some(i) => full.get(offset_chars + i) == Some(&REPLACEMENT),
        };
        if whole {
            offset_chars += decoded.chars().count();
            words.push(decoded);
            word_tokens.push(std::mem::take(&mut current));
        }
    }
    Ok((words, word_tokens))
}

/// Whole-character groups joined into words at spaces; punctuation and special tokens
/// stand alone.
fn split_on_spaces(
    tokenizer: &WhisperTokenizer,
    tokens: &[u32],
) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
    let (subwords, subword_tokens) = split_on_unicode(tokenizer, tokens)?;
    let (mut words, mut word_tokens): (Vec<String>, Vec<Vec<u32>>) = (Vec::new(), Vec::new());
    for (subword, toks) in subwords.into_iter().zip(subword_tokens) {
        let special = toks[0] >= tokenizer.special.eot;
        let with_space = subword.starts_with(' ');
        let punctuation = ASCII_PUNCTUATION.contains(subword.trim());
        match (words.last_mut(), word_tokens.last_mut()) {
            (Some(w), Some(t)) if !(special || with_space || punctuation) => {
                w.push_str(&subword);
                t.extend(toks);
            }
            _ => {
                words.push(subword);
                word_tokens.push(toks);
            }
        }
    }
    Ok((words, word_tokens))
}

/// Moves opening punctuation onto the word after it and closing punctuation onto the
/// word before it, leaving empty words (no text, no tokens) where they were.
pub fn merge_punctuations(words: &mut [WordTiming], prepended: &str, appended: &str) {
    if words.len() < 2 {
        return;
    }
    let mut j = words.len() - 1;
    for i in (0..words.len() - 1).rev() {
        let previous = &words[i];
        if previous.word.starts_with(' ') && prepended.contains(previous.word.trim()) {
            let (word, tokens) = (
                std::mem::take(&mut words[i].word),
                std::mem::take(&mut words[i].tokens),
            );
            let following = &mut words[j];
            following.word = word + &following.word;
            following.tokens.splice(0..0, tokens);
        } else {
            j = i;
        }
    }
    let mut i = 0;
    for j in 1..words.len() {
        if !words[i].word.ends_with(' ') && appended.contains(words[j].word.as_str()) {
            let (word, tokens) = (
                std::mem::take(&mut words[j].word),
                std::mem::take(&mut words[j].tokens),
            );
            words[i].word.push_str(&word);
            words[i].tokens.extend(tokens);
        } else {
            i = j;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(word: &str, token: u32) -> WordTiming {
        WordTiming {
            word: word.into(),
            tokens: vec![token],
            start_s: 0.0,
            end_s: 0.0,
            probability: 1.0,
        }
    }

    #[test]
    fn punctuation_joins_its_word() {
        let mut w = vec![
            timing(" \"", 1),
            timing(" Hello", 2),
            timing(",", 3),
            timing(" world", 4),
            timing(".\"", 5),
        ];
        merge_punctuations(&mut w, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS);
        let words: Vec<&str> = w.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(words, vec!["", " \" Hello,", "", " world", ".\""]);
        assert_eq!(w[1].tokens, vec![1, 2, 3]);
        assert!(w[0].tokens.is_empty() && w[2].tokens.is_empty());
    }

    #[test]
    fn substring_rules_are_python_in() {
        // `x in s` on strings is a substring test: the empty word is "punctuation".
        assert!(ASCII_PUNCTUATION.contains(""));
        assert!(ASCII_PUNCTUATION.contains("()"));
        assert!(!ASCII_PUNCTUATION.contains("a"));
    }
}
