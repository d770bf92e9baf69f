//! Audio decoding, resampling and log-mel tests against real clips and faster-whisper's features.
use std::path::{Path, PathBuf};
use std::time::Instant;

use whisper_burn::audio::{
    decode_audio_bytes, decode_audio_bytes_limited, duration_s, load_audio_file, resample,
    DecodeLimits, SAMPLE_RATE,
};
use whisper_burn::mel::{MelFrontend, N_FRAMES_PER_WINDOW};
use whisper_burn::WhisperError;

/// Path of a file under the `shared/` folder that sits beside the repository root.
fn shared(relative: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared")).join(relative)
}

/// Minimal `.npy` reader for little-endian f32 C-order arrays: (shape, data).
fn read_npy_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).expect("read npy");
    assert_eq!(&bytes[..6], b"\x93NUMPY", "not an npy file");
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header =
        std::str::from_utf8(&bytes[header_start..header_start + header_len]).expect("ascii header");
    assert!(
        header.contains("'descr': '<f4'"),
        "expected little-endian f32: {header}"
    );
    assert!(
        header.contains("'fortran_order': False"),
        "expected C order: {header}"
    );
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("shape");
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("dim"))
        .collect();
    let data: Vec<f32> = bytes[header_start + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(data.len(), shape.iter().product::<usize>());
    (shape, data)
}

