//! The self-draft: the main model's decoder with 8-bit or 4-bit weights, logits over a
//! reduced vocabulary, and int8 copies of the main model's cross-attention keys/values
//! (so no second encoder runs). It runs on the host with its own kernels, so it is
//! refused on GPU backends (nothing silently falls back to the CPU there).
use crate::error::{Result, SpecError};
use crate::proposer::{Proposal, ProposeRequest, Proposer};
use burn::prelude::*;
use rayon::prelude::*;
use std::sync::Arc;
use whisper_burn::backend::WhisperBackend;
use whisper_burn::cpu::math::{gelu_chunk, softmax_row, HostNorm};
use whisper_burn::cpu::quant::{QuantMatrix, QuantRows};
use whisper_burn::decoding::{DecodeRequest, LogitFilters};
use whisper_burn::model::layers::{tensor_f32, PlainLinear};
use whisper_burn::{DecoderState, Pipeline, Whisper};

/// Text tokens kept in the draft's output projection (the lowest ids: byte-pair merges
/// are numbered by frequency), plus every special and timestamp token.
pub const DEFAULT_DRAFT_VOCAB: usize = 16_384;

/// Encoder frames of padding after the audio that the draft's cross attention reads
/// (1 s). Attending to the audio only cuts the draft's largest per-row memory traffic
/// (int8 keys/values of all 1500 frames: 9 MB per step for `base`) by the share of the
/// window that is padding, at no measured cost in acceptance; the main model, which
/// decides every token, always attends to the whole window.
pub const DRAFT_MARGIN_FRAMES: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightBits {
    Q8,
    Q4,
}

impl WeightBits {
    pub fn from_bits(bits: u8) -> Result<Self> {
        match bits {
            8 => Ok(WeightBits::Q8),
            4 => Ok(WeightBits::Q4),
            b => Err(SpecError::Config(format!(
                "self-draft weights must be 8 or 4 bits, not {b}"
            ))),
        }
    }
    fn bits(self) -> u8 {
        match self {
            WeightBits::Q8 => 8,
            WeightBits::Q4 => 4,
        }
    }
}

struct QLinear {
    w: QuantMatrix,
    bias: Option<Vec<f32>>,
}

impl QLinear {
    fn from(l: &PlainLinear, bits: u8) -> Self {
        Self {
            w: QuantMatrix::quantize(&l.weight, l.d_out, l.d_in, bits),
            bias: l.bias.clone(),
        }
    }
    /// `W x + b` for every row of `xs`; the weights are read once for all rows.
    fn apply_rows(&self, xs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let n = self.w.rows();
        let refs: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
        let mut out = vec![0f32; xs.len() * n];
        self.w.matmul(&refs, &mut out);
        out.chunks(n)
            .map(|row| match &self.bias {
                Some(b) => row.iter().zip(b).map(|(o, b)| o + b).collect(),
                None => row.to_vec(),
            })
            .collect()
    }
}

/// Tokens to run through the draft for one row, from position `pos` on; the logits after
/// the last one are wanted.
#[derive(Debug, Clone)]
struct Feed {
    tokens: Vec<u32>,
    pos: usize,
}

struct DraftLayer {
    ln_self: HostNorm,
    q: QLinear,
    k: QLinear,
    v: QLinear,
    o: QLinear,
    ln_cross: HostNorm,
    cq: QLinear,
    co: QLinear,
    ln_ffn: HostNorm,
    fc1: QLinear,
    fc2: QLinear,
}

/// Quantized decoder weights derived from a main model; shared read-only.
pub struct SelfDraft {
    layers: Vec<DraftLayer>,
    ln_final: HostNorm,
    embed: QuantMatrix,
    positions: Vec<f32>,
    vocab_ids: Vec<u32>,
    vocab_proj: QuantMatrix,
    d_model: usize,
    n_heads: usize,
    vocab_size: usize,
    pub bits: WeightBits,
    /// Padding frames after the audio the draft's cross attention still reads (`None`:
    /// the whole window, as the main model).
    pub margin_frames: Option<usize>,
}

