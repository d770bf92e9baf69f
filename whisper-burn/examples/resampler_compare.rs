//! Compares whisper-burn's resampler (`audio::resample`) with rubato's resamplers, each against
//! ffmpeg's soxr at its highest precision, on the shared clips and on test tones, and times
//! them on 60 s of audio.
//!
//! `cargo run --release -p whisper-burn --example resampler_compare [-- --timing-only | --no-timing]`
//!
//! Needs `ffmpeg` and `ffprobe` on PATH and the clips in `../shared/data/clips` (or the folder
//! in `CLIPS_DIR`). Every resampler gets the same mono f32 signal at the native rate (ffmpeg's
//! decode and downmix); the other rates are made from a clip by soxr. The reference is
//! `aresample=16000:resampler=soxr:precision=33:cheby=1` of that same signal. The same SER is
//! also given against ffmpeg's default resampler (swr), the one the reference Whisper
//! pipelines resample with.
//!
//! Quality: signal-to-error ratio (SER) against the reference after removing the delay that
//! maximises it (an integer lag found by cross-correlation, then a fractional one by golden
//! section, or none when that scores as well, applied as an exact phase shift), over the
//! common length less 0.1 s at each end; also over 0..7 kHz only (0..3.5 kHz for 8 kHz input),
//! with a Hann window, since the resamplers put their cutoffs at different places between 7
//! and 8 kHz. Log-mel: the difference of the encoder's features. Tones: amplitude error and
//! residual (all that is not the tone) of 1 kHz and 7 kHz tones, what is left of tones above
//! 8 kHz, which should be removed, and the response near 8 kHz. Speed: median of 5 runs of
//! building the resampler and resampling 60 s of audio.
use std::f64::consts::PI;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters, WindowFunction,
};
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use whisper_burn::audio::resample;
use whisper_burn::mel::MelFrontend;

const OUT_RATE: u32 = 16_000;
/// ffmpeg's aresample options for the reference.
const SOXR_OPTIONS: &str = "resampler=soxr:precision=33:cheby=1";
/// ffmpeg's default resampler (libswresample defaults: Kaiser beta 9, filter_size 32, cutoff 0.97), the
/// one OpenAI's `whisper.audio.load_audio` (ffmpeg `-ar 16000`) and faster-whisper (PyAV) use.
const SWR_OPTIONS: &str = "resampler=swr";
/// Output samples left out at each end of the comparison (0.1 s).
const EDGE_TRIM: usize = 1_600;
/// Largest lag searched, in output samples.
const MAX_LAG: i64 = 4_096;
/// Tone amplitude.
const TONE_AMPLITUDE: f64 = 0.5;
/// Tone length in seconds.
const TONE_SECONDS: f64 = 3.0;
/// Length of the audio timed, in seconds.
const TIMED_SECONDS: usize = 60;
/// Runs per timing; the median is reported.
const TIMED_RUNS: usize = 5;

#[derive(Clone, Copy, PartialEq)]
enum Method {
    Ours,
    FftDefault,
    FftLong,
    Sinc,
    SincCutoff95,
}