/// A 16-bit PCM WAV file holding `frames` (each frame one sample per channel, in [-1, 1]).
fn wav_pcm16(rate_hz: u32, channels: u16, interleaved: &[f32]) -> Vec<u8> {
    let data_bytes = (interleaved.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_bytes as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_bytes).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate_hz.to_le_bytes());
    out.extend_from_slice(&(rate_hz * channels as u32 * 2).to_le_bytes());
    out.extend_from_slice(&(channels * 2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_bytes.to_le_bytes());
    for &sample in interleaved {
        out.extend_from_slice(&((sample.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes());
    }
    out
}

fn sine(freq_hz: f64, rate_hz: u32, seconds: f64, amplitude: f64) -> Vec<f32> {
    let n = (rate_hz as f64 * seconds) as usize;
    (0..n)
        .map(|i| {
            (amplitude * (2.0 * std::f64::consts::PI * freq_hz * i as f64 / rate_hz as f64).sin())
                as f32
        })
        .collect()
}

/// Amplitude of the `freq_hz` component of `x` (single-bin DFT).
fn tone_amplitude(x: &[f32], freq_hz: f64, rate_hz: u32) -> f64 {
    let omega = 2.0 * std::f64::consts::PI * freq_hz / rate_hz as f64;
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for (i, &v) in x.iter().enumerate() {
        re += v as f64 * (omega * i as f64).cos();
        im -= v as f64 * (omega * i as f64).sin();
    }
    2.0 * (re * re + im * im).sqrt() / x.len() as f64
}

fn mean_square(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len() as f64
}

#[test]
fn log_mel_matches_faster_whisper_reference() {
    let audio = load_audio_file(&shared(
        "data/librispeech/LibriSpeech/test-clean/61/70968/61-70968-0010.flac",
    ))
    .expect("decode librispeech flac");
    let (shape, reference) = read_npy_f32(&shared("reference/logmel80.61-70968-0010.npy"));
    assert_eq!(shape, vec![80, N_FRAMES_PER_WINDOW]);
    let features = MelFrontend::new(80).log_mel(&audio).window(0);
    let max_abs_diff = features
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!(
        "log-mel vs faster-whisper: {} samples, max abs diff {max_abs_diff:e}",
        audio.len()
    );
    assert!(max_abs_diff < 1e-4, "max abs diff {max_abs_diff}");
}

#[test]
fn jfk_flac_44k_stereo_decodes_to_11_s() {
    let start = Instant::now();
    let audio = load_audio_file(&shared("data/clips/jfk.flac")).expect("decode jfk");
    eprintln!(
        "jfk.flac decode+resample: {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let seconds = duration_s(&audio);
    assert!((seconds - 11.0).abs() < 0.1, "{seconds} s");
    let peak = audio.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    assert!(peak > 0.1 && peak <= 1.05, "peak {peak}");
}

#[test]
fn mp3_8k_decodes_to_about_89_s() {
    let audio = load_audio_file(&shared("data/clips/en_apollo11_nasa_8k.mp3")).expect("decode mp3");
    let seconds = duration_s(&audio);
    assert!((seconds - 89.0).abs() < 1.5, "{seconds} s");
    assert!(mean_square(&audio) > 1e-5);
}

#[test]
fn stereo_wav_decodes() {
    let audio = load_audio_file(&shared(
        "data/clips/en_mfa_michaelandsickmichael_stereo.wav",
    ))
    .expect("decode wav");
    let seconds = duration_s(&audio);
    assert!(seconds > 40.0 && seconds < 60.0, "{seconds} s");
    assert!(mean_square(&audio) > 1e-6);
}

#[test]
fn other_mp3_clips_decode() {
    for clip in [
        "data/clips/multilingual/ja_common_voice_ja_24511055.mp3",
        "data/clips/multilingual/de.mp3",
    ] {
        let audio = load_audio_file(&shared(clip)).unwrap_or_else(|e| panic!("{clip}: {e}"));
        assert!(duration_s(&audio) > 1.0, "{clip}");
    }
}

/// Ogg/Opus decodes through libopus (`tests/formats.rs` compares it with ffmpeg's decode).
#[test]
fn opus_decodes() {
    let path = shared("data/clips/multilingual/es_mls_13697_11991_000000.opus");
    let audio = load_audio_file(&path).expect("opus decodes");
    assert!(duration_s(&audio) > 10.0, "{} s", duration_s(&audio));
}

#[test]
fn empty_bytes_are_empty_audio() {
    assert!(matches!(
        decode_audio_bytes(Vec::new(), Some("wav")),
        Err(WhisperError::EmptyAudio)
    ));
}

#[test]
fn zero_length_wav_is_empty_audio() {
    let wav = wav_pcm16(16_000, 1, &[]);
    let result = decode_audio_bytes(wav, Some("wav"));
    assert!(
        matches!(result, Err(WhisperError::EmptyAudio)),
        "{result:?}"
    );
}

/// A header claiming 1 Hz (which would make 1 s of samples into hours of audio) or an
/// ultrasonic rate is refused with a message naming the rate.
#[test]
fn absurd_sample_rates_are_refused() {
    let samples = vec![0.1f32; 16_000];
    for rate_hz in [1u32, 999, 384_001, 4_000_000] {
        match decode_audio_bytes(wav_pcm16(rate_hz, 1, &samples), Some("wav")) {
            Err(WhisperError::CorruptAudio(m)) => {
                assert!(m.contains(&format!("{rate_hz} Hz")), "{m}")
            }
            other => panic!("{rate_hz} Hz: {other:?}"),
        }
    }
    for rate_hz in [1_000u32, 384_000] {
        decode_audio_bytes(wav_pcm16(rate_hz, 1, &samples), Some("wav"))
            .unwrap_or_else(|e| panic!("{rate_hz} Hz: {e}"));
    }
}

/// Decoding stops once the audio passes the limit (a small compressed file cannot expand
/// without bound); audio within it decodes to the same samples as without a limit.
#[test]
fn decoding_stops_at_the_duration_limit() {
    let mp3 = std::fs::read(shared("data/clips/en_apollo11_nasa_8k.mp3")).expect("read mp3");
    let full = decode_audio_bytes(mp3.clone(), Some("mp3")).expect("decode");
    let full_s = duration_s(&full);
    let limited = |max_duration_s| {
        decode_audio_bytes_limited(mp3.clone(), Some("mp3"), DecodeLimits { max_duration_s })
    };
    match limited(full_s / 2.0) {
        Err(WhisperError::AudioTooLong { max_s }) => assert_eq!(max_s, full_s / 2.0),
        other => panic!("{other:?}"),
    }
    assert_eq!(limited(full_s + 1.0).expect("within the limit"), full);
}

#[test]
fn random_bytes_give_an_error_not_a_panic() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for (round, len) in [1usize, 7, 64, 1000, 10_000, 200_000]
        .into_iter()
        .enumerate()
    {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let hint = ["mp3", "wav", "flac", "ogg", "m4a", "bin"][round % 6];
        assert!(
            decode_audio_bytes(bytes, Some(hint)).is_err(),
            "random bytes of length {len} decoded"
        );
    }
}

#[test]
fn truncated_files_do_not_panic() {
    for clip in [
        "data/clips/jfk.flac",
        "data/clips/en_apollo11_nasa_8k.mp3",
        "data/clips/en_mfa_michaelandsickmichael_stereo.wav",
    ] {
        let bytes = std::fs::read(shared(clip)).expect("read clip");
        for fraction in [0.3, 0.01] {
            let cut = &bytes[..(bytes.len() as f64 * fraction) as usize];
            match decode_audio_bytes(cut.to_vec(), None) {
                Ok(audio) => assert!(!audio.is_empty()),
                Err(err) => eprintln!("{clip} cut to {fraction}: {err}"),
            }
        }
    }
    let flac = std::fs::read(shared("data/clips/jfk.flac")).expect("read jfk");
    let cut = flac[..flac.len() * 3 / 10].to_vec();
    let audio = decode_audio_bytes(cut, Some("flac")).expect("the first 30% of a flac decodes");
    assert!(
        duration_s(&audio) > 2.0 && duration_s(&audio) < 5.0,
        "{} s",
        duration_s(&audio)
    );
}

#[test]
fn resampled_sine_keeps_frequency_and_amplitude() {
    let tone = sine(1000.0, 48_000, 2.0, 0.5);
    let stereo: Vec<f32> = tone.iter().flat_map(|&s| [s, s]).collect();
    let audio =
        decode_audio_bytes(wav_pcm16(48_000, 2, &stereo), Some("wav")).expect("decode sine wav");
    assert_eq!(audio.len(), 32_000);
    let middle = &audio[1000..31_000];
    let amplitude = tone_amplitude(middle, 1000.0, SAMPLE_RATE);
    assert!((amplitude - 0.5).abs() < 0.005, "amplitude {amplitude}");
    let tone_power = amplitude * amplitude / 2.0;
    let residual_power = mean_square(middle) - tone_power;
    assert!(
        residual_power < tone_power * 1e-5,
        "residual {residual_power:e} vs tone {tone_power:e}"
    );
    for other_hz in [500.0, 2000.0, 3000.0, 7000.0] {
        assert!(
            tone_amplitude(middle, other_hz, SAMPLE_RATE) < 1e-3,
            "{other_hz} Hz"
        );
    }
}

#[test]
fn resampler_suppresses_aliases_and_keeps_passband() {
    // 10 kHz at 48 kHz would alias to 6 kHz at 16 kHz.
    let above_nyquist = resample(&sine(10_000.0, 48_000, 1.0, 0.5), 48_000, SAMPLE_RATE);
    let alias = tone_amplitude(&above_nyquist[500..15_500], 6000.0, SAMPLE_RATE);
    assert!(alias < 0.5e-3, "alias amplitude {alias}");
    // 7 kHz (passband) survives 44.1 kHz -> 16 kHz; 200 Hz survives 8 kHz -> 16 kHz.
    let passband = resample(&sine(7000.0, 44_100, 1.0, 0.5), 44_100, SAMPLE_RATE);
    assert!((tone_amplitude(&passband[500..15_500], 7000.0, SAMPLE_RATE) - 0.5).abs() < 0.01);
    let upsampled = resample(&sine(200.0, 8000, 1.0, 0.5), 8000, SAMPLE_RATE);
    assert_eq!(upsampled.len(), 16_000);
    assert!((tone_amplitude(&upsampled[500..15_500], 200.0, SAMPLE_RATE) - 0.5).abs() < 0.005);
}

#[test]
fn timings_of_log_mel_and_resampling() {
    let thirty_s = sine(440.0, SAMPLE_RATE, 30.0, 0.3);
    let frontend = MelFrontend::new(80);
    let _warm = frontend.log_mel(&thirty_s[..16_000]);
    let start = Instant::now();
    let mel = frontend.log_mel(&thirty_s);
    eprintln!(
        "log-mel of 30 s: {:.2} ms ({} frames)",
        start.elapsed().as_secs_f64() * 1e3,
        mel.n_frames
    );
    assert_eq!(mel.n_frames, 3000);

    let ten_min_44k = sine(440.0, 44_100, 600.0, 0.3);
    let start = Instant::now();
    let resampled = resample(&ten_min_44k, 44_100, SAMPLE_RATE);
    let elapsed_s = start.elapsed().as_secs_f64();
    eprintln!(
        "resample 10 min 44.1k->16k: {:.0} ms (x6 = {:.1} s per hour)",
        elapsed_s * 1e3,
        elapsed_s * 6.0
    );
    assert_eq!(resampled.len(), 9_600_000);
}

/// Valid headers followed by garbage, and clips with random bytes overwritten: any result but
/// a panic or a hang is fine.
#[test]
fn damaged_files_never_panic_or_hang() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next_byte = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 24) as u8
    };
    let clips: Vec<Vec<u8>> = [
        "data/clips/jfk.flac",
        "data/clips/en_apollo11_nasa_8k.mp3",
        "data/clips/en_mfa_michaelandsickmichael_stereo.wav",
        "data/clips/multilingual/es_mls_13697_11991_000000.opus",
    ]
    .iter()
    .map(|clip| std::fs::read(shared(clip)).expect("read clip"))
    .collect();
    for round in 0..120 {
        let clip = &clips[round % clips.len()];
        let kept_bytes = 16 + (next_byte() as usize * 97 + next_byte() as usize) % 4000;
        let mut head_and_garbage = clip[..kept_bytes.min(clip.len())].to_vec();
        let garbage_bytes = next_byte() as usize * 40;
        head_and_garbage.extend((0..garbage_bytes).map(|_| next_byte()));
        let mut overwritten = clip[..clip.len().min(200_000)].to_vec();
        for _ in 0..next_byte() % 50 {
            let index = (next_byte() as usize * 256 + next_byte() as usize) * 3 % overwritten.len();
            overwritten[index] = next_byte();
        }
        for input in [head_and_garbage, overwritten] {
            let start = Instant::now();
            let result = decode_audio_bytes(input, None);
            assert!(
                start.elapsed().as_secs_f64() < 5.0,
                "slow decode: {result:?}"
            );
            if let Ok(audio) = result {
                assert!(!audio.is_empty() && audio.iter().all(|x| x.is_finite()));
            }
        }
    }
}

