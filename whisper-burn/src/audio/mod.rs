//! Audio loading: decode any container/codec symphonia knows (wav, flac, mp3, ogg/vorbis,
//! m4a/aac, webm/mkv, ...) plus Opus (in Ogg or WebM/Matroska) through libopus, downmix to mono by averaging the channels and resample to Whisper's 16 kHz
//! with a band-limited windowed-sinc (Kaiser) resampler.
//!
//! The container is detected from the content; an extension is only a hint. Nothing here
//! panics on bad input: every failure is a [`WhisperError`].
use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;

use symphonia::core::audio::{AudioBuffer, AudioBufferRef};
use symphonia::core::codecs::{CodecParameters, CodecRegistry, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::conv::IntoSample;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::sample::Sample;

use crate::{Result, WhisperError};

mod mp4_edit;
mod resample;
pub use resample::resample;
use resample::StreamResampler;

/// Whisper's input sample rate in Hz.
pub const SAMPLE_RATE: u32 = 16_000;

/// Longest tail past a container's declared duration dropped as codec padding.
const MAX_TRIMMED_PADDING_S: f64 = 0.1;
/// Consecutive undecodable packets after which decoding gives up (guards against garbage).
const MAX_CONSECUTIVE_BAD_PACKETS: usize = 1000;

/// Duration in seconds of mono samples at [`SAMPLE_RATE`].
pub fn duration_s(samples: &[f32]) -> f64 {
    samples.len() as f64 / SAMPLE_RATE as f64
}

/// Reads and decodes an audio file to mono f32 samples at 16 kHz.
pub fn load_audio_file(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|err| WhisperError::io(path, err))?;
    let extension = path.extension().and_then(|ext| ext.to_str());
    decode_audio_bytes(bytes, extension)
}

/// Lowest sample rate accepted; a header below it is taken for corrupt.
pub const MIN_SAMPLE_RATE_HZ: u32 = 1_000;
/// Highest sample rate accepted (the highest rate of common professional audio).
pub const MAX_SAMPLE_RATE_HZ: u32 = 384_000;

/// Bounds on what decoding may produce.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeLimits {
    /// Longest audio decoded, in seconds; decoding stops with
    /// [`WhisperError::AudioTooLong`] past it, so a small compressed file cannot expand
    /// into more memory than this allows (16 kHz f32: 64,000 bytes a second).
    pub max_duration_s: f64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_duration_s: f64::INFINITY,
        }
    }
}

/// Decodes an in-memory audio file to mono f32 samples at 16 kHz.
///
/// `extension_hint` (e.g. `"mp3"`) only helps the probe; the format is detected from content.
pub fn decode_audio_bytes(bytes: Vec<u8>, extension_hint: Option<&str>) -> Result<Vec<f32>> {
    decode_audio_bytes_limited(bytes, extension_hint, DecodeLimits::default())
}

/// [`decode_audio_bytes`] within `limits`. Memory while decoding is the 16 kHz output plus
/// the file's bytes and a few seconds of native-rate samples.
pub fn decode_audio_bytes_limited(
    bytes: Vec<u8>,
    extension_hint: Option<&str>,
    limits: DecodeLimits,
) -> Result<Vec<f32>> {
    if bytes.is_empty() {
        return Err(WhisperError::EmptyAudio);
    }
    let mono_16k = decode_catching_panics(bytes, extension_hint, limits)?;
    if mono_16k.is_empty() {
        return Err(WhisperError::EmptyAudio);
    }
    Ok(mono_16k)
}

/// Decoded buffers, downmixed and resampled to 16 kHz as they arrive (a stream may change
/// rate midway: each run of one rate is resampled on its own).
struct Mono16k {
    limits: DecodeLimits,
    /// The span of the decoded media that is the audio (priming and padding cut away).
    span: Span,
    /// Seconds of media decoded so far, including what the span cut away.
    media_s: f64,
    resampler: Option<StreamResampler>,
    /// Seconds of input in the runs already finished.
    finished_s: f64,
    scratch: Vec<f32>,
    out: Vec<f32>,
}

impl Mono16k {
    fn new(limits: DecodeLimits, span: Span) -> Self {
        Self {
            limits,
            span,
            media_s: 0.0,
            resampler: None,
            finished_s: 0.0,
            scratch: Vec::new(),
            out: Vec::new(),
        }
    }

