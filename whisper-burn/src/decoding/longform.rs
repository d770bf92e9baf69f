//! Transcription of audio of any length, as faster-whisper does it: 30 s windows, seek
//! to the last timestamp, previous text as prompt. Several files advance in lock-step so
//! their windows share encoder and decoder batches.
use super::fallback::{best_of, Attempt};
use super::greedy::{DecodeRequest, SequenceResult};
use super::language::detect_language;
use super::logit_filters::{LogitFilters, TIMESTAMP_STEP_S};
use super::options::DecodeOptions;
use super::sampling::Sampling;
use super::words::align::{find_alignments, AlignInput};
use super::words::{assign_words, Word};
use crate::backend::WhisperBackend;
use crate::mel::{LogMel, HOP_LENGTH, N_FRAMES_PER_WINDOW};
use crate::model::Whisper;
use crate::pipeline::Pipeline;
use crate::tokenizer::WhisperTokenizer;
use crate::{Result, WhisperError};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Decodes a batch of windows; greedy, beam and speculative decoders implement it.
pub trait WindowDecoder<B: WhisperBackend> {
    fn decode(
        &mut self,
        model: &Whisper<B>,
        encoder_out: Tensor<B, 3>,
        req: &DecodeRequest,
    ) -> Result<Vec<SequenceResult>>;
}

/// A stretch of transcript with its times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start_s: f32,
    pub end_s: f32,
    pub text: String,
    pub tokens: Vec<u32>,
    /// The segment's words with their times (when word timestamps are asked for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
}

/// The transcript of one audio input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub text: String,
    pub segments: Vec<Segment>,
    pub language: String,
    pub language_prob: f32,
    /// Generated text tokens of every window, timestamps and specials excluded.
    pub tokens: Vec<u32>,
    pub audio_s: f64,
    pub encode_s: f64,
    pub decode_s: f64,
    pub windows: usize,
    pub main_passes: usize,
    pub drafted: usize,
    pub accepted: usize,
    pub draft_s: f64,
    /// Windows decoded again at a higher temperature (see `DecodeOptions::temperature_fallback`).
    #[serde(default)]
    pub fallbacks: usize,
}

const FRAMES_PER_TIMESTAMP: usize = 2;
const FRAME_S: f32 = HOP_LENGTH as f32 / 16_000.0;

struct FileState {
    mel: LogMel,
    seek_frames: usize,
    content_frames: usize,
    all_tokens: Vec<u32>,
    prompt_reset_since: usize,
    /// End of the last word spoken (word timestamps' pause rule).
    last_speech_s: f32,
    transcript: Transcript,
}

/// One window's outcome before it is committed to its file: its segments and where the
/// next window starts.
struct WindowSplit {
    segments: Vec<Segment>,
    /// Seek position after this window.
    next_seek_frames: usize,
    /// The window ended on a single timestamp (all its audio was transcribed).
    single_ending: bool,
    /// Skipped as silence: nothing is committed, the prompt is unchanged.
    skipped: bool,
}

impl FileState {
    fn done(&self) -> bool {
        self.seek_frames >= self.content_frames
    }
    fn segment_frames(&self) -> usize {
        (self.content_frames - self.seek_frames).min(N_FRAMES_PER_WINDOW)
    }
}

impl<B: WhisperBackend> Pipeline<B> {
    /// Transcribes one input.
    pub fn transcribe(
        &self,
        samples: &[f32],
        opts: &DecodeOptions,
        decoder: &mut impl WindowDecoder<B>,
    ) -> Result<Transcript> {
        Ok(self.transcribe_batch(&[samples], opts, decoder)?.remove(0))
    }

    /// Transcribes several inputs, their windows batched together.
    pub fn transcribe_batch(
        &self,
        audios: &[&[f32]],
        opts: &DecodeOptions,
        decoder: &mut impl WindowDecoder<B>,
    ) -> Result<Vec<Transcript>> {
        Sampling::from_temperature(opts.temperature, opts.seed)?;
        let mut files: Vec<FileState> = audios
            .iter()
            .map(|a| self.file_state(a, opts))
            .collect::<Result<_>>()?;
        loop {
            let active: Vec<usize> = (0..files.len()).filter(|i| !files[*i].done()).collect();
            if active.is_empty() {
                break;
            }
            self.run_round(&mut files, &active, opts, decoder)?;
        }
        Ok(files
            .into_iter()
            .map(|f| finish(f, &self.tokenizer))
            .collect())
    }

