//! Audio loading: decode any container/codec symphonia knows (wav, flac, mp3, ogg/vorbis,
//! m4a/aac, ...), downmix to mono by averaging the channels and resample to Whisper's 16 kHz
//! with a band-limited windowed-sinc (Kaiser) resampler.
//!
//! The container is detected from the content; an extension is only a hint. Nothing here
//! panics on bad input: every failure is a [`WhisperError`].
use std::io::Cursor;
use std::path::Path;

use rayon::prelude::*;
use symphonia::core::audio::{AudioBuffer, AudioBufferRef};
use symphonia::core::codecs::{CodecParameters, DecoderOptions, CODEC_TYPE_NULL, CODEC_TYPE_OPUS};
use symphonia::core::conv::IntoSample;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::sample::Sample;

use crate::{Result, WhisperError};

/// Whisper's input sample rate in Hz.
pub const SAMPLE_RATE: u32 = 16_000;

/// Zero crossings of the sinc on each side of the resampling kernel (at the output cutoff).
const SINC_ZERO_CROSSINGS: usize = 32;
/// Kaiser window shape: beta 9.0 gives about 90 dB of stop-band attenuation.
const KAISER_BETA: f64 = 9.0;
/// Kernel cutoff as a fraction of the lower of the two Nyquist frequencies. Slightly below 1 so
/// that most of the transition band lies below Nyquist and little aliases back (libswresample
/// uses 0.97, resampy 0.95).
const CUTOFF_FRACTION_OF_NYQUIST: f64 = 0.97;
/// Largest number of exact polyphase rows kept; rarer ratios interpolate between rows.
const MAX_EXACT_PHASES: u64 = 2048;
/// Number of rows used when the exact ratio needs more than [`MAX_EXACT_PHASES`].
const INTERPOLATED_PHASES: usize = 1024;
/// Output samples per rayon task in the resampler.
const RESAMPLE_CHUNK_SAMPLES: usize = 1 << 15;
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

/// Decodes an in-memory audio file to mono f32 samples at 16 kHz.
///
/// `extension_hint` (e.g. `"mp3"`) only helps the probe; the format is detected from content.
pub fn decode_audio_bytes(bytes: Vec<u8>, extension_hint: Option<&str>) -> Result<Vec<f32>> {
    if bytes.is_empty() {
        return Err(WhisperError::EmptyAudio);
    }
    let segments = decode_catching_panics(bytes, extension_hint)?;
    let mut mono_16k = Vec::new();
    for segment in &segments {
        if segment.rate_hz == 0 && !segment.samples.is_empty() {
            return Err(WhisperError::CorruptAudio(
                "the stream declares a sample rate of 0 Hz".to_string(),
            ));
        }
        mono_16k.extend(resample(&segment.samples, segment.rate_hz, SAMPLE_RATE));
    }
    if mono_16k.is_empty() {
        return Err(WhisperError::EmptyAudio);
    }
    Ok(mono_16k)
}

/// A run of mono samples decoded at one sample rate (a stream may change rate midway).
#[derive(Debug)]
struct DecodedSegment {
    rate_hz: u32,
    samples: Vec<f32>,
}

/// Runs the symphonia decode, turning a panic inside a decoder into `CorruptAudio`.
fn decode_catching_panics(
    bytes: Vec<u8>,
    extension_hint: Option<&str>,
) -> Result<Vec<DecodedSegment>> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_to_mono(bytes, extension_hint)
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
fn decode_to_mono(bytes: Vec<u8>, extension_hint: Option<&str>) -> Result<Vec<DecodedSegment>> {
    let mut format = open_container(bytes, extension_hint)?;
    let (track_id, codec_params) = select_audio_track(format.as_ref())?;
    reject_unsupported_codec(&codec_params)?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&codec_params, &DecoderOptions::default())
        .map_err(|err| codec_error(&codec_params, err))?;

    let mut segments: Vec<DecodedSegment> = Vec::new();
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
                append_mono(&buffer, &mut segments);
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
        _ => Ok(segments),
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