impl SelfDraft {
    /// Quantizes the decoder of `main`; the projection keeps `vocab` text tokens; cross
    /// attention reads the audio's frames plus `margin_frames` (`None`: all frames).
    pub fn from_main<B: WhisperBackend>(
        main: &Pipeline<B>,
        bits: WeightBits,
        vocab: usize,
        margin_frames: Option<usize>,
    ) -> Result<Self> {
        if !B::supports_host_kernels() {
            return Err(SpecError::Config(
                "self-drafts (self-q8, self-q4) run on the CPU kernels only; on a GPU device \
                 use a model draft (--draft DIR)"
                    .into(),
            ));
        }
        let dec = main.model.decoder.to_plain()?;
        let b = bits.bits();
        let layers = dec
            .layers
            .iter()
            .map(|l| DraftLayer {
                ln_self: l.self_attn_layer_norm.clone(),
                q: QLinear::from(&l.self_attn[0], b),
                k: QLinear::from(&l.self_attn[1], b),
                v: QLinear::from(&l.self_attn[2], b),
                o: QLinear::from(&l.self_attn[3], b),
                ln_cross: l.encoder_attn_layer_norm.clone(),
                cq: QLinear::from(&l.encoder_attn[0], b),
                co: QLinear::from(&l.encoder_attn[3], b),
                ln_ffn: l.final_layer_norm.clone(),
                fc1: QLinear::from(&l.fc1, b),
                fc2: QLinear::from(&l.fc2, b),
            })
            .collect();
        let (vocab_size, d_model) = (dec.embed_tokens.d_out, dec.d_model);
        let emb = &dec.embed_tokens.weight;
        let eot = main.tokenizer.special.eot as usize;
        let vocab_ids: Vec<u32> = (0..vocab.min(eot))
            .chain(eot..vocab_size)
            .map(|i| i as u32)
            .collect();
        let mut sub = Vec::with_capacity(vocab_ids.len() * d_model);
        for id in &vocab_ids {
            sub.extend_from_slice(&emb[*id as usize * d_model..(*id as usize + 1) * d_model]);
        }
        Ok(Self {
            layers,
            ln_final: dec.layer_norm.clone(),
            embed: QuantMatrix::quantize(emb, vocab_size, d_model, 8),
            positions: dec.embed_positions,
            vocab_proj: QuantMatrix::quantize(&sub, vocab_ids.len(), d_model, b),
            vocab_ids,
            d_model,
            n_heads: dec.n_heads,
            vocab_size,
            bits,
            margin_frames,
        })
    }

    pub fn proposer(self: &Arc<Self>) -> SelfProposer {
        SelfProposer {
            draft: self.clone(),
            rows: Vec::new(),
        }
    }

    /// Bytes of weights one draft step reads (projections + reduced vocabulary).
    pub fn step_bytes(&self) -> usize {
        let layer: usize = self
            .layers
            .iter()
            .map(|l| {
                [&l.q, &l.k, &l.v, &l.o, &l.cq, &l.co, &l.fc1, &l.fc2]
                    .iter()
                    .map(|q| q.w.size_bytes())
                    .sum::<usize>()
            })
            .sum();
        layer + self.vocab_proj.size_bytes()
    }

