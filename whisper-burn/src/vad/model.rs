//! Silero VAD v6 (faster-whisper 1.2.1's `silero_vad_v6.onnx`) on the host.
//!
//! Why a host implementation: measured on the 390 s chapter `longform/2830-3980.flac`
//! (12198 windows), 2-core Intel Xeon @ 2.80 GHz (AVX-512) shared with a compiling
//! build, 2026-12-03:
//!
//! | implementation | model time | max abs diff vs onnxruntime |
//! |---|---|---|
//! | this file (2 threads / 1 thread) | 0.31-0.42 s / 0.46 s | 3.8e-6 (3.2e-6 on the 276 s chapter) |
//! | onnxruntime 1.32, as faster-whisper runs it (1 thread, batches of 10000 windows) | 1.37-1.47 s | - |
//! | burn-import 0.21 (burn-onnx) generated model, Flex backend, batches of 10000 | 6.3-7.9 s | 2.8e-6 |
//!
//! burn-import does import this graph (it has no If/Loop: faster-whisper's v6 export is
//! 16 kHz only; Pad reflect, Conv, Slice, LSTM are all supported) and its output is
//! right, but it ran 15-20x slower than this code (its LSTM steps window by window as
//! burn tensor ops), and it generates the model at build time from the ONNX file (the
//! weights would have to be fetched before compiling) with burn-onnx, onnx-ir and a
//! code formatter as build dependencies (a 15-minute first build here). Here the only
//! new dependency is `prost` to read the protobuf. Per 390 s: about 0.27 s encoding
//! (the STFT matrix product is 45% of it; an FFT would cut that), 0.09 s recurrence.
//!
//! The graph, per 576-sample input row (64 samples of context + a 512-sample window):
//! reflect-pad 128 each side, STFT as a stride-128 convolution with 258 basis rows (real
//! and imaginary parts of 129 bins), the first of its 5 frames dropped, magnitudes; four
//! conv1d (k 3, pad 1; strides 1, 2, 2, 1) + ReLU to 128 features; one LSTM (hidden 128)
//! whose *sequence* is the rows, so its state carries from window to window; ReLU, a 1x1
//! conv and a sigmoid give one speech probability per window.
//!
//! Here every row's encoder runs batched as matrix products (frames x STFT basis, then
//! im2col x conv weights, through [`HostMatrix`]), the LSTM's input projection too; only
//! the recurrence runs window by window.
use super::onnx::{GraphProto, ModelProto, NodeProto};
use crate::cpu::gemm::HostMatrix;
use crate::cpu::math;
#[cfg(target_arch = "x86_64")]
use crate::cpu::math::{simd_level, SimdLevel};
use crate::error::{Result, WhisperError};
use std::path::Path;

/// Samples per window at 16 kHz (what faster-whisper passes as `num_samples`).
pub const WINDOW: usize = 512;
/// Samples of the previous window prepended to each one (`context_size_samples`).
pub const CONTEXT: usize = 64;
/// Where `weights/fetch.sh` puts the model, relative to the repository root.
pub const DEFAULT_MODEL_PATH: &str = "weights/models/silero_vad/silero_vad_v6.onnx";

const ROW: usize = WINDOW + CONTEXT;
/// Reflect padding on each side of a row before the STFT.
const PAD: usize = 128;
const FFT: usize = 256;
const HOP: usize = 128;
const BINS: usize = FFT / 2 + 1;
/// STFT frames kept per row: 5 computed, the first sliced off by the graph.
const FRAMES: usize = 4;
const HIDDEN: usize = 128;
/// Rows whose encoder runs as one batch (bounds the temporary buffers to a few MB).
const BLOCK: usize = 1024;

/// The operators of the graph, in order: a model whose graph differs is refused.
const OPS: [&str; 25] = [
    "Pad",
    "Unsqueeze",
    "Conv",
    "Slice",
    "Slice",
    "Pow",
    "Pow",
    "Add",
    "Sqrt",
    "Conv",
    "Relu",
    "Conv",
    "Relu",
    "Conv",
    "Relu",
    "Conv",
    "Relu",
    "Transpose",
    "LSTM",
    "Squeeze",
    "Relu",
    "Transpose",
    "Conv",
    "Sigmoid",
    "Reshape",
];