    fn file_state(&self, samples: &[f32], opts: &DecodeOptions) -> Result<FileState> {
        if samples.is_empty() {
            return Err(WhisperError::EmptyAudio);
        }
        let mel = self.mel.log_mel(samples);
        let content_frames = mel.n_frames.max(1);
        let mut all_tokens = Vec::new();
        if let Some(p) = &opts.initial_prompt {
            all_tokens = self.tokenizer.encode(&format!(" {}", p.trim()))?;
        }
        let transcript = Transcript {
            audio_s: samples.len() as f64 / 16_000.0,
            language: opts.language.clone().unwrap_or_default(),
            language_prob: if opts.language.is_some() { 1.0 } else { 0.0 },
            ..Default::default()
        };
        Ok(FileState {
            mel,
            seek_frames: 0,
            content_frames,
            all_tokens,
            prompt_reset_since: 0,
            last_speech_s: 0.0,
            transcript,
        })
    }

    fn run_round(
        &self,
        files: &mut [FileState],
        active: &[usize],
        opts: &DecodeOptions,
        decoder: &mut impl WindowDecoder<B>,
    ) -> Result<()> {
        let t0 = Instant::now();
        let windows: Vec<Vec<f32>> = active
            .iter()
            .map(|i| files[*i].mel.window(files[*i].seek_frames))
            .collect();
        let encoder_out = self.model.encode(&windows)?;
        B::sync(&self.model.device)
            .map_err(|e| WhisperError::Decode(format!("device sync: {e:?}")))?;
        let encode_s = t0.elapsed().as_secs_f64() / active.len() as f64;
        self.fill_languages(files, active, encoder_out.clone())?;
        let t1 = Instant::now();
        let filters = LogitFilters::new(
            &self.tokenizer,
            &self.model.generation.suppress_tokens,
            &self.model.generation.begin_suppress_tokens,
            opts.suppress_blank,
            opts.timestamps,
            self.model.config.vocab_size,
        );
        let mut prompts = Vec::new();
        let mut sot_index = Vec::new();
        for i in active {
            let (p, s) = self.prompt(&files[*i], opts)?;
            prompts.push(p);
            sot_index.push(s);
        }
        let req = DecodeRequest {
            filters: &filters,
            prompts,
            sot_index,
            eot: self.tokenizer.special.eot,
            no_speech: self.tokenizer.special.no_speech,
            max_new_tokens: opts.max_new_tokens,
            mel_windows: &windows,
            audio_mel_frames: active.iter().map(|i| files[*i].segment_frames()).collect(),
            sampling: Sampling::from_temperature(opts.temperature, opts.seed)?,
            window_start_frames: active.iter().map(|i| files[*i].seek_frames).collect(),
        };
        let first = decoder.decode(&self.model, encoder_out.clone(), &req)?;
        let attempts =
            self.with_fallback(first, &req, encoder_out.clone(), &windows, opts, decoder)?;
        let mut splits: Vec<WindowSplit> = active
            .iter()
            .zip(&attempts)
            .map(|(i, kept)| self.split_window(&files[*i], &kept.result, opts))
            .collect::<Result<_>>()?;
        if opts.word_timestamps {
            self.add_words(files, active, &mut splits, encoder_out, opts)?;
        }
        let decode_s = t1.elapsed().as_secs_f64() / active.len() as f64;
        for ((i, kept), split) in active.iter().zip(&attempts).zip(splits) {
            let f = &mut files[*i];
            let r = &kept.result;
            f.transcript.encode_s += encode_s;
            f.transcript.decode_s += decode_s;
            f.transcript.windows += 1;
            f.transcript.fallbacks += kept.fallbacks;
            f.transcript.main_passes += r.main_passes;
            f.transcript.drafted += r.drafted;
            f.transcript.accepted += r.accepted;
            f.transcript.draft_s += r.draft_s;
            commit_window(f, split, kept.temperature, opts, self.tokenizer.special.eot);
        }
        Ok(())
    }