    /// Runs each row's feed (its tokens at the row's own positions) in one pass: each
    /// projection reads its weights once for all tokens of all rows, so catching up on
    /// several committed tokens costs about one step. Returns each row's full-vocabulary
    /// logits after its last token.
    fn step_rows(&self, rows: &mut [&mut RowState], feeds: &[Feed]) -> Vec<Vec<f32>> {
        let d = self.d_model;
        // Flattened tokens: (row, position) of each.
        let slots: Vec<(usize, usize)> = feeds
            .iter()
            .enumerate()
            .flat_map(|(r, f)| (0..f.tokens.len()).map(move |j| (r, f.pos + j)))
            .collect();
        let mut xs: Vec<Vec<f32>> = slots
            .iter()
            .map(|&(r, pos)| {
                let token = feeds[r].tokens[pos - feeds[r].pos];
                let mut x = vec![0f32; d];
                self.embed.row_f32(token as usize, &mut x);
                x.iter_mut()
                    .zip(&self.positions[pos * d..(pos + 1) * d])
                    .for_each(|(a, p)| *a += p);
                x
            })
            .collect();
        for (l, layer) in self.layers.iter().enumerate() {
            let h = norm_rows(&layer.ln_self, &xs);
            let (q, k, v) = (
                layer.q.apply_rows(&h),
                layer.k.apply_rows(&h),
                layer.v.apply_rows(&h),
            );
            let mut first = 0;
            for (row, f) in rows.iter_mut().zip(feeds) {
                let n = f.tokens.len();
                row.self_kv[l].truncate(f.pos);
                for i in first..first + n {
                    row.self_kv[l].push(&k[i], &v[i]);
                }
                first += n;
            }
            let cached: &[&mut RowState] = rows;
            // Each token attends to its row's positions up to its own.
            let kvs: Vec<(&HeadsKv, usize)> = slots
                .iter()
                .map(|(r, pos)| (&cached[*r].self_kv[l], pos + 1))
                .collect();
            let ctx = self.attention_rows(&q, &kvs);
            add_rows(&mut xs, &layer.o.apply_rows(&ctx));
            let cq = layer.cq.apply_rows(&norm_rows(&layer.ln_cross, &xs));
            let kvs: Vec<(&HeadsKv, usize)> = slots
                .iter()
                .map(|(r, _)| (&cached[*r].cross[l], usize::MAX))
                .collect();
            let ctx = self.attention_rows(&cq, &kvs);
            add_rows(&mut xs, &layer.co.apply_rows(&ctx));
            let mut f = layer.fc1.apply_rows(&norm_rows(&layer.ln_ffn, &xs));
            f.iter_mut().for_each(|row| gelu_chunk(row));
            add_rows(&mut xs, &layer.fc2.apply_rows(&f));
        }
        // The hidden state after each row's last token.
        let last: Vec<usize> = feeds
            .iter()
            .scan(0, |end, f| {
                *end += f.tokens.len();
                Some(*end - 1)
            })
            .collect();
        let hs: Vec<Vec<f32>> = last
            .iter()
            .map(|i| self.ln_final.forward_row(&xs[*i]))
            .collect();
        let n = self.vocab_ids.len();
        let refs: Vec<&[f32]> = hs.iter().map(|h| h.as_slice()).collect();
        let mut sub = vec![0f32; hs.len() * n];
        self.vocab_proj.matmul(&refs, &mut sub);
        sub.chunks(n)
            .map(|vals| {
                let mut logits = vec![f32::NEG_INFINITY; self.vocab_size];
                for (id, v) in self.vocab_ids.iter().zip(vals) {
                    logits[*id as usize] = *v;
                }
                logits
            })
            .collect()
    }

    /// Attention of each query against its own int8 keys/values (the first `n` of
    /// `(keys/values, n)`), one task per (query, head) on all threads.
    fn attention_rows(&self, qs: &[Vec<f32>], kvs: &[(&HeadsKv, usize)]) -> Vec<Vec<f32>> {
        let dh = self.d_model / self.n_heads;
        let scale = (dh as f32).powf(-0.5);
        let mut out = vec![0f32; qs.len() * self.d_model];
        out.par_chunks_mut(dh).enumerate().for_each(|(job, o)| {
            let (r, h) = (job / self.n_heads, job % self.n_heads);
            let (kv, n) = kvs[r];
            let mut scores = Vec::new();
            kv.keys[h].scores_first(n, &qs[r][h * dh..(h + 1) * dh], scale, &mut scores);
            softmax_row(&mut scores);
            kv.values[h].weighted_sum(&scores, o);
        });
        out.chunks(self.d_model).map(|c| c.to_vec()).collect()
    }
}