/// Codecs symphonia can demux but not decode, with a way out for the user.
fn reject_unsupported_codec(params: &CodecParameters) -> Result<()> {
    if params.codec == CODEC_TYPE_OPUS {
        return Err(WhisperError::UnsupportedAudio(
            "opus audio cannot be decoded (no pure-Rust opus decoder is built in); convert it first, \
             e.g. `ffmpeg -i input.opus -ar 16000 -ac 1 output.wav`"
                .to_string(),
        ));
    }
    Ok(())
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

/// Downmixes a decoded buffer and appends it to the segment of its sample rate.
fn append_mono(buffer: &AudioBufferRef<'_>, segments: &mut Vec<DecodedSegment>) {
    let rate_hz = buffer.spec().rate;
    let needs_new_segment = segments
        .last()
        .is_none_or(|segment| segment.rate_hz != rate_hz);
    if needs_new_segment {
        segments.push(DecodedSegment {
            rate_hz,
            samples: Vec::new(),
        });
    }
    if let Some(segment) = segments.last_mut() {
        downmix_into(buffer, &mut segment.samples);
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

/// Resamples mono audio from `in_rate_hz` to `out_rate_hz` with a windowed-sinc filter.
///
/// The kernel is a Kaiser-windowed sinc with [`SINC_ZERO_CROSSINGS`] zero crossings per side,
/// cut off just below the lower Nyquist frequency, evaluated at exact rational positions
/// (polyphase table) so that output sample `n` sits at input time `n * in / out`. Output length
/// is `ceil(len * out / in)`. A zero rate or equal rates return the input unchanged.
pub fn resample(input: &[f32], in_rate_hz: u32, out_rate_hz: u32) -> Vec<f32> {
    if in_rate_hz == out_rate_hz || in_rate_hz == 0 || out_rate_hz == 0 || input.is_empty() {
        return input.to_vec();
    }
    let filter = PolyphaseSinc::new(in_rate_hz, out_rate_hz);
    let output_samples = filter.output_len(input.len());
    let mut output = vec![0.0f32; output_samples];
    output
        .par_chunks_mut(RESAMPLE_CHUNK_SAMPLES)
        .enumerate()
        .for_each(|(chunk_index, chunk)| {
            let first_output = (chunk_index * RESAMPLE_CHUNK_SAMPLES) as u64;
            for (offset, value) in chunk.iter_mut().enumerate() {
                *value = filter.output_sample(input, first_output + offset as u64);
            }
        });
    output
}

/// Polyphase table of a Kaiser-windowed sinc for the ratio `up / down` (reduced fraction).
struct PolyphaseSinc {
    /// Output rate / gcd.
    up: u64,
    /// Input rate / gcd.
    down: u64,
    /// Input samples on each side of the output position.
    half_taps: usize,
    /// Rows in the table (minus the closing row); equals `up` when exact.
    phases: usize,
    /// True when each output position maps to one row exactly.
    exact: bool,
    /// `(phases + 1) x (2 * half_taps)` coefficients; row `p` is for fractional offset `p / phases`.
    table: Vec<f32>,
}

impl PolyphaseSinc {
    fn new(in_rate_hz: u32, out_rate_hz: u32) -> Self {
        let divisor = gcd(in_rate_hz as u64, out_rate_hz as u64);
        let up = out_rate_hz as u64 / divisor;
        let down = in_rate_hz as u64 / divisor;
        // Cutoff relative to the input Nyquist frequency.
        let cutoff = CUTOFF_FRACTION_OF_NYQUIST * (out_rate_hz as f64 / in_rate_hz as f64).min(1.0);
        let half_taps = (SINC_ZERO_CROSSINGS as f64 / cutoff).ceil() as usize;
        let exact = up <= MAX_EXACT_PHASES;
        let phases = if exact {
            up as usize
        } else {
            INTERPOLATED_PHASES
        };
        let taps = 2 * half_taps;
        let mut table = Vec::with_capacity((phases + 1) * taps);
        for phase in 0..=phases {
            let fraction = phase as f64 / phases as f64;
            table.extend(kernel_row(fraction, half_taps, cutoff));
        }
        PolyphaseSinc {
            up,
            down,
            half_taps,
            phases,
            exact,
            table,
        }
    }

    fn taps(&self) -> usize {
        2 * self.half_taps
    }

    fn row(&self, phase: usize) -> &[f32] {
        &self.table[phase * self.taps()..(phase + 1) * self.taps()]
    }

    fn output_len(&self, input_samples: usize) -> usize {
        let numerator = input_samples as u128 * self.up as u128;
        numerator.div_ceil(self.down as u128) as usize
    }

    /// Output sample `n`, at input position `n * down / up`.
    fn output_sample(&self, input: &[f32], n: u64) -> f32 {
        let position = n as u128 * self.down as u128;
        let base = (position / self.up as u128) as i64;
        let remainder = (position % self.up as u128) as u64;
        let first_input = base + 1 - self.half_taps as i64;
        if self.exact {
            return dot_at(input, first_input, self.row(remainder as usize));
        }
        let row_position = remainder as f64 / self.up as f64 * self.phases as f64;
        let lower = (row_position.floor() as usize).min(self.phases - 1);
        let weight = (row_position - lower as f64) as f32;
        let low = dot_at(input, first_input, self.row(lower));
        let high = dot_at(input, first_input, self.row(lower + 1));
        low + weight * (high - low)
    }
}

/// Kernel taps for an output at `fraction` input samples past the tap `half_taps - 1`,
/// normalised to unit DC gain.
fn kernel_row(fraction: f64, half_taps: usize, cutoff: f64) -> Vec<f32> {
    let window_half_width = half_taps as f64;
    let bessel_beta = bessel_i0(KAISER_BETA);
    let taps: Vec<f64> = (0..2 * half_taps)
        .map(|tap| {
            let distance = fraction + (half_taps as f64 - 1.0) - tap as f64;
            let ratio = (distance / window_half_width).clamp(-1.0, 1.0);
            let window = bessel_i0(KAISER_BETA * (1.0 - ratio * ratio).sqrt()) / bessel_beta;
            cutoff * sinc(cutoff * distance) * window
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.iter().map(|&tap| (tap / sum) as f32).collect()
}

/// Normalised sinc: sin(pi x) / (pi x).
fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let angle = std::f64::consts::PI * x;
        angle.sin() / angle
    }
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let quarter_x2 = x * x / 4.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..200 {
        term *= quarter_x2 / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Dot product of `row` with `input[first..first + row.len()]`, zeros outside the input.
fn dot_at(input: &[f32], first: i64, row: &[f32]) -> f32 {
    let end = first + row.len() as i64;
    if first >= 0 && end <= input.len() as i64 {
        return dot(&input[first as usize..end as usize], row);
    }
    let mut sum = 0.0f32;
    for (tap, &coefficient) in row.iter().enumerate() {
        let index = first + tap as i64;
        if index >= 0 && (index as usize) < input.len() {
            sum += input[index as usize] * coefficient;
        }
    }
    sum
}

/// Dot product with 8 independent accumulators so the compiler vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [0.0f32; LANES];
    let a_chunks = a.chunks_exact(LANES);
    let b_chunks = b.chunks_exact(LANES);
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((sum, &xi), &yi) in acc.iter_mut().zip(x).zip(y) {
            *sum += xi * yi;
        }
    }
    acc.iter().sum::<f32>() + tail
}
