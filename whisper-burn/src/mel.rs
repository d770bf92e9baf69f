//! Whisper's log-mel frontend, matching faster-whisper 1.2.1's NumPy `FeatureExtractor` as
//! `transcribe` uses it: the waveform is padded with [`HOP_LENGTH`] zeros at the end, framed
//! with a centred (reflect-padded) STFT, the last frame is dropped, and the log10 mel power is
//! clamped to `global_max - 8` and scaled as `(x + 4) / 4` over the whole audio.
use std::fmt;
use std::sync::Arc;

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::audio::SAMPLE_RATE;

/// STFT size in samples (25 ms at 16 kHz).
pub const N_FFT: usize = 400;
/// STFT hop in samples (10 ms at 16 kHz).
pub const HOP_LENGTH: usize = 160;
/// Frames in one 30 s encoder window (480 000 samples).
pub const N_FRAMES_PER_WINDOW: usize = 3000;
/// Frequency bins of a real FFT of [`N_FFT`] points.
const N_FREQ_BINS: usize = N_FFT / 2 + 1;
/// Floor of the mel power before the log.
const MEL_POWER_FLOOR: f64 = 1e-10;
/// Dynamic range kept below the loudest log10 mel value.
const LOG_RANGE_DECADES: f64 = 8.0;
/// Frames computed per rayon task.
const FRAMES_PER_TASK: usize = 64;

/// One triangular mel filter: weights for FFT bins `first_bin..first_bin + weights.len()`.
#[derive(Debug, Clone)]
struct MelFilter {
    first_bin: usize,
    weights: Vec<f64>,
}

/// Log-mel feature extractor for a fixed number of mel bins (80 or 128).
#[derive(Clone)]
pub struct MelFrontend {
    n_mels: usize,
    filters: Vec<MelFilter>,
    window: Vec<f64>,
    fft: Arc<dyn Fft<f64>>,
}

impl fmt::Debug for MelFrontend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MelFrontend")
            .field("n_mels", &self.n_mels)
            .finish_non_exhaustive()
    }
}

/// Log-mel features, row-major `[n_mels][n_frames]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMel {
    pub n_mels: usize,
    /// Content frames, `samples.len() / HOP_LENGTH` (faster-whisper's `content_frames`).
    pub n_frames: usize,
    pub data: Vec<f32>,
}

impl LogMel {
    /// The `[n_mels][N_FRAMES_PER_WINDOW]` features of the 30 s window starting at
    /// `start_frame`, zero (0.0) past the end of the audio, as faster-whisper pads them.
    pub fn window(&self, start_frame: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; self.n_mels * N_FRAMES_PER_WINDOW];
        let end_frame = self
            .n_frames
            .min(start_frame.saturating_add(N_FRAMES_PER_WINDOW));
        if start_frame >= end_frame {
            return out;
        }
        let copied_frames = end_frame - start_frame;
        for (mel, out_row) in out.chunks_exact_mut(N_FRAMES_PER_WINDOW).enumerate() {
            let row_start = mel * self.n_frames + start_frame;
            out_row[..copied_frames]
                .copy_from_slice(&self.data[row_start..row_start + copied_frames]);
        }
        out
    }

    /// Duration covered by the frames, in seconds.
    pub fn duration_s(&self) -> f64 {
        (self.n_frames * HOP_LENGTH) as f64 / SAMPLE_RATE as f64
    }
}

impl MelFrontend {
    /// Builds the filterbank (librosa/Slaney, 0–8 kHz) and the periodic Hann window.
    pub fn new(n_mels: usize) -> Self {
        let filters = mel_filterbank(n_mels);
        let window = periodic_hann(N_FFT);
        let fft = FftPlanner::<f64>::new().plan_fft_forward(N_FFT);
        MelFrontend {
            n_mels,
            filters,
            window,
            fft,
        }
    }

    /// Number of mel bins.
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// The dense `[n_mels][N_FFT / 2 + 1]` filterbank, for inspection and tests.
    pub fn filterbank(&self) -> Vec<f64> {
        let mut dense = vec![0.0; self.n_mels * N_FREQ_BINS];
        for (mel, filter) in self.filters.iter().enumerate() {
            let row = &mut dense[mel * N_FREQ_BINS..(mel + 1) * N_FREQ_BINS];
            row[filter.first_bin..filter.first_bin + filter.weights.len()]
                .copy_from_slice(&filter.weights);
        }
        dense
    }

    /// Normalised log-mel features of mono 16 kHz `samples`, as faster-whisper's `transcribe`
    /// feeds them to the encoder.
    ///
    /// The feature extractor makes `samples.len() / 160 + 1` frames (the STFT of the audio padded
    /// with 160 zeros, last STFT frame dropped) and normalises over all of them; `transcribe` then
    /// treats one frame fewer as content (`content_frames = features.shape[-1] - 1`). The
    /// returned [`LogMel`] holds exactly those `samples.len() / 160` content frames (normalised
    /// with the maximum over all frames), so `window(seek)` matches faster-whisper's segments.
    pub fn log_mel(&self, samples: &[f32]) -> LogMel {
        let n_stft_frames = samples.len() / HOP_LENGTH + 1;
        let n_frames = n_stft_frames - 1;
        let log10_frame_major = self.log10_mel_frames(samples, n_stft_frames);
        let global_max = log10_frame_major
            .par_iter()
            .copied()
            .reduce(|| f64::NEG_INFINITY, f64::max);
        let floor = global_max - LOG_RANGE_DECADES;
        let mut data = vec![0.0f32; self.n_mels * n_frames];
        data.par_chunks_mut(n_frames.max(1))
            .enumerate()
            .for_each(|(mel, row)| {
                for (frame, value) in row.iter_mut().enumerate() {
                    let log10 = log10_frame_major[frame * self.n_mels + mel];
                    *value = ((log10.max(floor) + 4.0) / 4.0) as f32;
                }
            });
        LogMel {
            n_mels: self.n_mels,
            n_frames,
            data,
        }
    }