fn norm_rows(n: &HostNorm, xs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    xs.iter().map(|x| n.forward_row(x)).collect()
}

fn add_rows(xs: &mut [Vec<f32>], ys: &[Vec<f32>]) {
    xs.iter_mut().zip(ys).for_each(|(x, y)| add(x, y));
}

fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

/// Int8 attention keys/values of one layer for one row, per head (`[position][head_dim]`
/// each): the cross-attention copies of the main model's, and the draft's own self
/// attention cache (a quarter of f32's memory traffic: with a long previous-text prompt
/// the f32 cache was the draft's largest read after its weights).
struct HeadsKv {
    keys: Vec<QuantRows>,
    values: Vec<QuantRows>,
}

impl HeadsKv {
    fn empty(heads: usize, head_dim: usize) -> Self {
        Self {
            keys: (0..heads).map(|_| QuantRows::empty(head_dim)).collect(),
            values: (0..heads).map(|_| QuantRows::empty(head_dim)).collect(),
        }
    }

    /// Appends one position's keys and values (`heads * head_dim` each).
    fn push(&mut self, k: &[f32], v: &[f32]) {
        let dh = k.len() / self.keys.len();
        for (h, (kq, vq)) in self.keys.iter_mut().zip(&mut self.values).enumerate() {
            kq.push(&k[h * dh..(h + 1) * dh]);
            vq.push(&v[h * dh..(h + 1) * dh]);
        }
    }

    fn truncate(&mut self, positions: usize) {
        self.keys
            .iter_mut()
            .chain(&mut self.values)
            .for_each(|q| q.truncate(positions));
    }
}

struct RowState {
    cross: Vec<HeadsKv>,
    self_kv: Vec<HeadsKv>,
    cached: Vec<u32>,
}

/// Int8 copies of the main model's cross-attention keys and values of layer `l`, one
/// `([frame][head_dim] keys, values)` pair per (row, head), of the first `frames[r]`
/// frames of row `r`, from the host cache or the backend's; gathered and quantized on
/// all threads.
fn quantized_cross_heads<B: WhisperBackend>(
    state: &DecoderState<B>,
    l: usize,
    h: usize,
    frames: &[usize],
) -> Result<Vec<(QuantRows, QuantRows)>> {
    let jobs: Vec<(usize, usize)> = (0..state.batch_size())
        .flat_map(|r| (0..h).map(move |hh| (r, hh)))
        .collect();
    if let Some(layer) = state.host_layers.get(l) {
        return Ok(jobs
            .into_par_iter()
            .map(|(r, hh)| {
                let c = &layer.cross[r];
                (
                    QuantRows::quantize(&c.head_keys(hh, frames[r]), c.head_dim),
                    QuantRows::quantize(&c.head_values(hh, frames[r]), c.head_dim),
                )
            })
            .collect());
    }
    let layer = &state.layers[l];
    let [_, t, d] = layer.cross_k.dims();
    let dh = d / h;
    let (k, v) = (
        tensor_f32(layer.cross_k.clone())?,
        tensor_f32(layer.cross_v.clone())?,
    );
    let gather = |all: &[f32], r: usize, hh: usize| -> Vec<f32> {
        (0..frames[r].min(t))
            .flat_map(|f| all[(r * t + f) * d + hh * dh..][..dh].iter().copied())
            .collect()
    };
    Ok(jobs
        .into_par_iter()
        .map(|(r, hh)| {
            (
                QuantRows::quantize(&gather(&k, r, hh), dh),
                QuantRows::quantize(&gather(&v, r, hh), dh),
            )
        })
        .collect())
}