/// A conv1d (kernel 3, padding 1) + ReLU over a fixed input length, as one matrix product
/// over the taps that reach inside the input for some output position.
#[derive(Debug, Clone)]
struct ConvLayer {
    c_in: usize,
    t_in: usize,
    t_out: usize,
    stride: usize,
    taps: Vec<usize>,
    matrix: HostMatrix,
}

impl ConvLayer {
    fn new(weight: &[f32], bias: Vec<f32>, dims: [usize; 3], t_in: usize, stride: usize) -> Self {
        let [c_out, c_in, k] = dims;
        let t_out = (t_in + 2 - k) / stride + 1;
        let taps: Vec<usize> = (0..k)
            .filter(|&tap| (0..t_out).any(|t| Self::position(t, tap, stride, t_in).is_some()))
            .collect();
        let d_in = taps.len() * c_in;
        let mut w = vec![0f32; c_out * d_in];
        for o in 0..c_out {
            for (j, &tap) in taps.iter().enumerate() {
                for c in 0..c_in {
                    w[o * d_in + j * c_in + c] = weight[(o * c_in + c) * k + tap];
                }
            }
        }
        Self {
            c_in,
            t_in,
            t_out,
            stride,
            taps,
            matrix: HostMatrix::new(&w, c_out, d_in, Some(bias)),
        }
    }

    /// The input position tap `tap` of output `t` reads, if inside the input.
    fn position(t: usize, tap: usize, stride: usize, t_in: usize) -> Option<usize> {
        (t * stride + tap).checked_sub(1).filter(|&p| p < t_in)
    }

    /// `x`: `rows` items of `[t_in][c_in]` -> `rows` items of `[t_out][c_out]`, ReLU'd.
    fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let d_in = self.taps.len() * self.c_in;
        let mut cols = vec![0f32; rows * self.t_out * d_in];
        for (r, item) in x.chunks_exact(self.t_in * self.c_in).enumerate() {
            for t in 0..self.t_out {
                let dst = &mut cols[(r * self.t_out + t) * d_in..][..d_in];
                for (j, &tap) in self.taps.iter().enumerate() {
                    if let Some(p) = Self::position(t, tap, self.stride, self.t_in) {
                        dst[j * self.c_in..(j + 1) * self.c_in]
                            .copy_from_slice(&item[p * self.c_in..(p + 1) * self.c_in]);
                    }
                }
            }
        }
        let mut out = self.matrix.forward(&cols, rows * self.t_out);
        out.iter_mut().for_each(|v| *v = v.max(0.0));
        out
    }
}

/// The LSTM state carried from window to window.
#[derive(Debug, Clone)]
struct LstmState {
    h: [f32; HIDDEN],
    c: [f32; HIDDEN],
}

/// Silero VAD v6 with its weights on the host. Cheap to share across threads (`&self`).
#[derive(Debug, Clone)]
pub struct SileroVad {
    /// `[258][256]`: rows 0..129 the real part, 129..258 the imaginary part.
    stft: HostMatrix,
    convs: Vec<ConvLayer>,
    /// `x W^T + (Wb + Rb)`, gates in ONNX order i, o, f, c.
    lstm_input: HostMatrix,
    /// The recurrent weight transposed, `[128][512]`, so a step is 128 AXPYs.
    lstm_recurrent_t: Vec<f32>,
    decoder_w: Vec<f32>,
    decoder_b: f32,
}

