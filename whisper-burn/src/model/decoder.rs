//! The text decoder: token + learned position embeddings, pre-norm layers with causal
//! self-attention over a KV cache and cross-attention over the encoder output.
//!
//! Two implementations behind one type ([`Kernels`]): the host kernels
//! ([`HostDecoder`]) and burn's generic ops ([`GenericDecoder`]). A decoder holds the
//! weights of the one it runs, loaded once in that layout.
use super::kv_cache::{DecoderState, HostLayerCache, LayerCache};
use super::layers::{
    merge_heads, split_heads, tensor_f32, to_tensor, transpose, AttentionProj, FeedForward,
    LayerNorm, PlainLinear,
};
use crate::backend::{Kernels, WhisperBackend};
use crate::config::WhisperConfig;
use crate::cpu::decoder::HostDecoder;
use crate::cpu::math::HostNorm;
use crate::weights::TensorStore;
use crate::{Result, WhisperError};
use burn::prelude::*;

#[derive(Debug, Clone)]
pub struct DecoderLayer<B: WhisperBackend> {
    pub self_attn_layer_norm: LayerNorm<B>,
    pub self_attn: AttentionProj<B>,
    pub encoder_attn_layer_norm: LayerNorm<B>,
    pub encoder_attn: AttentionProj<B>,
    pub final_layer_norm: LayerNorm<B>,
    pub ffn: FeedForward<B>,
}

/// Where new tokens go in the cache and which keys each query may see.
struct StepLayout<B: WhisperBackend> {
    /// Cache length of each row before this step.
    starts: Vec<usize>,
    n_new: usize,
    /// Keys to attend to: `0..key_len`.
    key_len: usize,
    mask: Option<Tensor<B, 4, Bool>>,
}

impl<B: WhisperBackend> DecoderLayer<B> {
    fn load(s: &mut TensorStore, p: &str, c: &WhisperConfig, dev: &B::Device) -> Result<Self> {
        let (d, h) = (c.d_model, c.decoder_attention_heads);
        Ok(Self {
            self_attn_layer_norm: LayerNorm::load(s, &format!("{p}.self_attn_layer_norm"), d, dev)?,
            self_attn: AttentionProj::load(s, &format!("{p}.self_attn"), d, h, dev)?,
            encoder_attn_layer_norm: LayerNorm::load(
                s,
                &format!("{p}.encoder_attn_layer_norm"),
                d,
                dev,
            )?,
            encoder_attn: AttentionProj::load(s, &format!("{p}.encoder_attn"), d, h, dev)?,
            final_layer_norm: LayerNorm::load(s, &format!("{p}.final_layer_norm"), d, dev)?,
            ffn: FeedForward::load(s, p, d, c.decoder_ffn_dim, dev)?,
        })
    }

    /// One layer; also the pre-softmax cross-attention scores (`[b, 1, n, frames]`) of
    /// each head in `capture_heads`.
    fn forward(
        &self,
        x: Tensor<B, 3>,
        cache: &mut LayerCache<B>,
        layout: &StepLayout<B>,
        capture_heads: &[usize],
    ) -> (Tensor<B, 3>, Vec<Tensor<B, 4>>) {
        let h = self.self_attn_layer_norm.forward(x.clone());
        let x = x + self.self_attention(h, cache, layout);
        let h = self.encoder_attn_layer_norm.forward(x.clone());
        let a = &self.encoder_attn;
        let q = split_heads(a.q_proj.forward(h), a.n_heads);
        let (k, v) = (
            split_heads(cache.cross_k.clone(), a.n_heads),
            split_heads(cache.cross_v.clone(), a.n_heads),
        );
        let scores = capture_heads
            .iter()
            .map(|hh| head_scores(q.clone(), k.clone(), *hh))
            .collect();
        let ctx = B::attend(q, k, v, None);
        let x = x + a.out_proj.forward(merge_heads(ctx));
        let h = self.final_layer_norm.forward(x.clone());
        (x.clone() + self.ffn.forward(h), scores)
    }