/// The main model's self-attention keys and values of layer `l`, row `r`, for its first
/// `len` positions, as `[position][d_model]` (the draft's own cache layout).
fn main_self_kv<B: WhisperBackend>(
    state: &DecoderState<B>,
    l: usize,
    r: usize,
    len: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    if let Some(layer) = state.host_layers.get(l) {
        let n = len * layer.width;
        return Ok((layer.self_k[r][..n].to_vec(), layer.self_v[r][..n].to_vec()));
    }
    let layer = &state.layers[l];
    let [_, h, _, dh] = layer.self_k.dims();
    // `[1, heads, len, head_dim]` → `[len, heads * head_dim]`.
    let rows = |t: &Tensor<B, 4>| {
        tensor_f32(
            t.clone()
                .slice([r..r + 1, 0..h, 0..len, 0..dh])
                .permute([0, 2, 1, 3])
                .reshape([len, h * dh]),
        )
    };
    Ok((rows(&layer.self_k)?, rows(&layer.self_v)?))
}

/// Encoder frames (two mel frames each) the draft attends to for a window with
/// `audio_mel_frames` of audio: the audio plus `margin` frames of the padding after it.
fn draft_frames(audio_mel_frames: usize, margin: Option<usize>) -> usize {
    match margin {
        Some(m) => audio_mel_frames.div_ceil(2) + m,
        None => usize::MAX,
    }
}

/// Per-batch state of a [`SelfDraft`].
pub struct SelfProposer {
    draft: Arc<SelfDraft>,
    rows: Vec<RowState>,
}

impl<B: WhisperBackend> Proposer<B> for SelfProposer {
    fn begin(
        &mut self,
        _main: &Whisper<B>,
        main_state: &DecoderState<B>,
        _enc: &Tensor<B, 3>,
        req: &DecodeRequest,
    ) -> Result<()> {
        let n_layers = self.draft.layers.len();
        let b = main_state.batch_size();
        let dh = self.draft.d_model / self.draft.n_heads;
        let mut rows: Vec<RowState> = (0..b)
            .map(|_| RowState {
                cross: Vec::new(),
                self_kv: (0..n_layers)
                    .map(|_| HeadsKv::empty(self.draft.n_heads, dh))
                    .collect(),
                cached: Vec::new(),
            })
            .collect();
        let h = self.draft.n_heads;
        let frames: Vec<usize> = (0..b)
            .map(|r| {
                draft_frames(
                    req.audio_mel_frames
                        .get(r)
                        .copied()
                        .unwrap_or(usize::MAX / 2),
                    self.draft.margin_frames,
                )
            })
            .collect();
        let n_main_layers = main_state.layers.len().max(main_state.host_layers.len());
        // The prompt (previous text, start-of-transcript sequence) is already in the main
        // model's self-attention cache: the draft starts from those keys/values instead of
        // running up to 224 prompt tokens through its own layers (with cross attention
        // over the whole window) on its first proposal of every window.
        if n_main_layers == n_layers {
            for (r, row) in rows.iter_mut().enumerate() {
                let len = main_state
                    .len(r)
                    .min(req.prompts.get(r).map_or(0, Vec::len));
                if len == 0 {
                    continue;
                }
                for l in 0..n_layers {
                    let (k, v) = main_self_kv(main_state, l, r, len)?;
                    let d = k.len() / len;
                    for (kp, vp) in k.chunks(d).zip(v.chunks(d)) {
                        row.self_kv[l].push(kp, vp);
                    }
                }
                row.cached = req.prompts[r][..len].to_vec();
            }
        }
        for l in 0..n_main_layers {
            // One int8 block per (row, head) of `[frame][head_dim]` keys and values.
            let (mut keys, mut values): (Vec<QuantRows>, Vec<QuantRows>) =
                quantized_cross_heads(main_state, l, h, &frames)?
                    .into_iter()
                    .unzip();
            let (mut keys, mut values) = (keys.drain(..), values.drain(..));
            for row in rows.iter_mut() {
                row.cross.push(HeadsKv {
                    keys: keys.by_ref().take(h).collect(),
                    values: values.by_ref().take(h).collect(),
                });
            }
        }
        self.rows = rows;
        Ok(())
    }

