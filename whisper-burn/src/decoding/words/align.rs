//! Word timings from the main model's cross-attention: one decoder pass over each
//! window's start sequence, `<|notimestamps|>`, text tokens and end-of-text, capturing
//! the alignment heads, as CTranslate2's `Whisper.align` (and openai-whisper's
//! `find_alignment`) do. Only the main model runs here, so the words depend on the
//! tokens alone: a draft, a batch or a long-form seek cannot change them.
use super::dtw::{median_filter_rows, negative_dtw, normalize_over_tokens};
use super::split::split_to_word_tokens;
use super::WordTiming;
use crate::backend::WhisperBackend;
use crate::cpu::math::softmax_row;
use crate::model::layers::tensor_f32;
use crate::model::Whisper;
use crate::tokenizer::WhisperTokenizer;
use crate::Result;
use burn::prelude::*;

/// Width of the median filter along time (openai-whisper's `medfilt_width`).
const MEDIAN_FILTER_WIDTH: usize = 7;
/// Encoder frames per second (20 ms each).
const ENCODER_FRAMES_PER_S: f32 = 50.0;

/// One window to align.
pub struct AlignInput<'a> {
    /// The start-of-transcript sequence the window was decoded with (no prompt).
    pub sot_sequence: Vec<u32>,
    /// The window's text tokens (timestamps and specials excluded).
    pub text_tokens: Vec<u32>,
    /// Log-mel frames of audio in the window (at most 3000).
    pub mel_frames: usize,
    pub language: &'a str,
}

/// Word timings (seconds from the window's start) of each window; `encoder_out` holds
/// one encoded window per input, in order.
pub fn find_alignments<B: WhisperBackend>(
    model: &Whisper<B>,
    tokenizer: &WhisperTokenizer,
    encoder_out: Tensor<B, 3>,
    inputs: &[AlignInput],
) -> Result<Vec<Vec<WordTiming>>> {
    let mut out: Vec<Vec<WordTiming>> = inputs.iter().map(|_| Vec::new()).collect();
    let rows: Vec<usize> = (0..inputs.len())
        .filter(|r| !inputs[*r].text_tokens.is_empty() && inputs[*r].mel_frames / 2 > 0)
        .collect();
    if rows.is_empty() {
        return Ok(out);
    }
    let special = &tokenizer.special;
    let sequences: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| {
            let i = &inputs[*r];
            let mut s = i.sot_sequence.clone();
            s.push(special.no_timestamps);
            s.extend_from_slice(&i.text_tokens);
            s.push(special.eot);
            s
        })
        .collect();
    // Rows of one pass have one length: shorter ones are padded after their end-of-text,
    // which causal attention keeps from changing anything before it.
    let width = sequences.iter().map(Vec::len).max().unwrap_or(0);
    let padded: Vec<Vec<u32>> = sequences
        .iter()
        .map(|s| {
            let mut p = s.clone();
            p.resize(width, special.eot);
            p
        })
        .collect();
    let idx: Vec<i64> = rows.iter().map(|r| *r as i64).collect();
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [rows.len()]), &model.device);
    let mut state = model.decoder.new_state(encoder_out.select(0, idx));
    let heads = model.generation.alignment_heads_or_default(&model.config);
    let (hidden, scores) = model
        .decoder
        .forward_capturing(&padded, &mut state, &heads)?;
    let logits = tensor_f32(model.decoder.logits(hidden))?;
    let vocab = model.config.vocab_size;
    for (b, r) in rows.iter().enumerate() {
        let input = &inputs[*r];
        let seq = &sequences[b];
        let row_logits = &logits[b * width * vocab..(b + 1) * width * vocab];
        let probs = text_token_probs(
            row_logits,
            vocab,
            seq,
            input.sot_sequence.len(),
            special.eot,
        );
        let frames_total = scores.first().map_or(0, |s| s.len() / (rows.len() * width));
        let matrix = attention_matrix(
            &scores,
            b,
            width,
            frames_total,
            seq.len(),
            input.mel_frames / 2,
        );
        out[*r] = words_from_path(tokenizer, input, &matrix, input.mel_frames / 2, &probs)?;
    }
    Ok(out)
}