    fn append(&mut self, buffer: &AudioBufferRef<'_>) -> Result<()> {
        if buffer.frames() == 0 {
            return Ok(());
        }
        let spec = buffer.spec();
        check_stream(spec.rate, spec.channels.count())?;
        if self
            .resampler
            .as_ref()
            .is_none_or(|r| r.in_rate_hz() != spec.rate)
        {
            self.finish_run();
            self.resampler = Some(StreamResampler::new(spec.rate));
        }
        self.scratch.clear();
        downmix_into(buffer, &mut self.scratch);
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(());
        };
        let (keep_from, keep_to) = self.span.keep(self.media_s, self.scratch.len(), spec.rate);
        self.media_s += self.scratch.len() as f64 / spec.rate as f64;
        self.scratch.truncate(keep_to);
        self.scratch.drain(..keep_from);
        resampler.push(&self.scratch, &mut self.out);
        if self.finished_s + resampler.input_s() > self.limits.max_duration_s {
            return Err(WhisperError::AudioTooLong {
                max_s: self.limits.max_duration_s,
            });
        }
        Ok(())
    }

    fn finish_run(&mut self) {
        if let Some(run) = self.resampler.take() {
            self.finished_s += run.input_s();
            run.finish(&mut self.out);
        }
    }

    fn finish(mut self) -> Vec<f32> {
        self.finish_run();
        // Whoever holds the audio (a server's queue) holds its length, not the growth slack.
        self.out.shrink_to_fit();
        self.out
    }
}

/// Which part of the decoded media is audio.
#[derive(Debug, Clone, Copy)]
struct Span {
    start_s: f64,
    end_s: Option<f64>,
    /// The end is exact (an edit list), not a duration that may be rounded or miscounted.
    exact_end: bool,
}

impl Span {
    /// From an MP4 edit list when there is one, else from the container's duration.
    fn of(edit: Option<mp4_edit::Edit>, params: &CodecParameters) -> Self {
        match edit {
            Some(e) => Span {
                start_s: e.start_s,
                end_s: e.duration_s.map(|d| e.start_s + d),
                exact_end: true,
            },
            None => Span {
                start_s: 0.0,
                end_s: declared_duration_s(params),
                exact_end: false,
            },
        }
    }

    /// The range of a buffer of `frames` at `rate_hz`, starting at `media_s`, to keep.
    /// Past an inexact end only a short tail is dropped (padding), never audio the
    /// container miscounted.
    fn keep(&self, media_s: f64, frames: usize, rate_hz: u32) -> (usize, usize) {
        let at = |t: f64| {
            ((t - media_s) * rate_hz as f64)
                .round()
                .clamp(0.0, frames as f64) as usize
        };
        let from = at(self.start_s);
        let to = match self.end_s {
            Some(end_s) => {
                let to = at(end_s).max(from);
                // How far the media has run past the end, this buffer included.
                let past_end_s = media_s + frames as f64 / rate_hz as f64 - end_s;
                if self.exact_end || past_end_s <= MAX_TRIMMED_PADDING_S {
                    to
                } else {
                    frames
                }
            }
            None => frames,
        };
        (from, to)
    }
}

/// The track's duration from its container (time base and length), when both are given.
fn declared_duration_s(params: &CodecParameters) -> Option<f64> {
    let time = params.time_base?.calc_time(params.n_frames?);
    let seconds = time.seconds as f64 + time.frac;
    (seconds > 0.0).then_some(seconds)
}

/// Refuses absurd stream headers: a sample rate outside 1-384 kHz, no channels.
fn check_stream(rate_hz: u32, channels: usize) -> Result<()> {
    if !(MIN_SAMPLE_RATE_HZ..=MAX_SAMPLE_RATE_HZ).contains(&rate_hz) {
        return Err(WhisperError::CorruptAudio(format!(
            "the stream declares a sample rate of {rate_hz} Hz; accepted rates are \
             {MIN_SAMPLE_RATE_HZ}-{MAX_SAMPLE_RATE_HZ} Hz"
        )));
    }
    if channels == 0 {
        return Err(WhisperError::CorruptAudio(
            "the stream declares zero channels".to_string(),
        ));
    }
    Ok(())
}

/// Runs the symphonia decode, turning a panic inside a decoder into `CorruptAudio`.
fn decode_catching_panics(
    bytes: Vec<u8>,
    extension_hint: Option<&str>,
    limits: DecodeLimits,
) -> Result<Vec<f32>> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_to_mono(bytes, extension_hint, limits)
    }));
    match outcome {
        Ok(result) => result,
        Err(payload) => Err(WhisperError::CorruptAudio(format!(
            "decoder panicked: {}",
            panic_message(payload.as_ref())
        ))),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Probes the container, picks the audio track and decodes all its packets to mono.
fn decode_to_mono(
    bytes: Vec<u8>,
    extension_hint: Option<&str>,
    limits: DecodeLimits,
) -> Result<Vec<f32>> {
    let edit = mp4_edit::audio_edit(&bytes);
    let mut format = open_container(bytes, extension_hint)?;
    let (track_id, codec_params) = select_audio_track(format.as_ref())?;
    let mut decoder = codecs()
        .make(&codec_params, &DecoderOptions::default())
        .map_err(|err| codec_error(&codec_params, err))?;

    let mut mono = Mono16k::new(limits, Span::of(edit, &codec_params));
    let mut decoded_packets = 0usize;
    let mut consecutive_bad_packets = 0usize;
    let mut last_error: Option<String> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(err))
                if err.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                break
            }
            Err(SymphoniaError::ResetRequired) => break,
            Err(err) => {
                // Garbled or truncated container: keep what decoded so far.
                last_error = Some(err.to_string());
                break;
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buffer) => {
                decoded_packets += 1;
                consecutive_bad_packets = 0;
                mono.append(&buffer)?;
            }
            // Recoverable: skip the packet, as symphonia's own player does.
            Err(err @ (SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_))) => {
                last_error = Some(err.to_string());
                consecutive_bad_packets += 1;
                if consecutive_bad_packets >= MAX_CONSECUTIVE_BAD_PACKETS {
                    break;
                }
            }
            Err(SymphoniaError::Unsupported(what)) if decoded_packets == 0 => {
                return Err(WhisperError::UnsupportedAudio(format!(
                    "unsupported codec feature: {what}"
                )));
            }
            Err(err) => {
                last_error = Some(err.to_string());
                break;
            }
        }
    }
    match (decoded_packets, last_error) {
        (0, Some(message)) => Err(WhisperError::CorruptAudio(message)),
        _ => Ok(mono.finish()),
    }
}

