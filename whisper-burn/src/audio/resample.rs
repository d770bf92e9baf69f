// Kept over rubato (measured 2026-12-03 against rubato 5.1.0; ffmpeg
// `aresample=16000:resampler=soxr:precision=33:cheby=1` of the same mono signal as reference).
// Command: `cargo run --release -p whisper-burn --example resampler_compare`; machine: Intel(R)
// Xeon(R) Processor @ 2.80GHz, nproc 2 (shared VM). Tables and conclusion:
// bench-results/2026-12-03-resampler-rubato/README.md. Against rubato's best, `Fft`:
// - SER vs soxr (dB), ours / rubato with its sub-sample delay removed for it: 44.1 kHz
//   75.2 / 72.9 (jfk) and 40.4 / 39.2 (sonnet), 22.05 kHz 75.2 / 68.4, 96 kHz 75.2 / 69.8;
//   rubato better at 48 kHz (75.2 / 83.2) and 8 kHz (102.6 / 112.7). As delivered, rubato's
//   output lags by 0.18-0.5 output samples at 44.1, 22.05 and 96 kHz (SER 14-23 dB); ours has
//   no delay at any rate.
// - Log-mel features, mean |difference| vs soxr on jfk: ours 7e-6 to 8e-6, rubato 1.6e-4 to
//   4.4e-4 at 44.1, 22.05 and 96 kHz (its 7-8 kHz roll-off moves with the rate); ours is also
//   closer to ffmpeg's default resampler, which the reference Whisper pipelines use.
// - rubato is better where the 80 dB log-mel range does not reach, and faster: tones above
//   8 kHz leave -140 to -150 dB vs ours -91 (8.5 kHz) to -118 dB (15 kHz); 0-7 kHz SER 120-127 vs
//   102-106 dB; 60 s at 44.1 kHz in 19-24 ms vs ours 40-54 ms on one thread (27-34 ms on 2),
//   at 48 kHz 25-41 vs 40-52 ms (24-31 ms on 2).
//! Band-limited resampling to 16 kHz: a Kaiser-windowed sinc evaluated at exact rational
//! positions (polyphase table), for a whole signal or for a stream pushed in pieces.
use rayon::prelude::*;

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
                *value = filter.output_sample(input, 0, first_output + offset as u64);
            }
        });
    output
}

/// Resamples a mono stream pushed in pieces to [`SAMPLE_RATE`](super::SAMPLE_RATE). Holds only
/// the inputs the next outputs need, so decoding a long file never keeps it at its native
/// rate. Its output is bit-identical to [`resample`] of the whole stream: every output is the
/// same dot product over the same inputs, with zeros outside the signal.
pub(crate) struct StreamResampler {
    in_rate_hz: u32,
    /// `None` when the input is already at the output rate.
    filter: Option<PolyphaseSinc>,
    /// Inputs from absolute index `window_start` on.
    window: Vec<f32>,
    window_start: u64,
    input_samples: u64,
    next_output: u64,
}

impl StreamResampler {
    pub(crate) fn new(in_rate_hz: u32) -> Self {
        let out_rate_hz = super::SAMPLE_RATE;
        Self {
            in_rate_hz,
            filter: (in_rate_hz != out_rate_hz)
                .then(|| PolyphaseSinc::new(in_rate_hz, out_rate_hz)),
            window: Vec::new(),
            window_start: 0,
            input_samples: 0,
            next_output: 0,
        }
    }

    pub(crate) fn in_rate_hz(&self) -> u32 {
        self.in_rate_hz
    }

    /// Seconds of input pushed so far.
    pub(crate) fn input_s(&self) -> f64 {
        self.input_samples as f64 / self.in_rate_hz as f64
    }