    fn self_attention(
        &self,
        h: Tensor<B, 3>,
        cache: &mut LayerCache<B>,
        layout: &StepLayout<B>,
    ) -> Tensor<B, 3> {
        let a = &self.self_attn;
        let q = split_heads(a.q_proj.forward(h.clone()), a.n_heads);
        let k = split_heads(a.k_proj.forward(h.clone()), a.n_heads);
        let v = split_heads(a.v_proj.forward(h), a.n_heads);
        cache.self_k = write_rows(std::mem::replace(&mut cache.self_k, k.clone()), k, layout);
        cache.self_v = write_rows(std::mem::replace(&mut cache.self_v, v.clone()), v, layout);
        let [b, nh, _, dh] = cache.self_k.dims();
        let keys = cache
            .self_k
            .clone()
            .slice([0..b, 0..nh, 0..layout.key_len, 0..dh]);
        let values = cache
            .self_v
            .clone()
            .slice([0..b, 0..nh, 0..layout.key_len, 0..dh]);
        a.out_proj
            .forward(merge_heads(B::attend(q, keys, values, layout.mask.clone())))
    }
}

/// `q·k / sqrt(dh)` of one head: `[b, h, n, dh]` queries and keys -> `[b, 1, n, frames]`.
fn head_scores<B: WhisperBackend>(q: Tensor<B, 4>, k: Tensor<B, 4>, head: usize) -> Tensor<B, 4> {
    let [b, _, n, dh] = q.dims();
    let frames = k.dims()[2];
    let q = q.slice([0..b, head..head + 1, 0..n, 0..dh]);
    let k = k.slice([0..b, head..head + 1, 0..frames, 0..dh]);
    q.mul_scalar((dh as f64).powf(-0.5))
        .matmul(k.swap_dims(2, 3))
}

/// Writes `new` (`[b, h, n_new, dh]`) at each row's start position of `cache`.
fn write_rows<B: WhisperBackend>(
    cache: Tensor<B, 4>,
    new: Tensor<B, 4>,
    layout: &StepLayout<B>,
) -> Tensor<B, 4> {
    let [b, h, t, dh] = new.dims();
    let first = layout.starts[0];
    if layout.starts.iter().all(|s| *s == first) {
        return cache.slice_assign([0..b, 0..h, first..first + t, 0..dh], new);
    }
    let mut cache = cache;
    for (row, start) in layout.starts.iter().enumerate() {
        let values = new.clone().slice([row..row + 1, 0..h, 0..t, 0..dh]);
        cache = cache.slice_assign([row..row + 1, 0..h, *start..*start + t, 0..dh], values);
    }
    cache
}

impl<B: WhisperBackend> DecoderLayer<B> {
    fn to_plain(&self) -> Result<PlainDecoderLayer> {
        let a = |p: &AttentionProj<B>| -> Result<[PlainLinear; 4]> {
            Ok([
                p.q_proj.to_plain()?,
                p.k_proj.to_plain()?,
                p.v_proj.to_plain()?,
                p.out_proj.to_plain()?,
            ])
        };
        Ok(PlainDecoderLayer {
            self_attn_layer_norm: self.self_attn_layer_norm.to_host()?,
            self_attn: a(&self.self_attn)?,
            encoder_attn_layer_norm: self.encoder_attn_layer_norm.to_host()?,
            encoder_attn: a(&self.encoder_attn)?,
            final_layer_norm: self.final_layer_norm.to_host()?,
            fc1: self.ffn.fc1.to_plain()?,
            fc2: self.ffn.fc2.to_plain()?,
        })
    }
}

/// One decoder layer's weights as plain rows.
#[derive(Debug, Clone)]
pub struct PlainDecoderLayer {
    pub self_attn_layer_norm: HostNorm,
    /// q, k, v, out
    pub self_attn: [PlainLinear; 4],
    pub encoder_attn_layer_norm: HostNorm,
    /// q, k, v, out
    pub encoder_attn: [PlainLinear; 4],
    pub final_layer_norm: HostNorm,
    pub fc1: PlainLinear,
    pub fc2: PlainLinear,
}

/// A decoder's weights as plain `f32` rows on the host, whichever implementation holds
/// them: what the self-draft quantizes.
#[derive(Debug, Clone)]
pub struct PlainDecoder {
    pub layers: Vec<PlainDecoderLayer>,
    pub layer_norm: HostNorm,
    /// `[vocab, d_model]`
    pub embed_tokens: PlainLinear,
    /// `[max_target_positions, d_model]`
    pub embed_positions: Vec<f32>,
    pub d_model: usize,
    pub n_heads: usize,
}

/// The decoder on burn's generic ops (GPU backends, or any backend when asked).
#[derive(Debug, Clone)]
pub struct GenericDecoder<B: WhisperBackend> {
    pub embed_tokens: Tensor<B, 2>,
    /// `embed_tokens` transposed (`[d_model, vocab]`) for the output projection.
    pub proj_out_t: Tensor<B, 2>,
    pub embed_positions: Tensor<B, 2>,
    pub layers: Vec<DecoderLayer<B>>,
    pub layer_norm: LayerNorm<B>,
}