    /// log10(max(mel power, 1e-10)) per frame, frame-major `[n_frames][n_mels]`.
    fn log10_mel_frames(&self, samples: &[f32], n_frames: usize) -> Vec<f64> {
        let mut out = vec![0.0f64; n_frames * self.n_mels];
        out.par_chunks_mut(FRAMES_PER_TASK * self.n_mels)
            .enumerate()
            .for_each(|(task, block)| {
                let mut spectrum = vec![Complex::new(0.0, 0.0); N_FFT];
                let mut scratch = vec![Complex::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
                let mut power = vec![0.0f64; N_FREQ_BINS];
                for (offset, mel_out) in block.chunks_exact_mut(self.n_mels).enumerate() {
                    let frame = task * FRAMES_PER_TASK + offset;
                    self.windowed_frame(samples, frame, &mut spectrum);
                    self.fft.process_with_scratch(&mut spectrum, &mut scratch);
                    for (bin, value) in power.iter_mut().zip(&spectrum) {
                        *bin = value.norm_sqr();
                    }
                    self.apply_filters(&power, mel_out);
                }
            });
        out
    }

    /// Fills `spectrum` with frame `frame` of the centred, reflect-padded signal times the window.
    fn windowed_frame(&self, samples: &[f32], frame: usize, spectrum: &mut [Complex<f64>]) {
        let first = (frame * HOP_LENGTH) as i64 - (N_FFT / 2) as i64;
        let interior = first >= 0 && first as usize + N_FFT <= samples.len();
        if interior {
            let slice = &samples[first as usize..first as usize + N_FFT];
            for ((out, &sample), &weight) in spectrum.iter_mut().zip(slice).zip(&self.window) {
                *out = Complex::new(sample as f64 * weight, 0.0);
            }
            return;
        }
        let padded_len = samples.len() + HOP_LENGTH;
        for (tap, (out, &weight)) in spectrum.iter_mut().zip(&self.window).enumerate() {
            let index = reflect_index(first + tap as i64, padded_len);
            let sample = samples.get(index).copied().unwrap_or(0.0);
            *out = Complex::new(sample as f64 * weight, 0.0);
        }
    }

    /// `mel_out[m] = log10(max(sum_k filter[m][k] * power[k], 1e-10))`.
    fn apply_filters(&self, power: &[f64], mel_out: &mut [f64]) {
        for (out, filter) in mel_out.iter_mut().zip(&self.filters) {
            let bins = &power[filter.first_bin..filter.first_bin + filter.weights.len()];
            let mel_power: f64 = bins.iter().zip(&filter.weights).map(|(p, w)| p * w).sum();
            *out = mel_power.max(MEL_POWER_FLOOR).log10();
        }
    }
}

/// NumPy `reflect` padding: index `j` of a signal of `len` samples mirrored at both ends
/// (edge sample not repeated), periodic for pads longer than the signal.
fn reflect_index(j: i64, len: usize) -> usize {
    if len <= 1 {
        return 0;
    }
    let period = 2 * (len as i64 - 1);
    let folded = j.rem_euclid(period);
    if folded >= len as i64 {
        (period - folded) as usize
    } else {
        folded as usize
    }
}

/// Periodic Hann window, `np.hanning(n + 1)[:-1]`.
fn periodic_hann(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        .collect()
}

/// Slaney mel scale (librosa `htk=False`): linear below 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let log_step = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        min_log_mel + (hz / MIN_LOG_HZ).ln() / log_step
    } else {
        hz / F_SP
    }
}

/// Inverse of [`hz_to_mel`].
fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let log_step = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (log_step * (mel - min_log_mel)).exp()
    } else {
        F_SP * mel
    }
}

/// librosa `filters.mel(sr=16000, n_fft=400, n_mels, fmin=0, fmax=8000, norm="slaney")`,
/// stored sparsely (each filter keeps only its non-zero bins).
fn mel_filterbank(n_mels: usize) -> Vec<MelFilter> {
    let max_mel = hz_to_mel(SAMPLE_RATE as f64 / 2.0);
    let band_edges_hz: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(max_mel * i as f64 / (n_mels + 1) as f64))
        .collect();
    let bin_hz: Vec<f64> = (0..N_FREQ_BINS)
        .map(|k| k as f64 * SAMPLE_RATE as f64 / N_FFT as f64)
        .collect();
    (0..n_mels)
        .map(|mel| {
            let (left, center, right) = (
                band_edges_hz[mel],
                band_edges_hz[mel + 1],
                band_edges_hz[mel + 2],
            );
            let area_norm = 2.0 / (right - left);
            let dense: Vec<f64> = bin_hz
                .iter()
                .map(|&hz| {
                    let rising = (hz - left) / (center - left);
                    let falling = (right - hz) / (right - center);
                    rising.min(falling).max(0.0) * area_norm
                })
                .collect();
            sparse_filter(&dense)
        })
        .collect()
}

fn sparse_filter(dense: &[f64]) -> MelFilter {
    let first_bin = dense.iter().position(|&w| w > 0.0).unwrap_or(0);
    let last_bin = dense.iter().rposition(|&w| w > 0.0).unwrap_or(0);
    let weights = if last_bin >= first_bin {
        dense[first_bin..=last_bin].to_vec()
    } else {
        Vec::new()
    };
    MelFilter { first_bin, weights }
}