    /// Aligns every window's segments with the main model and gives them their words; the
    /// next window starts after the last word unless this one ended on a single timestamp
    /// (faster-whisper's rule).
    fn add_words(
        &self,
        files: &mut [FileState],
        active: &[usize],
        splits: &mut [WindowSplit],
        encoder_out: Tensor<B, 3>,
        opts: &DecodeOptions,
    ) -> Result<()> {
        let eot = self.tokenizer.special.eot;
        let inputs: Vec<AlignInput> = active
            .iter()
            .zip(splits.iter())
            .map(|(i, split)| {
                let f = &files[*i];
                Ok(AlignInput {
                    sot_sequence: self
                        .tokenizer
                        .sot_sequence(Some(&f.transcript.language), opts.task)?,
                    text_tokens: split
                        .segments
                        .iter()
                        .flat_map(|s| s.tokens.iter().copied().filter(|t| *t < eot))
                        .collect(),
                    mel_frames: f.segment_frames(),
                    language: &f.transcript.language,
                })
            })
            .collect::<Result<_>>()?;
        let alignments = find_alignments(&self.model, &self.tokenizer, encoder_out, &inputs)?;
        for ((i, split), alignment) in active.iter().zip(splits.iter_mut()).zip(alignments) {
            let f = &mut files[*i];
            let offset_s = f.seek_frames as f32 * FRAME_S;
            f.last_speech_s = assign_words(
                &mut split.segments,
                alignment,
                offset_s,
                f.last_speech_s,
                eot,
            );
            let last_word_end_s = split
                .segments
                .iter()
                .rev()
                .flat_map(|s| s.words.last())
                .next()
                .map(|w| w.end_s)
                .or(split.segments.last().map(|s| s.end_s));
            if let Some(end_s) = last_word_end_s {
                if !split.single_ending && end_s > offset_s {
                    split.next_seek_frames = (end_s / FRAME_S).round() as usize;
                }
            }
        }
        Ok(())
    }

    /// Judges each row's result and decodes the rows that fail again at each fallback
    /// temperature in turn (those rows only, as one batch); returns each row's kept
    /// attempt, with the passes of every attempt counted in it.
    fn with_fallback(
        &self,
        first: Vec<SequenceResult>,
        req: &DecodeRequest,
        encoder_out: Tensor<B, 3>,
        windows: &[Vec<f32>],
        opts: &DecodeOptions,
        decoder: &mut impl WindowDecoder<B>,
    ) -> Result<Vec<Kept>> {
        let judge = |r: SequenceResult, t: f32| -> Result<Attempt> {
            let text_tokens: Vec<u32> = r.tokens.iter().copied().filter(|t| *t < req.eot).collect();
            let text = self.tokenizer.decode(&text_tokens)?;
            Ok(Attempt::judge(r, &text, t, opts))
        };
        let mut tried: Vec<Vec<Attempt>> = first
            .into_iter()
            .map(|r| judge(r, opts.temperature).map(|a| vec![a]))
            .collect::<Result<_>>()?;
        for &temperature in &opts.temperature_fallback {
            let failing: Vec<usize> = (0..tried.len())
                .filter(|r| tried[*r].last().is_some_and(|a| a.needs_fallback))
                .collect();
            if failing.is_empty() {
                break;
            }
            let idx: Vec<i64> = failing.iter().map(|r| *r as i64).collect();
            let idx = Tensor::<B, 1, Int>::from_data(
                TensorData::new(idx, [failing.len()]),
                &self.model.device,
            );
            let sub_windows: Vec<Vec<f32>> = failing.iter().map(|r| windows[*r].clone()).collect();
            let pick = |v: &[usize]| failing.iter().map(|r| v[*r]).collect::<Vec<usize>>();
            let sub = DecodeRequest {
                filters: req.filters,
                prompts: failing.iter().map(|r| req.prompts[*r].clone()).collect(),
                sot_index: pick(&req.sot_index),
                eot: req.eot,
                no_speech: req.no_speech,
                max_new_tokens: req.max_new_tokens,
                mel_windows: &sub_windows,
                audio_mel_frames: pick(&req.audio_mel_frames),
                sampling: Sampling::from_temperature(temperature, opts.seed)?,
                window_start_frames: pick(&req.window_start_frames),
            };
            let results = decoder.decode(&self.model, encoder_out.clone().select(0, idx), &sub)?;
            for (r, result) in failing.iter().zip(results) {
                tried[*r].push(judge(result, temperature)?);
            }
        }
        Ok(tried
            .into_iter()
            .map(|attempts| keep(attempts, opts))
            .collect())
    }

