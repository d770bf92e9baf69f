//! The VAD-chunked batched pipeline (faster-whisper's `BatchedInferencePipeline`,
//! WhisperX): one long input cut at speech boundaries into groups of at most 30 s of
//! speech, the groups decoded many at a time as independent inputs, their segments put
//! back in order with the input's times.
//!
//! Unlike faster-whisper's batched mode, each group keeps the sequential decoder's rules
//! (timestamps, seek after the last complete segment): a group whose last words do not
//! fit its window gets a second window instead of losing them. Groups are decoded without
//! previous-text conditioning (they are independent), as faster-whisper's batched mode.
use super::chunks::{collect_chunks, TimestampMap};
use super::filter::restore_timestamps;
use super::model::SileroVad;
use super::timestamps::{speech_timestamps, SpeechChunk, VadOptions};
use crate::audio::SAMPLE_RATE;
use crate::{Transcript, WhisperError};

/// Most seconds of speech in one group: one 30 s window.
pub const MAX_GROUP_S: f64 = 30.0;

/// faster-whisper's VAD options for its batched pipeline: chunks of at most 30 s, cut at
/// silences of 160 ms.
pub fn batched_vad_options() -> VadOptions {
    VadOptions {
        max_speech_duration_s: MAX_GROUP_S,
        min_silence_duration_ms: 160,
        ..Default::default()
    }
}

/// Consecutive speech chunks grouped while their total speech stays within
/// `max_group_s` (faster-whisper's `collect_chunks` with `max_duration`); a chunk longer
/// than that is a group of its own.
pub fn group_chunks(chunks: &[SpeechChunk], max_group_s: f64) -> Vec<Vec<SpeechChunk>> {
    let max_samples = (max_group_s * SAMPLE_RATE as f64) as usize;
    let mut groups: Vec<Vec<SpeechChunk>> = Vec::new();
    let mut current: Vec<SpeechChunk> = Vec::new();
    let mut samples = 0usize;
    for c in chunks {
        if !current.is_empty() && samples + c.len() > max_samples {
            groups.push(std::mem::take(&mut current));
            samples = 0;
        }
        samples += c.len();
        current.push(*c);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// Transcribes `audio` as VAD-cut groups of at most `opts.max_speech_duration_s` (30 s at
/// most) of speech, `batch_size` groups per call of `transcribe` (give it decode options
/// without previous-text conditioning); returns one transcript with the input's times and
/// the work of every group summed.
pub fn transcribe_chunked<E, F>(
    vad: &SileroVad,
    opts: &VadOptions,
    audio: &[f32],
    batch_size: usize,
    transcribe: F,
) -> Result<Transcript, E>
where
    E: From<WhisperError>,
    F: FnMut(&[&[f32]]) -> Result<Vec<Transcript>, E>,
{
    let mut all = transcribe_chunked_many(vad, opts, &[audio], batch_size, transcribe)?;
    Ok(all.remove(0))
}

/// As [`transcribe_chunked`] for several inputs at once: the groups of every input share
/// the batches (a server's long upload is decoded beside other requests' audio), and each
/// input gets its own transcript back. An input without speech gets an empty transcript.
pub fn transcribe_chunked_many<E, F>(
    vad: &SileroVad,
    opts: &VadOptions,
    audios: &[&[f32]],
    batch_size: usize,
    mut transcribe: F,
) -> Result<Vec<Transcript>, E>
where
    E: From<WhisperError>,
    F: FnMut(&[&[f32]]) -> Result<Vec<Transcript>, E>,
{
    let max_group_s = opts.max_speech_duration_s.min(MAX_GROUP_S);
    // (input, group audio, its map), in input then time order.
    let mut groups: Vec<(usize, Vec<f32>, TimestampMap)> = Vec::new();
    for (i, audio) in audios.iter().enumerate() {
        if audio.is_empty() {
            return Err(WhisperError::EmptyAudio.into());
        }
        let chunks = speech_timestamps(vad, audio, opts)?;
        for g in group_chunks(&chunks, max_group_s) {
            let (samples, map) = collect_chunks(audio, &g);
            groups.push((i, samples, map));
        }
    }
    let mut merged: Vec<Transcript> = audios
        .iter()
        .map(|a| Transcript {
            audio_s: a.len() as f64 / SAMPLE_RATE as f64,
            ..Default::default()
        })
        .collect();
    for batch in groups.chunks(batch_size.max(1)) {
        let refs: Vec<&[f32]> = batch.iter().map(|(_, s, _)| s.as_slice()).collect();
        let transcripts = transcribe(&refs)?;
        for ((i, _, map), mut t) in batch.iter().zip(transcripts) {
            restore_timestamps(&mut t, map);
            append(&mut merged[*i], t);
        }
    }
    for t in &mut merged {
        t.text = t
            .segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<String>()
            .trim()
            .to_string();
    }
    Ok(merged)
}

/// Adds one group's transcript to the whole.
fn append(all: &mut Transcript, t: Transcript) {
    if all.language.is_empty() {
        all.language = t.language;
        all.language_prob = t.language_prob;
    }
    all.segments.extend(t.segments);
    all.tokens.extend(t.tokens);
    all.encode_s += t.encode_s;
    all.decode_s += t.decode_s;
    all.windows += t.windows;
    all.main_passes += t.main_passes;
    all.drafted += t.drafted;
    all.accepted += t.accepted;
    all.draft_s += t.draft_s;
    all.fallbacks += t.fallbacks;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(start_s: f64, end_s: f64) -> SpeechChunk {
        SpeechChunk {
            start: (start_s * 16_000.0) as usize,
            end: (end_s * 16_000.0) as usize,
        }
    }

    #[test]
    fn groups_hold_at_most_thirty_seconds_of_speech() {
        let chunks = [
            chunk(0.0, 10.0),
            chunk(12.0, 25.0),
            chunk(40.0, 47.0),
            chunk(50.0, 85.0),
            chunk(90.0, 91.0),
        ];
        let groups = group_chunks(&chunks, 30.0);
        let lens: Vec<usize> = groups.iter().map(Vec::len).collect();
        // 10 + 13 + 7 = 30 s fit; the 35 s chunk stands alone; then the last one.
        assert_eq!(lens, vec![3, 1, 1]);
        assert!(group_chunks(&[], 30.0).is_empty());
    }
}
