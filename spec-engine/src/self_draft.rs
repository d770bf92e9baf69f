//! The self-draft: the main model's decoder with 8-bit or 4-bit weights, logits over a
//! reduced vocabulary, and int8 copies of the main model's cross-attention keys/values
//! (so no second encoder runs). It runs on the host with its own kernels.
use crate::error::{Result, SpecError};
use crate::proposer::{ProposeRequest, Proposer};
use crate::quant::{QuantMatrix, QuantRows};
use burn::prelude::*;
use rayon::prelude::*;
use std::sync::Arc;
use whisper_burn::decoding::logit_filters::{argmax, log_prob};
use whisper_burn::decoding::{DecodeRequest, LogitFilters};
use whisper_burn::model::host_math::softmax_row;
use whisper_burn::model::layers::{LayerNorm, Linear};
use whisper_burn::{DecoderState, Pipeline, Whisper};

/// Text tokens kept in the draft's output projection (the lowest ids: byte-pair merges
/// are numbered by frequency), plus every special and timestamp token.
pub const DEFAULT_DRAFT_VOCAB: usize = 16_384;

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
            b => Err(SpecError::Config(format!("self-draft weights must be 8 or 4 bits, not {b}"))),
        }
    }
    fn bits(self) -> u8 {
        match self {
            WeightBits::Q8 => 8,
            WeightBits::Q4 => 4,
        }
    }
}

fn host<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Result<Vec<f32>> {
    t.clone()
        .into_data()
        .to_vec::<f32>()
        .map_err(|e| SpecError::Config(format!("reading weights: {e:?}")))
}

struct HostNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl HostNorm {
    fn from<B: Backend>(n: &LayerNorm<B>) -> Result<Self> {
        Ok(Self { gamma: host(&n.gamma)?, beta: host(&n.beta)? })
    }
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + 1e-5).sqrt();
        x.iter().zip(&self.gamma).zip(&self.beta).map(|((v, g), b)| (v - mean) * inv * g + b).collect()
    }
}

struct QLinear {
    w: QuantMatrix,
    bias: Option<Vec<f32>>,
}

impl QLinear {
    fn from<B: Backend>(l: &Linear<B>, bits: u8) -> Result<Self> {
        let [d_in, d_out] = l.weight_t.dims();
        let wt = host(&l.weight_t)?;
        let mut w = vec![0f32; d_in * d_out];
        for i in 0..d_in {
            for o in 0..d_out {
                w[o * d_in + i] = wt[i * d_out + o];
            }
        }
        let bias = match &l.bias {
            Some(b) => Some(host(b)?),
            None => None,
        };
        Ok(Self { w: QuantMatrix::quantize(&w, d_out, d_in, bits), bias })
    }
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; self.w.rows()];
        self.w.matvec(x, &mut out);
        if let Some(b) = &self.bias {
            out.iter_mut().zip(b).for_each(|(o, b)| *o += b);
        }
        out
    }
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
}