/// Which implementation a decoder runs, with its weights.
#[derive(Debug, Clone)]
pub enum DecoderImpl<B: WhisperBackend> {
    Host(HostDecoder),
    Generic(GenericDecoder<B>),
}

#[derive(Debug, Clone)]
pub struct Decoder<B: WhisperBackend> {
    pub imp: DecoderImpl<B>,
    pub n_heads: usize,
    pub d_model: usize,
    pub vocab_size: usize,
    pub n_layers: usize,
    pub max_positions: usize,
    pub device: B::Device,
}

impl<B: WhisperBackend> Decoder<B> {
    pub fn load(
        s: &mut TensorStore,
        c: &WhisperConfig,
        kernels: Kernels,
        dev: &B::Device,
    ) -> Result<Self> {
        let emb = s.take(
            "model.decoder.embed_tokens.weight",
            &[c.vocab_size, c.d_model],
        )?;
        let proj = match s.get("proj_out.weight") {
            Some(p) if p.data != emb.data => {
                Some(s.take("proj_out.weight", &[c.vocab_size, c.d_model])?)
            }
            _ => None,
        };
        let imp = match kernels {
            Kernels::Host => DecoderImpl::Host(HostDecoder::load(
                s,
                c,
                &emb.data,
                proj.as_ref().map(|p| p.data.as_slice()),
            )?),
            Kernels::Generic => DecoderImpl::Generic(GenericDecoder {
                proj_out_t: to_tensor(transpose(proj.as_ref().unwrap_or(&emb)), dev),
                embed_tokens: to_tensor(emb, dev),
                embed_positions: to_tensor(
                    s.take(
                        "model.decoder.embed_positions.weight",
                        &[c.max_target_positions, c.d_model],
                    )?,
                    dev,
                ),
                layers: (0..c.decoder_layers)
                    .map(|i| DecoderLayer::load(s, &format!("model.decoder.layers.{i}"), c, dev))
                    .collect::<Result<_>>()?,
                layer_norm: LayerNorm::load(s, "model.decoder.layer_norm", c.d_model, dev)?,
            }),
        };
        Ok(Self {
            imp,
            n_heads: c.decoder_attention_heads,
            d_model: c.d_model,
            vocab_size: c.vocab_size,
            n_layers: c.decoder_layers,
            max_positions: c.max_target_positions,
            device: dev.clone(),
        })
    }

    pub fn kernels(&self) -> Kernels {
        match self.imp {
            DecoderImpl::Host(_) => Kernels::Host,
            DecoderImpl::Generic(_) => Kernels::Generic,
        }
    }

    /// The weights as plain rows on the host (for the self-draft's quantization).
    pub fn to_plain(&self) -> Result<PlainDecoder> {
        match &self.imp {
            DecoderImpl::Host(h) => Ok(h.to_plain()),
            DecoderImpl::Generic(g) => {
                let [v, d] = g.embed_tokens.dims();
                Ok(PlainDecoder {
                    layers: g
                        .layers
                        .iter()
                        .map(|l| l.to_plain())
                        .collect::<Result<_>>()?,
                    layer_norm: g.layer_norm.to_host()?,
                    embed_tokens: PlainLinear {
                        weight: tensor_f32(g.embed_tokens.clone())?,
                        bias: None,
                        d_in: d,
                        d_out: v,
                    },
                    embed_positions: tensor_f32(g.embed_positions.clone())?,
                    d_model: d,
                    n_heads: self.n_heads,
                })
            }
        }
    }

    /// A fresh state for a batch of encoder outputs (`[batch, frames, d_model]`):
    /// cross-attention keys/values computed once, an empty self-attention cache.
    pub fn new_state(&self, encoder_out: Tensor<B, 3>) -> DecoderState<B> {
        match &self.imp {
            DecoderImpl::Host(host) => self.new_host_state(host, encoder_out),
            DecoderImpl::Generic(g) => g.new_state(encoder_out, self.n_heads, self.max_positions),
        }
    }