    fn fill_languages(
        &self,
        files: &mut [FileState],
        active: &[usize],
        encoder_out: Tensor<B, 3>,
    ) -> Result<()> {
        let need: Vec<usize> = (0..active.len())
            .filter(|s| files[active[*s]].transcript.language.is_empty())
            .collect();
        if need.is_empty() {
            return Ok(());
        }
        if !self.tokenizer.multilingual {
            need.iter().for_each(|s| {
                files[active[*s]].transcript.language = "en".into();
                files[active[*s]].transcript.language_prob = 1.0;
            });
            return Ok(());
        }
        let idx: Vec<i64> = need.iter().map(|s| *s as i64).collect();
        let idx =
            Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [need.len()]), &self.model.device);
        let detected = detect_language(&self.model, &self.tokenizer, encoder_out.select(0, idx))?;
        for (s, (code, p)) in need.iter().zip(detected) {
            files[active[*s]].transcript.language = code;
            files[active[*s]].transcript.language_prob = p;
        }
        Ok(())
    }

    /// faster-whisper's prompt: `<|startofprev|>` + previous text, then the start sequence,
    /// then `<|notimestamps|>` when timestamps are off.
    fn prompt(&self, f: &FileState, opts: &DecodeOptions) -> Result<(Vec<u32>, usize)> {
        let mut prompt = Vec::new();
        let previous = &f.all_tokens[f.prompt_reset_since..];
        if !previous.is_empty() {
            let keep = self.model.config.max_target_positions / 2 - 1;
            prompt.push(self.tokenizer.special.sot_prev);
            prompt.extend_from_slice(&previous[previous.len().saturating_sub(keep)..]);
        }
        let sot_index = prompt.len();
        prompt.extend(
            self.tokenizer
                .sot_sequence(Some(&f.transcript.language), opts.task)?,
        );
        if !opts.timestamps {
            prompt.push(self.tokenizer.special.no_timestamps);
        }
        Ok((prompt, sot_index))
    }

    /// Turns one window's tokens into segments and finds where the next window starts.
    fn split_window(
        &self,
        f: &FileState,
        r: &SequenceResult,
        opts: &DecodeOptions,
    ) -> Result<WindowSplit> {
        let segment_frames = f.segment_frames();
        let offset_s = f.seek_frames as f32 * FRAME_S;
        let skip = match (opts.no_speech_threshold, opts.log_prob_threshold) {
            (Some(ns), lp) => r.no_speech_prob > ns && lp.is_none_or(|lp| r.avg_logprob() <= lp),
            (None, _) => false,
        };
        let mut split = WindowSplit {
            segments: Vec::new(),
            next_seek_frames: f.seek_frames + segment_frames,
            single_ending: false,
            skipped: skip,
        };
        if skip {
            return Ok(split);
        }
        let tb = self.tokenizer.special.timestamp_begin;
        let is_ts = |t: u32| t >= tb;
        let toks = &r.tokens;
        let ts_time = |t: u32| (t - tb) as f32 * TIMESTAMP_STEP_S;
        let mut pieces = Vec::new();
        let consecutive: Vec<usize> = (1..toks.len())
            .filter(|i| is_ts(toks[*i]) && is_ts(toks[*i - 1]))
            .collect();
        split.single_ending =
            toks.len() >= 2 && !is_ts(toks[toks.len() - 2]) && is_ts(toks[toks.len() - 1]);
        if opts.timestamps && !consecutive.is_empty() {
            let mut cuts = consecutive.clone();
            if split.single_ending {
                cuts.push(toks.len());
            }
            let mut last = 0;
            for cut in cuts {
                let slice = &toks[last..cut];
                if let (Some(a), Some(b)) = (slice.first(), slice.last()) {
                    pieces.push((
                        offset_s + ts_time(*a),
                        offset_s + ts_time(*b),
                        slice.to_vec(),
                    ));
                }
                last = cut;
            }
            if !split.single_ending {
                let last_ts = toks[last.saturating_sub(1)];
                split.next_seek_frames =
                    f.seek_frames + (last_ts - tb) as usize * FRAMES_PER_TIMESTAMP;
            }
        } else {
            let mut end_s = segment_frames as f32 * FRAME_S;
            if let Some(t) = toks.iter().rev().find(|t| is_ts(**t)) {
                if *t != tb {
                    end_s = ts_time(*t);
                }
            }
            pieces.push((offset_s, offset_s + end_s, toks.clone()));
        }
        for (start_s, end_s, tokens) in pieces {
            split.segments.push(Segment {
                start_s,
                end_s,
                text: self.tokenizer.decode(&tokens)?,
                tokens,
                words: Vec::new(),
            });
        }
        Ok(split)
    }
}