impl SelfDraft {
    /// Quantizes the decoder of `main`; the projection keeps `vocab` text tokens.
    pub fn from_main<B: Backend>(main: &Pipeline<B>, bits: WeightBits, vocab: usize) -> Result<Self> {
        let dec = &main.model.decoder;
        let b = bits.bits();
        let layers = dec
            .layers
            .iter()
            .map(|l| {
                Ok(DraftLayer {
                    ln_self: HostNorm::from(&l.self_attn_layer_norm)?,
                    q: QLinear::from(&l.self_attn.q_proj, b)?,
                    k: QLinear::from(&l.self_attn.k_proj, b)?,
                    v: QLinear::from(&l.self_attn.v_proj, b)?,
                    o: QLinear::from(&l.self_attn.out_proj, b)?,
                    ln_cross: HostNorm::from(&l.encoder_attn_layer_norm)?,
                    cq: QLinear::from(&l.encoder_attn.q_proj, b)?,
                    co: QLinear::from(&l.encoder_attn.out_proj, b)?,
                    ln_ffn: HostNorm::from(&l.final_layer_norm)?,
                    fc1: QLinear::from(&l.ffn.fc1, b)?,
                    fc2: QLinear::from(&l.ffn.fc2, b)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let [vocab_size, d_model] = dec.embed_tokens.dims();
        let emb = host(&dec.embed_tokens)?;
        let eot = main.tokenizer.special.eot as usize;
        let vocab_ids: Vec<u32> = (0..vocab.min(eot)).chain(eot..vocab_size).map(|i| i as u32).collect();
        let mut sub = Vec::with_capacity(vocab_ids.len() * d_model);
        for id in &vocab_ids {
            sub.extend_from_slice(&emb[*id as usize * d_model..(*id as usize + 1) * d_model]);
        }
        Ok(Self {
            layers,
            ln_final: HostNorm::from(&dec.layer_norm)?,
            embed: QuantMatrix::quantize(&emb, vocab_size, d_model, 8),
            positions: host(&dec.embed_positions)?,
            vocab_proj: QuantMatrix::quantize(&sub, vocab_ids.len(), d_model, b),
            vocab_ids,
            d_model,
            n_heads: dec.n_heads,
            vocab_size,
            bits,
        })
    }

    pub fn proposer(self: &Arc<Self>) -> SelfProposer {
        SelfProposer { draft: self.clone(), rows: Vec::new() }
    }

    /// Bytes of weights one draft step reads (projections + reduced vocabulary).
    pub fn step_bytes(&self) -> usize {
        let layer: usize = self
            .layers
            .iter()
            .map(|l| [&l.q, &l.k, &l.v, &l.o, &l.cq, &l.co, &l.fc1, &l.fc2].iter().map(|q| q.w.size_bytes()).sum::<usize>())
            .sum();
        layer + self.vocab_proj.size_bytes()
    }

    /// Runs one token at `pos`; returns full-vocabulary logits when `want_logits`.
    fn step(&self, row: &mut RowState, token: u32, pos: usize, want_logits: bool) -> Option<Vec<f32>> {
        let d = self.d_model;
        let mut x = vec![0f32; d];
        self.embed.row_f32(token as usize, &mut x);
        x.iter_mut().zip(&self.positions[pos * d..(pos + 1) * d]).for_each(|(a, p)| *a += p);
        for (l, layer) in self.layers.iter().enumerate() {
            let h = layer.ln_self.apply(&x);
            let (q, k, v) = (layer.q.apply(&h), layer.k.apply(&h), layer.v.apply(&h));
            row.self_k[l].truncate(pos * d);
            row.self_k[l].extend_from_slice(&k);
            row.self_v[l].truncate(pos * d);
            row.self_v[l].extend_from_slice(&v);
            let ctx = self.self_attention(&q, &row.self_k[l], &row.self_v[l], pos + 1);
            add(&mut x, &layer.o.apply(&ctx));
            let h = layer.ln_cross.apply(&x);
            let cq = layer.cq.apply(&h);
            let ctx = self.cross_attention(&cq, &row.cross[l]);
            add(&mut x, &layer.co.apply(&ctx));
            let h = layer.ln_ffn.apply(&x);
            let mut f = layer.fc1.apply(&h);
            f.iter_mut().for_each(|v| *v = gelu(*v));
            add(&mut x, &layer.fc2.apply(&f));
        }
        if !want_logits {
            return None;
        }
        let h = self.ln_final.apply(&x);
        let mut sub = vec![0f32; self.vocab_ids.len()];
        self.vocab_proj.matvec(&h, &mut sub);
        let mut logits = vec![f32::NEG_INFINITY; self.vocab_size];
        for (id, v) in self.vocab_ids.iter().zip(sub) {
            logits[*id as usize] = v;
        }
        Some(logits)
    }

    fn self_attention(&self, q: &[f32], keys: &[f32], values: &[f32], n: usize) -> Vec<f32> {
        let d = self.d_model;
        let dh = d / self.n_heads;
        let scale = (dh as f32).powf(-0.5);
        let mut out = vec![0f32; d];
        for h in 0..self.n_heads {
            let qh = &q[h * dh..(h + 1) * dh];
            let scores: Vec<f32> = (0..n).map(|j| scale * dot(qh, &keys[j * d + h * dh..j * d + (h + 1) * dh])).collect();
            let p = softmax(&scores);
            let oh = &mut out[h * dh..(h + 1) * dh];
            for (j, pj) in p.iter().enumerate() {
                oh.iter_mut().zip(&values[j * d + h * dh..j * d + (h + 1) * dh]).for_each(|(o, v)| *o += pj * v);
            }
        }
        out
    }

    fn cross_attention(&self, q: &[f32], kv: &CrossKv) -> Vec<f32> {
        let dh = self.d_model / self.n_heads;
        let scale = (dh as f32).powf(-0.5);
        let mut out = vec![0f32; self.d_model];
        out.par_chunks_mut(dh).enumerate().for_each(|(h, o)| {
            let mut scores = Vec::new();
            kv.keys[h].scores(&q[h * dh..(h + 1) * dh], scale, &mut scores);
            softmax_row(&mut scores);
            kv.values[h].weighted_sum(&scores, o);
        });
        out
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn softmax(x: &[f32]) -> Vec<f32> {
    let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = x.iter().map(|v| (v - m).exp()).collect();
    let z: f32 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

/// Exact-form GELU with an erf approximation (max error 1.5e-7).
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
}

fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_7) * t - 0.284_496_74) * t + 0.254_829_6) * t * (-x * x).exp();
    if x >= 0.0 { y } else { -y }
}

/// Int8 cross-attention keys/values of one layer for one row, per head.
struct CrossKv {
    keys: Vec<QuantRows>,
    values: Vec<QuantRows>,
}

struct RowState {
    cross: Vec<CrossKv>,
    self_k: Vec<Vec<f32>>,
    self_v: Vec<Vec<f32>>,
    cached: Vec<u32>,
}

/// Int8 copies of the main model's cross-attention keys and values of layer `l`, one
/// `([frame][head_dim] keys, values)` pair per (row, head), from the host cache or the
/// backend's; gathered and quantized on all threads.
fn quantized_cross_heads<B: Backend>(state: &DecoderState<B>, l: usize, h: usize) -> Result<Vec<(QuantRows, QuantRows)>> {
    let jobs: Vec<(usize, usize)> = (0..state.batch_size()).flat_map(|r| (0..h).map(move |hh| (r, hh))).collect();
    if let Some(layer) = state.host_layers.get(l) {
        return Ok(jobs
            .into_par_iter()
            .map(|(r, hh)| {
                let c = &layer.cross[r];
                (QuantRows::quantize(&c.head_keys(hh), c.head_dim), QuantRows::quantize(&c.head_values(hh), c.head_dim))
            })
            .collect());
    }
    let layer = &state.layers[l];
    let [_, t, d] = layer.cross_k.dims();
    let dh = d / h;
    let (k, v) = (host(&layer.cross_k)?, host(&layer.cross_v)?);
    let gather = |all: &[f32], r: usize, hh: usize| -> Vec<f32> {
        (0..t).flat_map(|f| all[(r * t + f) * d + hh * dh..][..dh].iter().copied()).collect()
    };
    Ok(jobs
        .into_par_iter()
        .map(|(r, hh)| (QuantRows::quantize(&gather(&k, r, hh), dh), QuantRows::quantize(&gather(&v, r, hh), dh)))
        .collect())
}

/// Per-batch state of a [`SelfDraft`].
pub struct SelfProposer {
    draft: Arc<SelfDraft>,
    rows: Vec<RowState>,
}

impl<B: Backend> Proposer<B> for SelfProposer {
    fn begin(&mut self, _main: &Whisper<B>, main_state: &DecoderState<B>, _enc: &Tensor<B, 3>, _req: &DecodeRequest) -> Result<()> {
        let n_layers = self.draft.layers.len();
        let b = main_state.batch_size();
        let mut rows: Vec<RowState> = (0..b)
            .map(|_| RowState { cross: Vec::new(), self_k: vec![Vec::new(); n_layers], self_v: vec![Vec::new(); n_layers], cached: Vec::new() })
            .collect();
        let h = self.draft.n_heads;
        for l in 0..main_state.layers.len().max(main_state.host_layers.len()) {
            // One int8 block per (row, head) of `[frame][head_dim]` keys and values.
            let (mut keys, mut values): (Vec<QuantRows>, Vec<QuantRows>) = quantized_cross_heads(main_state, l, h)?.into_iter().unzip();
            let (mut keys, mut values) = (keys.drain(..), values.drain(..));
            for row in rows.iter_mut() {
                row.cross.push(CrossKv { keys: keys.by_ref().take(h).collect(), values: values.by_ref().take(h).collect() });
            }
        }
        self.rows = rows;
        Ok(())
    }

    fn propose(&mut self, requests: &[ProposeRequest], filters: &LogitFilters) -> Result<Vec<Vec<u32>>> {
        let draft = self.draft.clone();
        Ok(requests.iter().map(|q| propose_row(&draft, &mut self.rows[q.row], q, filters)).collect())
    }
}

/// Re-synchronises the row with the committed tokens, then drafts greedily.
fn propose_row(draft: &SelfDraft, row: &mut RowState, q: &ProposeRequest, filters: &LogitFilters) -> Vec<u32> {
    if q.max_tokens == 0 {
        return Vec::new();
    }
    let common = row.cached.iter().zip(q.committed).take_while(|(a, b)| a == b).count();
    let keep = common.min(q.committed.len() - 1);
    row.cached.truncate(keep);
    let feed: Vec<u32> = q.committed[keep..].to_vec();
    let mut logits = None;
    for (i, t) in feed.iter().enumerate() {
        let pos = row.cached.len();
        logits = draft.step(row, *t, pos, i + 1 == feed.len());
        row.cached.push(*t);
    }
    let mut generated = q.committed[q.prompt_len..].to_vec();
    let mut out = Vec::new();
    while let Some(mut l) = logits.take() {
        filters.apply(&mut l, &generated);
        let t = argmax(&l);
        if !out.is_empty() && q.min_confidence > 0.0 && log_prob(&l, t).exp() < q.min_confidence {
            break;
        }
        out.push(t);
        generated.push(t);
        if t == q.eot || out.len() >= q.max_tokens {
            break;
        }
        let pos = row.cached.len();
        logits = draft.step(row, t, pos, true);
        row.cached.push(t);
    }
    out
}