#[test]
fn log_mel_frame_count_and_window_padding() {
    let mel = MelFrontend::new(80).log_mel(&vec![0.1f32; 16_000]);
    assert_eq!((mel.n_mels, mel.n_frames), (80, 100));
    let window = mel.window(0);
    assert_eq!(window.len(), 80 * N_FRAMES_PER_WINDOW);
    for row in window.chunks_exact(N_FRAMES_PER_WINDOW) {
        assert!(row[..100].iter().all(|&x| x != 0.0));
        assert!(row[100..].iter().all(|&x| x == 0.0));
    }
    assert!(mel.window(5000).iter().all(|&x| x == 0.0));
}

#[test]
fn log_mel_of_tiny_inputs_does_not_panic() {
    let frontend = MelFrontend::new(128);
    for len in [0usize, 1, 2, 39, 41, 159, 160, 200, 401] {
        let mel = frontend.log_mel(&vec![0.5f32; len]);
        assert_eq!(mel.n_frames, len / 160);
        assert_eq!(mel.data.len(), 128 * mel.n_frames);
        assert!(mel.data.iter().all(|x| x.is_finite()));
        assert_eq!(mel.window(0).len(), 128 * N_FRAMES_PER_WINDOW);
    }
}

#[test]
fn filterbank_128_has_no_empty_filter() {
    let frontend = MelFrontend::new(128);
    let bank = frontend.filterbank();
    assert_eq!(bank.len(), 128 * 201);
    for row in bank.chunks_exact(201) {
        assert!(row.iter().any(|&w| w > 0.0));
    }
}

#[test]
fn resampler_lengths_and_dc_gain() {
    assert_eq!(
        resample(&vec![0.0; 48_000], 48_000, SAMPLE_RATE).len(),
        16_000
    );
    assert_eq!(
        resample(&vec![0.0; 48_001], 48_000, SAMPLE_RATE).len(),
        16_001
    );
    assert_eq!(
        resample(&vec![0.0; 44_100], 44_100, SAMPLE_RATE).len(),
        16_000
    );
    // 44 057 Hz reduces to 16000/44057: too many phases for an exact table, so rows interpolate.
    for rate_hz in [44_100u32, 22_050, 11_025, 8000, 44_057, 96_000] {
        let output = resample(&vec![0.25f32; rate_hz as usize * 2], rate_hz, SAMPLE_RATE);
        let middle = &output[2000..output.len() - 2000];
        assert!(
            middle.iter().all(|&x| (x - 0.25).abs() < 1e-4),
            "{rate_hz} Hz"
        );
    }
    assert!(resample(&[], 44_100, SAMPLE_RATE).is_empty());
}