    fn propose(
        &mut self,
        requests: &[ProposeRequest],
        filters: &LogitFilters,
    ) -> Result<Vec<Proposal>> {
        let draft = self.draft.clone();
        let mut slots: Vec<Option<&mut RowState>> = self.rows.iter_mut().map(Some).collect();
        let mut rows: Vec<&mut RowState> = Vec::with_capacity(requests.len());
        for q in requests {
            let row = slots.get_mut(q.row).and_then(Option::take);
            rows.push(row.ok_or_else(|| {
                SpecError::Config(format!("row {} proposed for twice or not begun", q.row))
            })?);
        }
        let mut jobs: Vec<Drafting> = rows
            .iter_mut()
            .zip(requests)
            .map(|(row, q)| Drafting::start(row, q))
            .collect();
        loop {
            let live: Vec<usize> = (0..jobs.len())
                .filter(|j| !jobs[*j].feed.is_empty())
                .collect();
            if live.is_empty() {
                break;
            }
            // Everything a row has queued (catch-up tokens, or its last guess) in one pass.
            let feeds: Vec<Feed> = live
                .iter()
                .map(|j| Feed {
                    tokens: std::mem::take(&mut jobs[*j].feed),
                    pos: rows[*j].cached.len(),
                })
                .collect();
            let mut stepping: Vec<&mut RowState> = rows
                .iter_mut()
                .enumerate()
                .filter(|(j, _)| live.binary_search(j).is_ok())
                .map(|(_, r)| &mut **r)
                .collect();
            let logits = draft.step_rows(&mut stepping, &feeds);
            for ((j, f), l) in live.iter().zip(&feeds).zip(logits) {
                rows[*j].cached.extend_from_slice(&f.tokens);
                jobs[*j].choose(l, &requests[*j], filters);
            }
        }
        Ok(jobs.into_iter().map(|j| j.out).collect())
    }
}

/// One row's drafting in progress: tokens still to feed the draft, then its guesses.
struct Drafting {
    /// Tokens to run through the draft next (the committed tokens it has not seen, then
    /// each drafted token).
    feed: Vec<u32>,
    /// Generated tokens so far, for the logit rules.
    generated: Vec<u32>,
    out: Proposal,
}

impl Drafting {
    /// Re-synchronises the row with the committed tokens (keeping the longest cached
    /// prefix that agrees, always re-feeding the last committed token).
    fn start(row: &mut RowState, q: &ProposeRequest) -> Self {
        if q.max_tokens == 0 {
            return Self {
                feed: Vec::new(),
                generated: Vec::new(),
                out: Proposal::default(),
            };
        }
        let common = row
            .cached
            .iter()
            .zip(q.committed)
            .take_while(|(a, b)| a == b)
            .count();
        let keep = common.min(q.committed.len() - 1);
        row.cached.truncate(keep);
        Self {
            feed: q.committed[keep..].to_vec(),
            generated: q.committed[q.prompt_len..].to_vec(),
            out: Proposal::default(),
        }
    }

    /// Takes the draft's token from `logits` (greedy or drawn), and feeds it back unless
    /// drafting stops here (end of text, enough tokens, or confidence below the floor).
    fn choose(&mut self, mut logits: Vec<f32>, q: &ProposeRequest, filters: &LogitFilters) {
        filters.apply(&mut logits, &self.generated);
        let Some(t) = self.out.choose(&logits, q) else {
            return;
        };
        self.generated.push(t);
        if t != q.eot && self.out.len() < q.max_tokens {
            self.feed.push(t);
        }
    }
}