/// Probability (softmax over the text vocabulary, below end-of-text) of each text token
/// at the position that predicts it.
fn text_token_probs(
    logits: &[f32],
    vocab: usize,
    seq: &[u32],
    sot_len: usize,
    eot: u32,
) -> Vec<f32> {
    let text_len = seq.len() - sot_len - 2;
    (0..text_len)
        .map(|t| {
            let pos = sot_len + t;
            let mut row = logits[pos * vocab..pos * vocab + eot as usize].to_vec();
            softmax_row(&mut row);
            row[seq[pos + 1] as usize]
        })
        .collect()
}

/// The heads' attention of one row, as alignment reads it: the scores of the first
/// `tokens` positions over the first `frames` encoder frames, softmaxed over those frames,
/// standardised over the tokens, median-filtered along time, then averaged over heads.
/// Returns `[tokens][frames]`.
fn attention_matrix(
    scores: &[Vec<f32>],
    row: usize,
    width: usize,
    frames_total: usize,
    tokens: usize,
    frames: usize,
) -> Vec<f32> {
    let mut mean = vec![0f32; tokens * frames];
    for head in scores {
        let mut w: Vec<f32> = (0..tokens)
            .flat_map(|t| {
                let start = (row * width + t) * frames_total;
                head[start..start + frames].to_vec()
            })
            .collect();
        w.chunks_mut(frames).for_each(softmax_row);
        normalize_over_tokens(&mut w, frames);
        let w = median_filter_rows(&w, frames, MEDIAN_FILTER_WIDTH);
        mean.iter_mut().zip(&w).for_each(|(m, v)| *m += v);
    }
    let n = scores.len().max(1) as f32;
    mean.iter_mut().for_each(|m| *m /= n);
    mean
}

/// DTW of the rows from `<|notimestamps|>` to the last text token against time, then
/// each word's start and end at the frames where the path enters its first token's row
/// and the next word's (openai-whisper's `jump_times`).
fn words_from_path(
    tokenizer: &WhisperTokenizer,
    input: &AlignInput,
    matrix: &[f32],
    frames: usize,
    probs: &[f32],
) -> Result<Vec<WordTiming>> {
    let sot_len = input.sot_sequence.len();
    let rows = input.text_tokens.len() + 1;
    let path = negative_dtw(
        &matrix[sot_len * frames..(sot_len + rows) * frames],
        rows,
        frames,
    );
    let mut with_eot = input.text_tokens.clone();
    with_eot.push(tokenizer.special.eot);
    let (words, word_tokens) = split_to_word_tokens(tokenizer, &with_eot, input.language)?;
    if word_tokens.len() <= 1 {
        return Ok(Vec::new());
    }
    // jump_times[r]: when the path first reaches row r.
    let mut jump_times = Vec::with_capacity(rows);
    let mut last_row = None;
    for (r, f) in &path {
        if last_row != Some(*r) {
            jump_times.push(*f as f32 / ENCODER_FRAMES_PER_S);
            last_row = Some(*r);
        }
    }
    let mut boundaries = vec![0usize];
    for t in &word_tokens[..word_tokens.len() - 1] {
        boundaries.push(boundaries.last().copied().unwrap_or(0) + t.len());
    }
    Ok(words
        .into_iter()
        .zip(word_tokens)
        .zip(boundaries.windows(2))
        .map(|((word, tokens), b)| {
            let p = &probs[b[0]..b[1].min(probs.len())];
            WordTiming {
                word,
                tokens,
                start_s: jump_times.get(b[0]).copied().unwrap_or(0.0),
                end_s: jump_times.get(b[1]).copied().unwrap_or(0.0),
                probability: p.iter().sum::<f32>() / p.len().max(1) as f32,
            }
        })
        .collect())
}