const METHODS: [Method; 5] = [
    Method::Ours,
    Method::FftDefault,
    Method::FftLong,
    Method::Sinc,
    Method::SincCutoff95,
];

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Ours => "ours",
            Method::FftDefault => "rubato-fft-1024",
            Method::FftLong => "rubato-fft-8192",
            Method::Sinc => "rubato-sinc256",
            Method::SincCutoff95 => "rubato-sinc256-c0.95",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Method::Ours => {
                "whisper_burn::audio::resample: Kaiser-windowed sinc (beta 9), 32 zero crossings, \
                 cutoff 0.97, exact polyphase table, f32"
            }
            Method::FftDefault => {
                "rubato::Fft::<f32>::new(rate, 16000, 1024, 1, FixedSync::Both) (the default: \
                 sub-chunks of ~256 frames, BlackmanHarris2)"
            }
            Method::FftLong => {
                "rubato::Fft::<f32>::new_custom(rate, 16000, 8192, 1 sub-chunk, 1, \
                 BlackmanHarris2, FixedSync::Both)"
            }
            Method::Sinc => {
                "rubato::Async::<f32>::new_sinc(16000/rate, 1.0, sinc_len 256, BlackmanHarris2, \
                 oversampling 256, cubic, automatic cutoff, chunk 1024, FixedAsync::Input)"
            }
            Method::SincCutoff95 => "as rubato-sinc256 with f_cutoff 0.95",
        }
    }

    /// The rubato resampler for `rate` -> 16 kHz; `None` for ours.
    fn build(self, rate: u32) -> Option<Box<dyn Resampler<f32>>> {
        let (rate, out) = (rate as usize, OUT_RATE as usize);
        let sinc = |params: SincInterpolationParameters| -> Box<dyn Resampler<f32>> {
            let ratio = out as f64 / rate as f64;
            Box::new(
                Async::<f32>::new_sinc(ratio, 1.0, &params, 1024, 1, FixedAsync::Input)
                    .expect("rubato sinc resampler"),
            )
        };
        let params = SincInterpolationParameters::new(256, WindowFunction::BlackmanHarris2)
            .oversampling_factor(256);
        match self {
            Method::Ours => None,
            Method::FftDefault => Some(Box::new(
                Fft::<f32>::new(rate, out, 1024, 1, FixedSync::Both).expect("rubato fft"),
            )),
            Method::FftLong => Some(Box::new(
                Fft::<f32>::new_custom(
                    rate,
                    out,
                    8192,
                    1,
                    1,
                    WindowFunction::BlackmanHarris2,
                    FixedSync::Both,
                )
                .expect("rubato fft"),
            )),
            Method::Sinc => Some(sinc(params)),
            Method::SincCutoff95 => Some(sinc(params.f_cutoff(0.95))),
        }
    }

    /// Builds the resampler and resamples all of `input` (mono, at `rate`) to 16 kHz.
    fn run(self, input: &[f32], rate: u32) -> Vec<f32> {
        match self.build(rate) {
            None => resample(input, rate, OUT_RATE),
            Some(mut resampler) => {
                let adapter = InterleavedSlice::new(input, 1, input.len()).expect("adapter");
                resampler
                    .process_all(&adapter, input.len(), None)
                    .expect("rubato process_all")
                    .take_data()
            }
        }
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("resampler_compare_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn ffmpeg_f32(args: &[&str]) -> Vec<f32> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-nostdin"])
        .args(args)
        .args(["-f", "f32le", "-c:a", "pcm_f32le", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        output.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn sample_rate_of(path: &Path) -> u32 {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0"])
        .args(["-show_entries", "stream=sample_rate", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("sample rate")
}

/// Decodes a clip to mono f32 at its own rate (ffmpeg's decoder and downmix).
fn decode_mono(path: &Path) -> (Vec<f32>, u32) {
    let rate = sample_rate_of(path);
    let path = path.to_str().expect("utf-8 path");
    (ffmpeg_f32(&["-i", path, "-ac", "1"]), rate)
}

/// Resamples mono f32 with ffmpeg's aresample (`options`) through a temporary raw f32 file.
fn ffmpeg_resample(
    signal: &[f32],
    in_rate: u32,
    out_rate: u32,
    options: &str,
    dir: &Path,
) -> Vec<f32> {
    let path = dir.join(format!("in_{in_rate}.f32"));
    let bytes: Vec<u8> = signal.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&path, bytes).expect("write temp input");
    let rate = in_rate.to_string();
    let filter = format!("aresample={out_rate}:{options}");
    let path = path.to_str().expect("utf-8 path");
    ffmpeg_f32(&[
        "-f", "f32le", "-ar", &rate, "-ac", "1", "-i", path, "-af", &filter,
    ])
}

fn fft(buffer: &mut [Complex<f64>], inverse: bool) {
    let mut planner = FftPlanner::new();
    let plan = if inverse {
        planner.plan_fft_inverse(buffer.len())
    } else {
        planner.plan_fft_forward(buffer.len())
    };
    plan.process(buffer);
}

fn spectrum(signal: &[f32], len: usize) -> Vec<Complex<f64>> {
    let mut buffer = vec![Complex::new(0.0, 0.0); len];
    for (slot, &x) in buffer.iter_mut().zip(signal) {
        slot.re = x as f64;
    }
    fft(&mut buffer, false);
    buffer
}

/// The lag (output samples) at which `test[n + lag]` best matches `reference[n]`.
fn integer_lag(reference: &[f32], test: &[f32]) -> i64 {
    let len = (reference.len() + test.len()).next_power_of_two();
    let r = spectrum(reference, len);
    let mut c = spectrum(test, len);
    for (ci, ri) in c.iter_mut().zip(&r) {
        *ci *= ri.conj();
    }
    fft(&mut c, true);
    let at = |lag: i64| c[lag.rem_euclid(len as i64) as usize].re;
    (-MAX_LAG..=MAX_LAG)
        .max_by(|&a, &b| at(a).total_cmp(&at(b)))
        .expect("lags")
}

/// Indices `n` of `reference` compared: where `test[n + lag]` exists, less the edges.
fn compared_range(reference_len: usize, test_len: usize, lag: i64) -> (usize, usize) {
    let start = (-lag).max(0) as usize + EDGE_TRIM;
    let end = (reference_len as i64).min(test_len as i64 - lag).max(0) as usize;
    (start, end.saturating_sub(EDGE_TRIM).max(start))
}

fn ser_db(reference: &[f32], aligned: impl Fn(usize) -> f64, range: (usize, usize)) -> f64 {
    let (mut signal, mut error) = (0.0f64, 0.0f64);
    for (n, &r) in reference.iter().enumerate().take(range.1).skip(range.0) {
        let r = r as f64;
        signal += r * r;
        error += (aligned(n) - r).powi(2);
    }
    if error == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (signal / error).log10()
}

struct Comparison {
    lag: i64,
    fraction: f64,
    ser_integer_db: f64,
    ser_db: f64,
    ser_band_db: f64,
    reference_len: usize,
    test_len: usize,
}

/// Aligns `test` to `reference` and measures the error, full band and below `band_hz`.
fn compare(reference: &[f32], test: &[f32], band_hz: f64) -> Comparison {
    let lag = integer_lag(reference, test);
    let range = compared_range(reference.len(), test.len(), lag);
    let ser_integer_db = ser_db(reference, |n| test[(n as i64 + lag) as usize] as f64, range);

    // Fractional delay: test advanced by lag + d through a phase shift of its spectrum.
    let len = (test.len() + 2 * MAX_LAG as usize).next_power_of_two();
    let test_spectrum = spectrum(test, len);
    let shifted = |delay: f64| -> Vec<f64> {
        let mut buffer: Vec<Complex<f64>> = test_spectrum
            .iter()
            .enumerate()
            .map(|(k, &x)| {
                let frequency = if k <= len / 2 {
                    k as f64
                } else {
                    k as f64 - len as f64
                };
                x * Complex::from_polar(1.0 / len as f64, 2.0 * PI * frequency * delay / len as f64)
            })
            .collect();
        // Nyquist bin (`len` is a power of two): keep the shifted signal real.
        let nyquist = &mut buffer[len / 2];
        *nyquist = Complex::new(nyquist.re, 0.0);
        fft(&mut buffer, true);
        buffer.iter().map(|x| x.re).collect()
    };
    let score = |fraction: f64| -> f64 {
        let y = shifted(lag as f64 + fraction);
        ser_db(reference, |n| y[n], range)
    };
    // Golden-section search for the fraction in [-1, 1].
    let golden = (5f64.sqrt() - 1.0) / 2.0;
    let (mut low, mut high) = (-1.0f64, 1.0f64);
    let mut a = high - golden * (high - low);
    let mut b = low + golden * (high - low);
    let (mut score_a, mut score_b) = (score(a), score(b));
    while high - low > 1e-6 {
        if score_a > score_b {
            high = b;
            b = a;
            score_b = score_a;
            a = high - golden * (high - low);
            score_a = score(a);
        } else {
            low = a;
            a = b;
            score_a = score_b;
            b = low + golden * (high - low);
            score_b = score(b);
        }
    }
    let fraction = (low + high) / 2.0;
    // An integer delay exactly, when that scores at least as well.
    let fraction = if score(0.0) >= score(fraction) {
        0.0
    } else {
        fraction
    };
    let y = shifted(lag as f64 + fraction);
    let ser = ser_db(reference, |n| y[n], range);

    // Band-limited SER: Hann-windowed spectra of the reference and of the error.
    let (start, end) = range;
    let segment = end - start;
    let mut r = vec![Complex::new(0.0, 0.0); segment];
    let mut e = vec![Complex::new(0.0, 0.0); segment];
    for i in 0..segment {
        let window = 0.5 - 0.5 * (2.0 * PI * i as f64 / segment as f64).cos();
        let reference_sample = reference[start + i] as f64;
        r[i].re = reference_sample * window;
        e[i].re = (y[start + i] - reference_sample) * window;
    }
    fft(&mut r, false);
    fft(&mut e, false);
    let last_bin = (band_hz / OUT_RATE as f64 * segment as f64).floor() as usize;
    let power = |x: &[Complex<f64>]| x[..=last_bin].iter().map(|c| c.norm_sqr()).sum::<f64>();
    let ser_band_db = 10.0 * (power(&r) / power(&e).max(1e-300)).log10();
    Comparison {
        lag,
        fraction,
        ser_integer_db,
        ser_db: ser,
        ser_band_db,
        reference_len: reference.len(),
        test_len: test.len(),
    }
}

/// Max and mean absolute difference of the log-mel features of two 16 kHz signals.
fn mel_difference(mel: &MelFrontend, a: &[f32], b: &[f32]) -> String {
    let (a, b) = (mel.log_mel(a), mel.log_mel(b));
    let frames = a.n_frames.min(b.n_frames);
    let (mut max, mut sum) = (0.0f64, 0.0f64);
    for bin in 0..a.n_mels {
        let row_a = &a.data[bin * a.n_frames..][..frames];
        let row_b = &b.data[bin * b.n_frames..][..frames];
        for (&x, &y) in row_a.iter().zip(row_b) {
            let d = (x as f64 - y as f64).abs();
            max = max.max(d);
            sum += d;
        }
    }
    format!("{max:.2e} / {:.2e}", sum / (frames * a.n_mels) as f64)
}

/// A tone at `rate` with 50 ms raised-cosine fades.
fn tone(rate: u32, frequency: f64) -> Vec<f32> {
    let len = (TONE_SECONDS * rate as f64) as usize;
    let fade = (0.05 * rate as f64) as usize;
    (0..len)
        .map(|n| {
            let edge = n.min(len - 1 - n);
            let gain = if edge < fade {
                0.5 - 0.5 * (PI * edge as f64 / fade as f64).cos()
            } else {
                1.0
            };
            (TONE_AMPLITUDE * gain * (2.0 * PI * frequency * n as f64 / rate as f64).sin()) as f32
        })
        .collect()
}

/// The middle of a 16 kHz tone output (0.5 s in from each end).
fn middle(output: &[f32]) -> &[f32] {
    let skip = (0.5 * OUT_RATE as f64) as usize;
    let end = ((TONE_SECONDS - 0.5) * OUT_RATE as f64) as usize;
    &output[skip.min(output.len())..end.min(output.len())]
}

/// Amplitude error (dB) and residual power relative to the tone's (dB) of a resampled tone:
/// a least-squares fit of a sine and cosine at `frequency` over the middle.
fn fit_tone(output: &[f32], frequency: f64) -> (f64, f64) {
    let skip = (0.5 * OUT_RATE as f64) as usize;
    let y = middle(output);
    let omega = 2.0 * PI * frequency / OUT_RATE as f64;
    let basis = |n: usize| {
        let phase = omega * (n + skip) as f64;
        (phase.sin(), phase.cos())
    };
    let (mut ss, mut sc, mut cc, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (n, &v) in y.iter().enumerate() {
        let (s, c) = basis(n);
        let v = v as f64;
        ss += s * s;
        sc += s * c;
        cc += c * c;
        sy += s * v;
        cy += c * v;
    }
    let det = ss * cc - sc * sc;
    let a = (sy * cc - cy * sc) / det;
    let b = (cy * ss - sy * sc) / det;
    let residual: f64 = y
        .iter()
        .enumerate()
        .map(|(n, &v)| {
            let (s, c) = basis(n);
            (v as f64 - a * s - b * c).powi(2)
        })
        .sum::<f64>()
        / y.len() as f64;
    let amplitude = (a * a + b * b).sqrt();
    let tone_power = TONE_AMPLITUDE * TONE_AMPLITUDE / 2.0;
    (
        20.0 * (amplitude / TONE_AMPLITUDE).log10(),
        10.0 * (residual.max(1e-300) / tone_power).log10(),
    )
}

/// Power left of a tone that should be removed, relative to the tone's power (dB).
fn leftover_db(output: &[f32]) -> f64 {
    let y = middle(output);
    let power = y.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / y.len() as f64;
    10.0 * (power.max(1e-300) / (TONE_AMPLITUDE * TONE_AMPLITUDE / 2.0)).log10()
}

fn median_ms(mut run: impl FnMut() -> usize) -> f64 {
    let mut times: Vec<f64> = (0..TIMED_RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(run());
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[TIMED_RUNS / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `signal` repeated to `seconds` at `rate`.
fn looped(signal: &[f32], rate: u32, seconds: usize) -> Vec<f32> {
    signal
        .iter()
        .copied()
        .cycle()
        .take(rate as usize * seconds)
        .collect()
}

fn timing(pass: usize, inputs: &[(u32, Vec<f32>)]) {
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    println!(
        "\n## Speed, pass {pass}: {TIMED_SECONDS} s of audio to 16 kHz, build + resample, \
         median of {TIMED_RUNS} runs (ms); load average before: {}",
        load_average()
    );
    println!(
        "(ours, default threads = rayon's global pool, {} threads; rubato is single-threaded)\n",
        rayon::current_num_threads()
    );
    println!("| input | method | threads | median ms | x real time |");
    println!("|---|---|---|---|---|");
    for (rate, signal) in inputs {
        let row = |name: &str, threads: String, ms: f64| {
            let speed = TIMED_SECONDS as f64 * 1e3 / ms;
            println!("| {rate} Hz | {name} | {threads} | {ms:.1} | {speed:.0}x |");
        };
        let ms = median_ms(|| single.install(|| resample(signal, *rate, OUT_RATE).len()));
        row("ours", "1".into(), ms);
        let ms = median_ms(|| resample(signal, *rate, OUT_RATE).len());
        row(
            "ours",
            format!("{} (default)", rayon::current_num_threads()),
            ms,
        );
        for method in &METHODS[1..] {
            let ms = median_ms(|| method.run(signal, *rate).len());
            row(method.name(), "1".into(), ms);
        }
    }
    println!("\nload average after: {}", load_average());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let timing_only = args.iter().any(|a| a == "--timing-only");
    let no_timing = args.iter().any(|a| a == "--no-timing");
    let clips = std::env::var_os("CLIPS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data/clips"));
    let clips = if clips.exists() {
        clips
    } else {
        // `cargo run` runs from the workspace root; the brief's path is relative to it.
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/clips")
    };
    let dir = temp_dir();

    println!("# Resampler comparison: ours vs rubato, reference ffmpeg aresample {SOXR_OPTIONS}");
    println!(
        "\nffmpeg: {}",
        String::from_utf8_lossy(
            &Command::new("ffmpeg")
                .arg("-version")
                .output()
                .expect("ffmpeg")
                .stdout
        )
        .lines()
        .next()
        .unwrap_or("?")
    );
    println!(
        "rayon threads (global pool): {}",
        rayon::current_num_threads()
    );
    println!("\nMethods:");
    for method in METHODS {
        println!("- {}: {}", method.name(), method.description());
    }

    let (jfk, jfk_rate) = decode_mono(&clips.join("jfk.flac"));
    let (sonnet, sonnet_rate) = decode_mono(&clips.join("en_librivox_sonnet_p001.mp3"));
    let (apollo, apollo_rate) = decode_mono(&clips.join("en_apollo11_nasa_8k.mp3"));
    assert_eq!(
        (jfk_rate, sonnet_rate, apollo_rate),
        (44_100, 44_100, 8_000)
    );
    let made = |signal: &[f32], rate: u32| {
        ffmpeg_resample(signal, 44_100, rate, "resampler=soxr:precision=33", &dir)
    };
    let jfk_48k = made(&jfk, 48_000);

    if !no_timing {
        let timed = [
            (44_100, looped(&sonnet, 44_100, TIMED_SECONDS)),
            (48_000, looped(&jfk_48k, 48_000, TIMED_SECONDS)),
        ];
        timing(1, &timed);
    }
    if timing_only {
        std::fs::remove_dir_all(&dir).ok();
        return;
    }

    let inputs: Vec<(String, u32, Vec<f32>)> = vec![
        ("jfk.flac (native)".into(), 44_100, jfk.clone()),
        (
            "librivox sonnet mp3 (native)".into(),
            44_100,
            sonnet.clone(),
        ),
        ("jfk.flac -> 48 kHz (soxr)".into(), 48_000, jfk_48k.clone()),
        (
            "sonnet -> 48 kHz (soxr)".into(),
            48_000,
            made(&sonnet, 48_000),
        ),
        (
            "jfk.flac -> 22.05 kHz (soxr)".into(),
            22_050,
            made(&jfk, 22_050),
        ),
        (
            "jfk.flac -> 96 kHz (soxr)".into(),
            96_000,
            made(&jfk, 96_000),
        ),
        ("apollo11 mp3 (native 8 kHz)".into(), 8_000, apollo.clone()),
    ];

    println!(
        "\n## Real audio: SER against soxr (dB, higher is better)\n\n\
         delay = output samples removed from the test signal to align it (integer lag + \
         fraction); SER int = integer lag only; SER = after the fractional delay too; \
         SER band = 0..7 kHz (0..3.5 kHz for 8 kHz input), Hann window.\n"
    );
    println!(
        "| input | rate | method | out len (ref len) | delay removed | SER int | SER | SER band \
         | vs swr: delay | SER int | SER |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mel = MelFrontend::new(80);
    let mut mel_rows = Vec::new();
    for (name, rate, signal) in &inputs {
        let reference = ffmpeg_resample(signal, *rate, OUT_RATE, SOXR_OPTIONS, &dir);
        let swr = ffmpeg_resample(signal, *rate, OUT_RATE, SWR_OPTIONS, &dir);
        let band_hz = if *rate < OUT_RATE { 3_500.0 } else { 7_000.0 };
        let outputs = std::iter::once(("ffmpeg-swr-default", swr.clone()))
            .chain(METHODS.iter().map(|m| (m.name(), m.run(signal, *rate))));
        for (method, output) in outputs {
            let c = compare(&reference, &output, band_hz);
            let s = compare(&swr, &output, band_hz);
            println!(
                "| {name} | {rate} | {method} | {} ({}) | {} {:+.3} | {:.1} | {:.1} | {:.1} \
                 | {} {:+.3} | {:.1} | {:.1} |",
                c.test_len,
                c.reference_len,
                c.lag,
                c.fraction,
                c.ser_integer_db,
                c.ser_db,
                c.ser_band_db,
                s.lag,
                s.fraction,
                s.ser_integer_db,
                s.ser_db,
            );
            mel_rows.push(format!(
                "| {name} | {rate} | {method} | {} | {} |",
                mel_difference(&mel, &reference, &output),
                mel_difference(&mel, &swr, &output)
            ));
        }
    }

    println!(
        "\n## Log-mel features (80 bins, normalised as the encoder gets them): max / mean \
         absolute difference\n\n\
         Units: one unit is 4 decades (40 dB) of mel power; features below the clip's maximum \
         minus 80 dB are clamped.\n"
    );
    println!("| input | rate | method | vs soxr: max / mean | vs swr: max / mean |");
    println!("|---|---|---|---|---|");
    for row in &mel_rows {
        println!("{row}");
    }

    println!("\n## Passband edge: amplitude (dB) of tones near 8 kHz (Whisper's top mel band)\n");
    let edge_tones = [6_000.0, 7_000.0, 7_300.0, 7_500.0, 7_700.0, 7_900.0];
    println!("| rate | method | 6 kHz | 7 kHz | 7.3 kHz | 7.5 kHz | 7.7 kHz | 7.9 kHz |");
    println!("|---|---|---|---|---|---|---|---|");
    for rate in [44_100u32, 48_000] {
        let mut rows: Vec<(&str, Vec<f64>)> = Vec::new();
        for (name, options) in [
            ("soxr p33 (reference)", SOXR_OPTIONS),
            ("ffmpeg-swr-default", SWR_OPTIONS),
        ] {
            let amps = edge_tones
                .iter()
                .map(|&f| {
                    fit_tone(
                        &ffmpeg_resample(&tone(rate, f), rate, OUT_RATE, options, &dir),
                        f,
                    )
                    .0
                })
                .collect();
            rows.push((name, amps));
        }
        for method in METHODS {
            let amps = edge_tones
                .iter()
                .map(|&f| fit_tone(&method.run(&tone(rate, f), rate), f).0)
                .collect();
            rows.push((method.name(), amps));
        }
        for (name, amps) in rows {
            let cells: Vec<String> = amps.iter().map(|a| format!("{a:.2}")).collect();
            println!("| {rate} | {name} | {} |", cells.join(" | "));
        }
    }

    println!(
        "\n## Tones ({TONE_SECONDS} s, amplitude {TONE_AMPLITUDE}, 50 ms fades; middle 2 s \
         measured)\n\n\
         Passband: amplitude error (dB) / residual, everything but the tone, relative to it \
         (dB). Stopband: power left of a tone above 8 kHz relative to the tone (dB; lower is \
         better).\n"
    );
    let stop_tones = [8_500.0, 9_000.0, 12_000.0, 15_000.0];
    println!(
        "| rate | method | 1 kHz amp / resid | high tone amp / resid | 8.5 kHz | 9 kHz | 12 kHz | 15 kHz |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for rate in [44_100u32, 48_000, 22_050, 96_000, 8_000] {
        let high = if rate < OUT_RATE { 3_500.0 } else { 7_000.0 };
        type Run<'a> = Box<dyn Fn(&[f32]) -> Vec<f32> + 'a>;
        let mut resamplers: Vec<(&str, Run)> = Vec::new();
        for (name, options) in [
            ("soxr p33 (reference)", SOXR_OPTIONS),
            ("ffmpeg-swr-default", SWR_OPTIONS),
        ] {
            let dir = &dir;
            resamplers.push((
                name,
                Box::new(move |x: &[f32]| ffmpeg_resample(x, rate, OUT_RATE, options, dir)),
            ));
        }
        for method in METHODS {
            resamplers.push((
                method.name(),
                Box::new(move |x: &[f32]| method.run(x, rate)),
            ));
        }
        for (name, run) in &resamplers {
            let (amp_1k, resid_1k) = fit_tone(&run(&tone(rate, 1_000.0)), 1_000.0);
            let (amp_high, resid_high) = fit_tone(&run(&tone(rate, high)), high);
            let stops: Vec<String> = stop_tones
                .iter()
                .map(|&f| {
                    if f < 0.5 * rate as f64 {
                        format!("{:.1}", leftover_db(&run(&tone(rate, f))))
                    } else {
                        "n/a".into()
                    }
                })
                .collect();
            println!(
                "| {rate} | {name} | {amp_1k:+.4} / {resid_1k:.1} | {:.1} kHz: {amp_high:+.4} / {resid_high:.1} | {} |",
                high / 1e3,
                stops.join(" | ")
            );
        }
    }

    if !no_timing {
        let timed = [
            (44_100, looped(&sonnet, 44_100, TIMED_SECONDS)),
            (48_000, looped(&jfk_48k, 48_000, TIMED_SECONDS)),
        ];
        timing(2, &timed);
    }
    std::fs::remove_dir_all(&dir).ok();
}