impl SileroVad {
    /// Loads `silero_vad_v6.onnx` (as `weights/fetch.sh` puts it in
    /// [`DEFAULT_MODEL_PATH`]); a missing file or a different graph is a
    /// [`WhisperError::Vad`] that says so.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(WhisperError::Vad(format!(
                "Silero VAD model {} not found: run `bash weights/fetch.sh` (it puts \
                 silero_vad_v6.onnx from faster-whisper 1.2.1 in weights/models/silero_vad/)",
                path.display()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| WhisperError::io(path, e))?;
        Self::from_onnx_bytes(&bytes)
            .map_err(|e| WhisperError::Vad(format!("{}: {e}", path.display())))
    }

    /// Loads the model from the bytes of its ONNX file.
    pub fn from_onnx_bytes(bytes: &[u8]) -> Result<Self> {
        let model = ModelProto::parse(bytes)?;
        let graph = model.graph();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        if ops != OPS {
            return Err(WhisperError::Vad(format!(
                "not the Silero VAD v6 graph this loader implements (operators {ops:?})"
            )));
        }
        let nodes = &graph.node;
        check_graph(graph, nodes)?;
        let weight = |node: &NodeProto, i: usize, dims: &[usize]| -> Result<Vec<f32>> {
            graph.initializer(input(node, i)?)?.floats(dims)
        };
        let stft = weight(&nodes[2], 1, &[2 * BINS, 1, FFT])?;
        let mut convs = Vec::new();
        let layer_dims = [[128, BINS, 3], [64, 128, 3], [64, 64, 3], [128, 64, 3]];
        let mut t_in = FRAMES;
        for (node, dims) in [9, 11, 13, 15].map(|i| &nodes[i]).iter().zip(layer_dims) {
            let stride = node
                .ints("strides")
                .and_then(|s| s.first().copied())
                .unwrap_or(1)
                .max(1) as usize;
            let conv = ConvLayer::new(
                &weight(node, 1, &dims)?,
                weight(node, 2, &dims[..1])?,
                dims,
                t_in,
                stride,
            );
            t_in = conv.t_out;
            convs.push(conv);
        }
        if t_in != 1 {
            return Err(WhisperError::Vad(
                "the encoder does not end in one frame".into(),
            ));
        }
        let lstm = &nodes[18];
        let w = weight(lstm, 1, &[1, 4 * HIDDEN, HIDDEN])?;
        let r = weight(lstm, 2, &[1, 4 * HIDDEN, HIDDEN])?;
        let b = weight(lstm, 3, &[1, 8 * HIDDEN])?;
        let bias: Vec<f32> = (0..4 * HIDDEN).map(|j| b[j] + b[4 * HIDDEN + j]).collect();
        let mut lstm_recurrent_t = vec![0f32; HIDDEN * 4 * HIDDEN];
        for j in 0..4 * HIDDEN {
            for k in 0..HIDDEN {
                lstm_recurrent_t[k * 4 * HIDDEN + j] = r[j * HIDDEN + k];
            }
        }
        let decoder = &nodes[22];
        Ok(Self {
            stft: HostMatrix::new(&stft, 2 * BINS, FFT, None),
            convs,
            lstm_input: HostMatrix::new(&w, 4 * HIDDEN, HIDDEN, Some(bias)),
            lstm_recurrent_t,
            decoder_w: weight(decoder, 1, &[1, HIDDEN, 1])?,
            decoder_b: weight(decoder, 2, &[1])?[0],
        })
    }

    /// One speech probability per 512-sample window of `audio` (16 kHz mono), exactly as
    /// faster-whisper 1.2.1 computes them (`get_speech_timestamps` + `SileroVADModel`):
    /// the audio is zero-padded by `512 - len % 512` samples (a whole window when the
    /// length is a multiple of 512), each window gets the previous window's last 64
    /// samples as context (zeros for the first), the last window's own last 64 samples
    /// are zeroed (its code writes them through a NumPy view), and the LSTM state runs
    /// through every window in order from zero.
    pub fn speech_probs(&self, audio: &[f32]) -> Result<Vec<f32>> {
        if audio.is_empty() {
            return Err(WhisperError::EmptyAudio);
        }
        if let Some(i) = audio.iter().position(|v| !v.is_finite()) {
            return Err(WhisperError::Vad(format!(
                "sample {i} is not a finite number ({})",
                audio[i]
            )));
        }
        let mut padded = audio.to_vec();
        padded.resize(audio.len() + WINDOW - audio.len() % WINDOW, 0.0);
        let n = padded.len();
        padded[n - CONTEXT..].fill(0.0);
        let windows = n / WINDOW;
        let mut state = LstmState {
            h: [0.0; HIDDEN],
            c: [0.0; HIDDEN],
        };
        let mut probs = Vec::with_capacity(windows);
        // The recurrence over one block runs while the next block is encoded.
        let encode = |start: usize| self.encode(&padded, start, BLOCK.min(windows - start));
        let mut current = encode(0);
        for next in (BLOCK..windows + BLOCK).step_by(BLOCK) {
            let (_, upcoming) = rayon::join(
                || self.recur(&current, &mut state, &mut probs),
                || (next < windows).then(|| encode(next)),
            );
            match upcoming {
                Some(block) => current = block,
                None => break,
            }
        }
        Ok(probs)
    }

    /// The LSTM input projections (`[rows][512]`) of windows `start..start + rows`.
    fn encode(&self, padded: &[f32], start: usize, rows: usize) -> Vec<f32> {
        let mut frames = vec![0f32; rows * FRAMES * FFT];
        let mut ext = [0f32; ROW + 2 * PAD];
        let mut row = [0f32; ROW];
        for (r, dst) in frames.chunks_exact_mut(FRAMES * FFT).enumerate() {
            let w = start + r;
            row.fill(0.0);
            if w > 0 {
                row[..CONTEXT].copy_from_slice(&padded[w * WINDOW - CONTEXT..w * WINDOW]);
            }
            row[CONTEXT..].copy_from_slice(&padded[w * WINDOW..(w + 1) * WINDOW]);
            for (p, e) in ext.iter_mut().enumerate() {
                // Reflect padding (the edge sample not repeated).
                let j = p as isize - PAD as isize;
                let j = if j < 0 {
                    -j
                } else if j >= ROW as isize {
                    2 * (ROW as isize - 1) - j
                } else {
                    j
                };
                *e = row[j as usize];
            }
            for (f, frame) in dst.chunks_exact_mut(FFT).enumerate() {
                let at = (f + 1) * HOP;
                frame.copy_from_slice(&ext[at..at + FFT]);
            }
        }
        let spec = self.stft.forward(&frames, rows * FRAMES);
        let mut x: Vec<f32> = spec
            .chunks_exact(2 * BINS)
            .flat_map(|s| (0..BINS).map(move |b| (s[b] * s[b] + s[BINS + b] * s[BINS + b]).sqrt()))
            .collect();
        for conv in &self.convs {
            x = conv.forward(&x, rows);
        }
        self.lstm_input.forward(&x, rows)
    }

    /// The LSTM over the input projections `gates_in` (`[n][512]`), from `state`; one
    /// probability per window. Vectorized with FMA and a polynomial `exp` where the CPU
    /// has them, else scalar with the standard library's `exp`.
    fn recur(&self, gates_in: &[f32], state: &mut LstmState, probs: &mut Vec<f32>) {
        #[cfg(target_arch = "x86_64")]
        match simd_level() {
            // SAFETY: the CPU has the features these functions are compiled for.
            SimdLevel::Avx512 => return unsafe { self.recur_avx512(gates_in, state, probs) },
            SimdLevel::Avx2 => return unsafe { self.recur_avx2(gates_in, state, probs) },
            SimdLevel::Portable => {}
        }
        self.recur_with::<false>(gates_in, state, probs)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn recur_avx2(&self, gates_in: &[f32], state: &mut LstmState, probs: &mut Vec<f32>) {
        self.recur_with::<true>(gates_in, state, probs)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn recur_avx512(&self, gates_in: &[f32], state: &mut LstmState, probs: &mut Vec<f32>) {
        self.recur_with::<true>(gates_in, state, probs)
    }

    /// `FMA`: fused multiply-adds and [`math::exp`] (only where FMA is in hardware:
    /// `mul_add` is a slow software call otherwise).
    #[inline(always)]
    fn recur_with<const FMA: bool>(
        &self,
        gates_in: &[f32],
        s: &mut LstmState,
        probs: &mut Vec<f32>,
    ) {
        const G: usize = 4 * HIDDEN;
        /// Gate values kept in registers while the recurrent weights stream by.
        const LANES: usize = 64;
        let madd = |a: f32, b: f32, c: f32| if FMA { a.mul_add(b, c) } else { a * b + c };
        let sigmoid = |x: f32| 1.0 / (1.0 + if FMA { math::exp(-x) } else { (-x).exp() });
        let tanh = |x: f32| {
            1.0 - 2.0
                / (1.0
                    + if FMA {
                        math::exp(2.0 * x)
                    } else {
                        (2.0 * x).exp()
                    })
        };
        for g_in in gates_in.chunks_exact(G) {
            let mut g = [0f32; G];
            for (b, block) in g.chunks_exact_mut(LANES).enumerate() {
                let mut acc = [0f32; LANES];
                acc.copy_from_slice(&g_in[b * LANES..(b + 1) * LANES]);
                for (k, &hk) in s.h.iter().enumerate() {
                    let w = &self.lstm_recurrent_t[k * G + b * LANES..k * G + (b + 1) * LANES];
                    for (a, &wj) in acc.iter_mut().zip(w) {
                        *a = madd(hk, wj, *a);
                    }
                }
                block.copy_from_slice(&acc);
            }
            for j in 0..HIDDEN {
                let i = sigmoid(g[j]);
                let o = sigmoid(g[HIDDEN + j]);
                let f = sigmoid(g[2 * HIDDEN + j]);
                let c = madd(f, s.c[j], i * tanh(g[3 * HIDDEN + j]));
                s.c[j] = c;
                s.h[j] = o * tanh(c);
            }
            let mut logit = self.decoder_b;
            for (h, w) in s.h.iter().zip(&self.decoder_w) {
                logit = madd(h.max(0.0), *w, logit);
            }
            probs.push(sigmoid(logit));
        }
    }
}

/// The name of input `i` of `node`.
fn input(node: &NodeProto, i: usize) -> Result<&str> {
    node.input
        .get(i)
        .map(String::as_str)
        .ok_or_else(|| WhisperError::Vad(format!("the {} node lacks its input {i}", node.op_type)))
}

/// The attributes the implementation depends on: reflect padding of 128 each side, the
/// STFT's stride and the slices that drop its first frame, the LSTM's size and direction.
fn check_graph(graph: &GraphProto, nodes: &[NodeProto]) -> Result<()> {
    let bad = |what: &str| {
        Err(WhisperError::Vad(format!(
            "unexpected Silero graph: {what}"
        )))
    };
    if nodes[0].string("mode") != Some(b"reflect".as_slice())
        || graph.initializer(input(&nodes[0], 1)?)?.int64s()? != [0, PAD as i64, 0, PAD as i64]
    {
        return bad("the input padding is not reflect 128 each side");
    }
    if nodes[2].ints("strides") != Some(&[HOP as i64][..]) {
        return bad("the STFT hop is not 128");
    }
    let starts = |n: &NodeProto| graph.initializer(input(n, 1)?).and_then(|t| t.int64s());
    if starts(&nodes[3])? != [0, 1] || starts(&nodes[4])? != [BINS as i64, 1] {
        return bad("the STFT slices are not [0, 129) and [129, 258) from frame 1");
    }
    let lstm = &nodes[18];
    if lstm.int("hidden_size") != Some(HIDDEN as i64)
        || lstm.string("direction").is_some_and(|d| d != b"forward")
        || lstm.int("layout").is_some_and(|l| l != 0)
    {
        return bad("the LSTM is not forward, sequence-first, hidden size 128");
    }
    Ok(())
}