/// Probes the bytes for a container symphonia can read.
fn open_container(bytes: Vec<u8>, extension_hint: Option<&str>) -> Result<Box<dyn FormatReader>> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    if let Some(extension) = extension_hint {
        hint.with_extension(extension.trim_start_matches('.'));
    }
    let format_options = FormatOptions {
        enable_gapless: true,
        ..Default::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, source, &format_options, &MetadataOptions::default())
        .map_err(container_error)?;
    Ok(probed.format)
}

fn container_error(err: SymphoniaError) -> WhisperError {
    match err {
        SymphoniaError::Unsupported(what) => {
            WhisperError::UnsupportedAudio(format!("no supported audio container found ({what})"))
        }
        SymphoniaError::IoError(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            WhisperError::CorruptAudio(
                "the file is truncated: it ends inside the container header".to_string(),
            )
        }
        other => WhisperError::CorruptAudio(format!("cannot read audio container: {other}")),
    }
}

/// The default track if it is audio, else the first track with a known codec.
fn select_audio_track(format: &dyn FormatReader) -> Result<(u32, CodecParameters)> {
    let is_audio = |params: &CodecParameters| params.codec != CODEC_TYPE_NULL;
    let track = format
        .default_track()
        .filter(|track| is_audio(&track.codec_params))
        .or_else(|| {
            format
                .tracks()
                .iter()
                .find(|track| is_audio(&track.codec_params))
        })
        .ok_or_else(|| {
            WhisperError::UnsupportedAudio("the container holds no audio track".to_string())
        })?;
    Ok((track.id, track.codec_params.clone()))
}

/// symphonia's codecs and libopus for Opus.
fn codecs() -> &'static CodecRegistry {
    static CODECS: OnceLock<CodecRegistry> = OnceLock::new();
    CODECS.get_or_init(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_all::<symphonia_adapter_libopus::OpusDecoder>();
        registry
    })
}

fn codec_error(params: &CodecParameters, err: SymphoniaError) -> WhisperError {
    match err {
        SymphoniaError::Unsupported(_) => WhisperError::UnsupportedAudio(format!(
            "no decoder for codec {} in this build; convert the file, e.g. `ffmpeg -i input -ar 16000 -ac 1 output.wav`",
            params.codec
        )),
        other => WhisperError::CorruptAudio(format!("cannot initialise the decoder: {other}")),
    }
}

/// Appends the average of all channels of `buffer` to `out`.
fn downmix_into(buffer: &AudioBufferRef<'_>, out: &mut Vec<f32>) {
    match buffer {
        AudioBufferRef::U8(buf) => downmix_planes(buf, out),
        AudioBufferRef::U16(buf) => downmix_planes(buf, out),
        AudioBufferRef::U24(buf) => downmix_planes(buf, out),
        AudioBufferRef::U32(buf) => downmix_planes(buf, out),
        AudioBufferRef::S8(buf) => downmix_planes(buf, out),
        AudioBufferRef::S16(buf) => downmix_planes(buf, out),
        AudioBufferRef::S24(buf) => downmix_planes(buf, out),
        AudioBufferRef::S32(buf) => downmix_planes(buf, out),
        AudioBufferRef::F32(buf) => downmix_planes(buf, out),
        AudioBufferRef::F64(buf) => downmix_planes(buf, out),
    }
}

fn downmix_planes<S: Sample + IntoSample<f32>>(buffer: &AudioBuffer<S>, out: &mut Vec<f32>) {
    let planes = buffer.planes();
    let channels = planes.planes();
    let Some((first, rest)) = channels.split_first() else {
        return;
    };
    let start = out.len();
    out.extend(first.iter().map(|&sample| sample.into_sample()));
    let mixed = &mut out[start..];
    for channel in rest {
        for (acc, &sample) in mixed.iter_mut().zip(channel.iter()) {
            *acc += IntoSample::<f32>::into_sample(sample);
        }
    }
    let scale = 1.0 / channels.len() as f32;
    for acc in mixed.iter_mut() {
        // NaN or infinite float samples would poison the resampler and the log-mel.
        *acc = if acc.is_finite() { *acc * scale } else { 0.0 };
    }
}
