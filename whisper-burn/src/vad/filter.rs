//! Transcription of the speech alone (faster-whisper's `vad_filter=True`): the audio
//! without its silences is transcribed as one input, then every time is mapped back to
//! the original audio (faster-whisper's `restore_speech_timestamps`).
use super::chunks::{collect_chunks, TimestampMap};
use super::model::SileroVad;
use super::timestamps::{speech_timestamps, VadOptions};
use crate::audio::SAMPLE_RATE;
use crate::{Transcript, WhisperError};

/// Transcribes the speech of each input with `transcribe` (any decoder: greedy, beam,
/// speculative; its batching is kept: the inputs with speech go to it together) and gives
/// the transcripts the original audio's times. An input without speech gets an empty
/// transcript, as faster-whisper.
pub fn transcribe_speech<E, F>(
    vad: &SileroVad,
    opts: &VadOptions,
    audios: &[&[f32]],
    transcribe: F,
) -> Result<Vec<Transcript>, E>
where
    E: From<WhisperError>,
    F: FnOnce(&[&[f32]]) -> Result<Vec<Transcript>, E>,
{
    let mut speech = Vec::with_capacity(audios.len());
    for audio in audios {
        if audio.is_empty() {
            return Err(WhisperError::EmptyAudio.into());
        }
        let chunks = speech_timestamps(vad, audio, opts)?;
        speech.push(collect_chunks(audio, &chunks));
    }
    let with_speech: Vec<&[f32]> = speech
        .iter()
        .filter(|(s, _)| !s.is_empty())
        .map(|(s, _)| s.as_slice())
        .collect();
    let mut transcripts = if with_speech.is_empty() {
        Vec::new()
    } else {
        transcribe(&with_speech)?
    }
    .into_iter();
    Ok(speech
        .iter()
        .zip(audios)
        .map(|((samples, map), audio)| {
            let mut t = if samples.is_empty() {
                Transcript::default()
            } else {
                transcripts.next().unwrap_or_default()
            };
            restore_timestamps(&mut t, map);
            t.audio_s = audio.len() as f64 / SAMPLE_RATE as f64;
            t
        })
        .collect())
}

/// Times in the speech audio -> times in the original audio. A segment with words takes
/// its words' times, each word mapped within the chunk of its middle (so a word never
/// straddles removed silence).
pub fn restore_timestamps(t: &mut Transcript, map: &TimestampMap) {
    for s in &mut t.segments {
        if s.words.is_empty() {
            s.start_s = map.original_time(s.start_s as f64, None, false) as f32;
            s.end_s = map.original_time(s.end_s as f64, None, true) as f32;
            continue;
        }
        for w in &mut s.words {
            let middle = (w.start_s as f64 + w.end_s as f64) / 2.0;
            let chunk = Some(map.chunk_index(middle, false));
            w.start_s = map.original_time(w.start_s as f64, chunk, false) as f32;
            w.end_s = map.original_time(w.end_s as f64, chunk, false) as f32;
        }
        s.start_s = s.words[0].start_s;
        s.end_s = s.words[s.words.len() - 1].end_s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vad::SpeechChunk;
    use crate::{Segment, Word};

    fn chunk(start_s: f64, end_s: f64) -> SpeechChunk {
        SpeechChunk {
            start: (start_s * 16_000.0) as usize,
            end: (end_s * 16_000.0) as usize,
        }
    }

    #[test]
    fn times_move_back_past_the_removed_silence() {
        // Speech at 1-3 s and 10-12 s: 3 s of speech audio -> 11 s after 8 s of silence.
        let map = TimestampMap::new(&[chunk(1.0, 3.0), chunk(10.0, 12.0)], 16_000);
        let word = |w: &str, a: f32, b: f32| Word {
            word: w.into(),
            start_s: a,
            end_s: b,
            probability: 1.0,
        };
        let mut t = Transcript {
            segments: vec![
                Segment {
                    start_s: 0.5,
                    end_s: 2.0,
                    text: " a".into(),
                    tokens: vec![],
                    words: vec![],
                },
                Segment {
                    start_s: 1.5,
                    end_s: 3.5,
                    text: " b c".into(),
                    tokens: vec![],
                    // " c" straddles the cut at 2 s; its middle (2.25 s) is in chunk 2.
                    words: vec![word(" b", 1.5, 1.9), word(" c", 1.9, 2.6)],
                },
            ],
            ..Default::default()
        };
        restore_timestamps(&mut t, &map);
        let s = &t.segments;
        assert_eq!((s[0].start_s, s[0].end_s), (1.5, 3.0));
        assert_eq!((s[1].words[0].start_s, s[1].words[0].end_s), (2.5, 2.9));
        assert_eq!((s[1].words[1].start_s, s[1].words[1].end_s), (9.9, 10.6));
        assert_eq!((s[1].start_s, s[1].end_s), (2.5, 10.6));
    }
}