    fn new_host_state(&self, host: &HostDecoder, encoder_out: Tensor<B, 3>) -> DecoderState<B> {
        let [b, frames, d] = encoder_out.dims();
        let data = tensor_f32(encoder_out).unwrap_or_default();
        let mut host_layers: Vec<HostLayerCache> = Vec::new();
        for row in data.chunks(frames * d) {
            let caches = host.new_row(row, self.max_positions);
            if host_layers.is_empty() {
                host_layers = caches;
                continue;
            }
            for (all, one) in host_layers.iter_mut().zip(caches) {
                all.self_k.extend(one.self_k);
                all.self_v.extend(one.self_v);
                all.cross.extend(one.cross);
            }
        }
        DecoderState {
            layers: Vec::new(),
            host_layers,
            lens: vec![0; b],
            capacity: self.max_positions,
        }
    }

    /// Runs `tokens` (`n_new` per row, every row the same count) after each row's cached
    /// prefix; returns the final hidden states `[batch, n_new, d_model]` and advances
    /// every row's length by `n_new`.
    pub fn forward(
        &self,
        tokens: &[Vec<u32>],
        state: &mut DecoderState<B>,
    ) -> Result<Tensor<B, 3>> {
        Ok(self.forward_capturing(tokens, state, &[])?.0)
    }

    /// As [`Self::forward`], also returning the cross-attention scores (`q·k / sqrt(dh)`,
    /// before the softmax) of each `(layer, head)` in `capture`, as `[batch][n_new][frames]`
    /// host rows: what word alignment reads.
    pub fn forward_capturing(
        &self,
        tokens: &[Vec<u32>],
        state: &mut DecoderState<B>,
        capture: &[(usize, usize)],
    ) -> Result<(Tensor<B, 3>, Vec<Vec<f32>>)> {
        let (starts, n_new, key_len) = self.check_step(tokens, state)?;
        if let Some((l, h)) = capture
            .iter()
            .find(|(l, h)| *l >= self.n_layers || *h >= self.n_heads)
        {
            return Err(WhisperError::Config(format!(
                "alignment head ({l}, {h}) is outside the decoder's {} layers x {} heads",
                self.n_layers, self.n_heads
            )));
        }
        crate::decoding::transfers::count_pass();
        let (hidden, scores) = match &self.imp {
            DecoderImpl::Host(host) => {
                if !state.on_host() {
                    return Err(WhisperError::Decode(
                        "a host decoder was given a device state".into(),
                    ));
                }
                let (hidden, scores) =
                    host.forward_capturing(tokens, &starts, &mut state.host_layers, capture);
                let hidden = Tensor::from_data(
                    TensorData::new(hidden, [tokens.len(), n_new, self.d_model]),
                    &self.device,
                );
                (hidden, scores)
            }
            DecoderImpl::Generic(g) => {
                if state.on_host() {
                    return Err(WhisperError::Decode(
                        "a generic decoder was given a host state".into(),
                    ));
                }
                let layout = StepLayout::new(starts, n_new, key_len, &self.device);
                let (hidden, scores) = g.forward(tokens, state, &layout, capture);
                let scores = scores
                    .into_iter()
                    .map(tensor_f32)
                    .collect::<Result<Vec<_>>>()?;
                (hidden, scores)
            }
        };
        state.lens.iter_mut().for_each(|l| *l += n_new);
        Ok((hidden, scores))
    }

    /// Vocabulary logits of hidden states: `[b, t, d]` -> `[b, t, vocab]`.
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, d] = hidden.dims();
        let v = self.vocab_size;
        match &self.imp {
            DecoderImpl::Host(host) => {
                let h = tensor_f32(hidden).unwrap_or_default();
                let logits = host.logits(&h, b * t);
                Tensor::from_data(TensorData::new(logits, [b, t, v]), &self.device)
            }
            DecoderImpl::Generic(g) => hidden
                .reshape([b * t, d])
                .matmul(g.proj_out_t.clone())
                .reshape([b, t, v]),
        }
    }

    /// Validates a step: returns each row's start, the tokens per row and the key length.
    fn check_step(
        &self,
        tokens: &[Vec<u32>],
        state: &DecoderState<B>,
    ) -> Result<(Vec<usize>, usize, usize)> {
        let n_new = tokens.first().map(|t| t.len()).unwrap_or(0);
        if tokens.len() != state.batch_size()
            || n_new == 0
            || tokens.iter().any(|t| t.len() != n_new)
        {
            return Err(WhisperError::Decode(format!(
                "decoder step needs {} rows of the same non-zero length",
                state.batch_size()
            )));
        }
        let starts = state.lens.clone();
        let key_len = starts.iter().max().copied().unwrap_or(0) + n_new;
        if key_len > self.max_positions {
            return Err(WhisperError::Decode(format!(
                "sequence of {key_len} tokens exceeds the decoder's {} positions",
                self.max_positions
            )));
        }
        let vocab = self.vocab_size;
        if let Some(t) = tokens.iter().flatten().find(|t| **t as usize >= vocab) {
            return Err(WhisperError::Decode(format!(
                "token id {t} is outside the vocabulary of {vocab}"
            )));
        }
        Ok((starts, n_new, key_len))
    }
}

