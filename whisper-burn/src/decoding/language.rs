//! Language detection from the first decoder step, as Whisper does it.
use super::greedy::host_rows;
use crate::backend::WhisperBackend;
use crate::model::Whisper;
use crate::tokenizer::WhisperTokenizer;
use crate::Result;
use burn::prelude::*;

/// The most probable language of each row of `encoder_out`, with its probability among
/// the language tokens.
pub fn detect_language<B: WhisperBackend>(
    model: &Whisper<B>,
    tok: &WhisperTokenizer,
    encoder_out: Tensor<B, 3>,
) -> Result<Vec<(String, f32)>> {
    let b = encoder_out.dims()[0];
    let mut state = model.decoder.new_state(encoder_out);
    let prompt = vec![vec![tok.special.sot]; b];
    let logits = host_rows(
        model
            .decoder
            .logits(model.decoder.forward(&prompt, &mut state)?),
    )?;
    Ok(logits.iter().map(|l| best_language(l, tok)).collect())
}

fn best_language(logits: &[f32], tok: &WhisperTokenizer) -> (String, f32) {
    let langs: Vec<(&str, f32)> = tok
        .special
        .languages
        .iter()
        .filter(|(_, id)| (*id as usize) < logits.len())
        .map(|(c, id)| (c.as_str(), logits[*id as usize]))
        .collect();
    let max = langs
        .iter()
        .map(|(_, l)| *l)
        .fold(f32::NEG_INFINITY, f32::max);
    let z: f32 = langs.iter().map(|(_, l)| (l - max).exp()).sum();
    let (code, best) = langs.iter().fold(("en", f32::NEG_INFINITY), |acc, (c, l)| {
        if *l > acc.1 {
            (*c, *l)
        } else {
            acc
        }
    });
    (code.to_string(), (best - max).exp() / z)
}