/// Adds a window's segments to its file, moves the seek position, and extends the
/// previous-text prompt (reset after a window decoded above the reset temperature).
fn commit_window(
    f: &mut FileState,
    split: WindowSplit,
    temperature: f32,
    opts: &DecodeOptions,
    eot: u32,
) {
    f.seek_frames = split.next_seek_frames;
    if split.skipped {
        return;
    }
    // As faster-whisper: a segment without duration or text is dropped, and the prompt
    // of the next window is the kept segments' tokens (not the unfinished tail after the
    // last segment, which the next window decodes again).
    for segment in split.segments {
        if segment.start_s == segment.end_s || segment.text.trim().is_empty() {
            continue;
        }
        f.all_tokens.extend_from_slice(&segment.tokens);
        f.transcript
            .tokens
            .extend(segment.tokens.iter().filter(|t| **t < eot));
        f.transcript.segments.push(segment);
    }
    if !opts.condition_on_previous_text || temperature > opts.prompt_reset_on_temperature {
        f.prompt_reset_since = f.all_tokens.len();
    }
}

/// A row's kept attempt, with the work of every attempt counted in its result.
struct Kept {
    result: SequenceResult,
    temperature: f32,
    fallbacks: usize,
}

/// The first attempt that passed, else the best of all (see [`best_of`]).
fn keep(attempts: Vec<Attempt>, opts: &DecodeOptions) -> Kept {
    let fallbacks = attempts.len() - 1;
    let (mut main_passes, mut drafted, mut accepted, mut draft_s) = (0, 0, 0, 0.0);
    for a in &attempts {
        main_passes += a.result.main_passes;
        drafted += a.result.drafted;
        accepted += a.result.accepted;
        draft_s += a.result.draft_s;
    }
    let chosen = match attempts.iter().position(|a| !a.needs_fallback) {
        Some(i) => attempts.into_iter().nth(i),
        None => best_of(attempts, opts),
    };
    let (mut result, temperature) = chosen.map_or_else(
        || (SequenceResult::default(), opts.temperature),
        |a| (a.result, a.temperature),
    );
    result.main_passes = main_passes;
    result.drafted = drafted;
    result.accepted = accepted;
    result.draft_s = draft_s;
    Kept {
        result,
        temperature,
        fallbacks,
    }
}

fn finish(f: FileState, tok: &WhisperTokenizer) -> Transcript {
    let mut t = f.transcript;
    t.text = tok.decode(&t.tokens).unwrap_or_default().trim().to_string();
    t
}