impl<B: WhisperBackend> GenericDecoder<B> {
    fn new_state(
        &self,
        encoder_out: Tensor<B, 3>,
        n_heads: usize,
        capacity: usize,
    ) -> DecoderState<B> {
        let [b, _, d] = encoder_out.dims();
        let device = encoder_out.device();
        let dh = d / n_heads;
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let a = &l.encoder_attn;
                LayerCache {
                    self_k: Tensor::zeros([b, n_heads, capacity, dh], &device),
                    self_v: Tensor::zeros([b, n_heads, capacity, dh], &device),
                    cross_k: a.k_proj.forward(encoder_out.clone()),
                    cross_v: a.v_proj.forward(encoder_out.clone()),
                }
            })
            .collect();
        DecoderState {
            layers,
            host_layers: Vec::new(),
            lens: vec![0; b],
            capacity,
        }
    }

    fn forward(
        &self,
        tokens: &[Vec<u32>],
        state: &mut DecoderState<B>,
        layout: &StepLayout<B>,
        capture: &[(usize, usize)],
    ) -> (Tensor<B, 3>, Vec<Tensor<B, 4>>) {
        let device = self.embed_tokens.device();
        let b = tokens.len();
        let ids: Vec<i64> = tokens.iter().flatten().map(|t| *t as i64).collect();
        let positions: Vec<i64> = layout
            .starts
            .iter()
            .flat_map(|s| (*s..*s + layout.n_new).map(|p| p as i64))
            .collect();
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [b * layout.n_new]), &device);
        let positions =
            Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [b * layout.n_new]), &device);
        let d = self.embed_tokens.dims()[1];
        let x = self.embed_tokens.clone().select(0, ids)
            + self.embed_positions.clone().select(0, positions);
        let mut x = x.reshape([b, layout.n_new, d]);
        let mut captured: Vec<Option<Tensor<B, 4>>> = vec![None; capture.len()];
        for (i, (layer, cache)) in self.layers.iter().zip(state.layers.iter_mut()).enumerate() {
            let heads: Vec<usize> = capture
                .iter()
                .filter(|(l, _)| *l == i)
                .map(|(_, h)| *h)
                .collect();
            let (y, scores) = layer.forward(x, cache, layout, &heads);
            x = y;
            for (head, s) in heads.iter().zip(scores) {
                if let Some(slot) = capture.iter().position(|c| *c == (i, *head)) {
                    captured[slot] = Some(s);
                }
            }
        }
        let captured = captured.into_iter().flatten().collect();
        (self.layer_norm.forward(x), captured)
    }
}

impl<B: WhisperBackend> StepLayout<B> {
    fn new(starts: Vec<usize>, n_new: usize, key_len: usize, device: &B::Device) -> Self {
        let uniform = starts.iter().all(|s| *s == starts[0]);
        let mask = if uniform && n_new == 1 {
            None
        } else {
            Some(causal_mask::<B>(&starts, n_new, key_len, device))
        };
        Self {
            starts,
            n_new,
            key_len,
            mask,
        }
    }
}

/// True where query `q` of row `r` may not see key `k`: `k > start_r + q`, built on the
/// device from the rows' starts (one small upload, no host-side mask).
fn causal_mask<B: WhisperBackend>(
    starts: &[usize],
    n_new: usize,
    key_len: usize,
    device: &B::Device,
) -> Tensor<B, 4, Bool> {
    let b = starts.len();
    let starts: Vec<i64> = starts.iter().map(|s| *s as i64).collect();
    let starts =
        Tensor::<B, 1, Int>::from_data(TensorData::new(starts, [b]), device).reshape([b, 1, 1, 1]);
    let queries = Tensor::<B, 1, Int>::arange(0..n_new as i64, device).reshape([1, 1, n_new, 1]);
    let keys = Tensor::<B, 1, Int>::arange(0..key_len as i64, device).reshape([1, 1, 1, key_len]);
    let last_visible = (starts + queries).expand([b, 1, n_new, key_len]);
    keys.expand([b, 1, n_new, key_len]).greater(last_visible)
}