    /// Adds inputs; appends to `out` the outputs they complete (in blocks, for parallelism).
    pub(crate) fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.input_samples += input.len() as u64;
        let Some(filter) = &self.filter else {
            out.extend_from_slice(input);
            return;
        };
        self.window.extend_from_slice(input);
        let covered = filter.outputs_covered(self.input_samples);
        if covered >= self.next_output + RESAMPLE_CHUNK_SAMPLES as u64 {
            self.emit(covered, out);
        }
    }

    /// Appends the remaining outputs (the signal's end padded with zeros).
    pub(crate) fn finish(mut self, out: &mut Vec<f32>) {
        if let Some(filter) = &self.filter {
            let total = filter.output_len(self.input_samples as usize) as u64;
            self.emit(total, out);
        }
    }

    /// Appends outputs `next_output..end` and drops the inputs no later output needs.
    fn emit(&mut self, end: u64, out: &mut Vec<f32>) {
        let Some(filter) = &self.filter else {
            return;
        };
        let start = self.next_output;
        let first = out.len();
        out.resize(first + (end - start) as usize, 0.0);
        let (window, window_start) = (&self.window, self.window_start);
        out[first..]
            .par_chunks_mut(RESAMPLE_CHUNK_SAMPLES)
            .enumerate()
            .for_each(|(chunk_index, chunk)| {
                let chunk_start = start + (chunk_index * RESAMPLE_CHUNK_SAMPLES) as u64;
                for (offset, value) in chunk.iter_mut().enumerate() {
                    *value =
                        filter.output_sample(window, window_start, chunk_start + offset as u64);
                }
            });
        self.next_output = end;
        let needed_from = filter.first_input(end).max(0) as u64;
        let drop = needed_from
            .saturating_sub(self.window_start)
            .min(self.window.len() as u64);
        self.window.drain(..drop as usize);
        self.window_start += drop;
    }
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

    /// Input index of the first tap of output `n` (negative before the start).
    fn first_input(&self, n: u64) -> i64 {
        let base = (n as u128 * self.down as u128 / self.up as u128) as i64;
        base + 1 - self.half_taps as i64
    }

    /// Outputs whose taps all lie in the first `input_samples` inputs.
    fn outputs_covered(&self, input_samples: u64) -> u64 {
        // first_input(n) + taps <= input_samples  <=>  floor(n * down / up) <= last_base
        let last_base = input_samples as i64 - 1 - self.half_taps as i64;
        if last_base < 0 {
            return 0;
        }
        let bound = (last_base as u128 + 1) * self.up as u128;
        (bound.div_ceil(self.down as u128) as u64)
            .min(self.output_len(input_samples as usize) as u64)
    }

    /// Output sample `n`, at input position `n * down / up`, from `window`, which holds the
    /// inputs from index `window_start` on (zeros outside the signal).
    fn output_sample(&self, window: &[f32], window_start: u64, n: u64) -> f32 {
        let remainder = (n as u128 * self.down as u128 % self.up as u128) as u64;
        let first_input = self.first_input(n) - window_start as i64;
        let input = window;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize, mut state: u64) -> Vec<f32> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Pushed in uneven pieces, the stream gives the whole-signal output bit for bit, for
    /// exact and interpolated ratios, up and down, and for signals shorter than the kernel.
    #[test]
    fn streaming_equals_whole_signal() {
        for (rate_hz, len) in [
            (44_100, 200_000),
            (48_000, 150_000),
            (8_000, 70_000),
            (22_050, 90_000),
            (44_099, 120_000),
            (96_000, 40),
            (16_000, 5_000),
        ] {
            let input = noise(len, rate_hz as u64 + 1);
            let whole = resample(&input, rate_hz, super::super::SAMPLE_RATE);
            let mut stream = StreamResampler::new(rate_hz);
            let mut out = Vec::new();
            let mut at = 0usize;
            let mut piece = 1usize;
            while at < input.len() {
                let end = (at + piece).min(input.len());
                stream.push(&input[at..end], &mut out);
                at = end;
                piece = (piece * 7 + 13) % 5_000 + 1;
            }
            assert!((stream.input_s() - len as f64 / rate_hz as f64).abs() < 1e-9);
            stream.finish(&mut out);
            assert_eq!(out.len(), whole.len(), "{rate_hz} Hz");
            let same = out
                .iter()
                .zip(&whole)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{rate_hz} Hz: streaming output differs");
        }
    }

    /// The window stays a few seconds long however long the stream is.
    #[test]
    fn streaming_holds_a_bounded_window() {
        let mut stream = StreamResampler::new(48_000);
        let mut out = Vec::new();
        let piece = noise(4_800, 7);
        for _ in 0..1_000 {
            stream.push(&piece, &mut out);
            assert!(stream.window.len() < 48_000 * 8, "{}", stream.window.len());
        }
    }
}
