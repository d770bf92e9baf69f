//! The text decoder: token + learned position embeddings, pre-norm layers with causal
//! self-attention over a KV cache and cross-attention over the encoder output.
use super::host_decoder::{HostDecoder, HostDecoderLayer};
use super::host_gemm::{HostMatrix, MAX_ROWS};
use super::host_math::HostNorm;
use super::kv_cache::{DecoderState, HostLayerCache, LayerCache};
use super::layers::{
    attention, host_forward, is_cpu_backend, merge_heads, split_heads, to_tensor, transpose,
    AttentionProj, FeedForward, LayerNorm,
};
use crate::config::WhisperConfig;
use crate::weights::TensorStore;
use crate::{Result, WhisperError};
use burn::prelude::*;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct DecoderLayer<B: Backend> {
    pub self_attn_layer_norm: LayerNorm<B>,
    pub self_attn: AttentionProj<B>,
    pub encoder_attn_layer_norm: LayerNorm<B>,
    pub encoder_attn: AttentionProj<B>,
    pub final_layer_norm: LayerNorm<B>,
    pub ffn: FeedForward<B>,
}

/// Where new tokens go in the cache and which keys each query may see.
struct StepLayout<B: Backend> {
    /// Cache length of each row before this step.
    starts: Vec<usize>,
    n_new: usize,
    /// Keys to attend to: `0..key_len`.
    key_len: usize,
    mask: Option<Tensor<B, 4, Bool>>,
}

impl<B: Backend> DecoderLayer<B> {
    fn load(s: &mut TensorStore, p: &str, c: &WhisperConfig, dev: &B::Device) -> Result<Self> {
        let (d, h) = (c.d_model, c.decoder_attention_heads);
        Ok(Self {
            self_attn_layer_norm: LayerNorm::load(s, &format!("{p}.self_attn_layer_norm"), d, dev)?,
            self_attn: AttentionProj::load(s, &format!("{p}.self_attn"), d, h, true, dev)?,
            encoder_attn_layer_norm: LayerNorm::load(
                s,
                &format!("{p}.encoder_attn_layer_norm"),
                d,
                dev,
            )?,
            encoder_attn: AttentionProj::load(s, &format!("{p}.encoder_attn"), d, h, true, dev)?,
            final_layer_norm: LayerNorm::load(s, &format!("{p}.final_layer_norm"), d, dev)?,
            ffn: FeedForward::load(s, p, d, c.decoder_ffn_dim, true, dev)?,
        })
    }

    fn forward(
        &self,
        x: Tensor<B, 3>,
        cache: &mut LayerCache<B>,
        layout: &StepLayout<B>,
    ) -> Tensor<B, 3> {
        let h = self.self_attn_layer_norm.forward(x.clone());
        let x = x + self.self_attention(h, cache, layout);
        let h = self.encoder_attn_layer_norm.forward(x.clone());
        let a = &self.encoder_attn;
        let q = split_heads(a.q_proj.forward(h), a.n_heads);
        let (k, v) = (
            split_heads(cache.cross_k.clone(), a.n_heads),
            split_heads(cache.cross_v.clone(), a.n_heads),
        );
        let ctx = attention(q, k, v, None);
        let x = x + a.out_proj.forward(merge_heads(ctx));
        let h = self.final_layer_norm.forward(x.clone());
        x + self.ffn.forward(h)
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
            .forward(merge_heads(attention(q, keys, values, layout.mask.clone())))
    }
}

/// Writes `new` (`[b, h, n_new, dh]`) at each row's start position of `cache`.
fn write_rows<B: Backend>(
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

#[derive(Debug, Clone)]
pub struct Decoder<B: Backend> {
    pub embed_tokens: Tensor<B, 2>,
    /// `embed_tokens` transposed (`[d_model, vocab]`) for the output projection.
    pub proj_out_t: Tensor<B, 2>,
    pub embed_positions: Tensor<B, 2>,
    /// Host copy of the output projection (`[vocab, d_model]`) on CPU backends.
    pub proj_out_host: Option<Arc<HostMatrix>>,
    pub layers: Vec<DecoderLayer<B>>,
    pub layer_norm: LayerNorm<B>,
    pub n_heads: usize,
    pub max_positions: usize,
    /// The host implementation CPU backends run.
    pub host: Option<HostDecoder>,
}

impl<B: Backend> Decoder<B> {
    pub fn load(s: &mut TensorStore, c: &WhisperConfig, dev: &B::Device) -> Result<Self> {
        let emb = s.take(
            "model.decoder.embed_tokens.weight",
            &[c.vocab_size, c.d_model],
        )?;
        let proj = match s.get("proj_out.weight") {
            Some(p) if p.data != emb.data => {
                s.take("proj_out.weight", &[c.vocab_size, c.d_model])?
            }
            _ => emb.clone(),
        };
        let proj_out_host = is_cpu_backend::<B>().then(|| {
            Arc::new(HostMatrix::new_compact(
                &proj.data,
                c.vocab_size,
                c.d_model,
                None,
            ))
        });
        let embed_host = match &proj_out_host {
            Some(p) if proj.data == emb.data => Some(p.clone()),
            Some(_) => Some(Arc::new(HostMatrix::new_compact(
                &emb.data,
                c.vocab_size,
                c.d_model,
                None,
            ))),
            None => None,
        };
        let mut decoder = Self {
            host: None,
            proj_out_host,
            proj_out_t: to_tensor(transpose(&proj), dev),
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
            n_heads: c.decoder_attention_heads,
            max_positions: c.max_target_positions,
        };
        if let Some(embed) = embed_host {
            decoder.host = decoder.host_decoder(embed);
        }
        Ok(decoder)
    }

    /// The host decoder over the layers' host weight copies (None if one is missing).
    fn host_decoder(&self, embed_tokens: Arc<HostMatrix>) -> Option<HostDecoder> {
        let norm = |n: &LayerNorm<B>| -> Option<HostNorm> {
            Some(HostNorm {
                gamma: n.gamma.to_data().to_vec().ok()?,
                beta: n.beta.to_data().to_vec().ok()?,
            })
        };
        let proj = |a: &AttentionProj<B>| -> Option<[Arc<HostMatrix>; 4]> {
            Some([
                a.q_proj.host.clone()?,
                a.k_proj.host.clone()?,
                a.v_proj.host.clone()?,
                a.out_proj.host.clone()?,
            ])
        };
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Some(HostDecoderLayer {
                    self_attn_layer_norm: norm(&l.self_attn_layer_norm)?,
                    self_attn: proj(&l.self_attn)?,
                    encoder_attn_layer_norm: norm(&l.encoder_attn_layer_norm)?,
                    encoder_attn: proj(&l.encoder_attn)?,
                    final_layer_norm: norm(&l.final_layer_norm)?,
                    fc1: l.ffn.fc1.host.clone()?,
                    fc2: l.ffn.fc2.host.clone()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(HostDecoder {
            layers,
            layer_norm: norm(&self.layer_norm)?,
            embed_tokens,
            embed_positions: self.embed_positions.to_data().to_vec().ok()?,
            d_model: self.embed_tokens.dims()[1],
            n_heads: self.n_heads,
        })
    }

    /// A fresh state for a batch of encoder outputs (`[batch, frames, d_model]`):
    /// cross-attention keys/values computed once, an empty self-attention cache.
    pub fn new_state(&self, encoder_out: Tensor<B, 3>) -> DecoderState<B> {
        let [b, frames, d] = encoder_out.dims();
        if let Some(host) = &self.host {
            let data: Vec<f32> = encoder_out
                .into_data()
                .convert::<f32>()
                .into_vec()
                .unwrap_or_default();
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
            return DecoderState {
                layers: Vec::new(),
                host_layers,
                lens: vec![0; b],
                capacity: self.max_positions,
            };
        }
        let device = encoder_out.device();
        let dh = self.embed_tokens.dims()[1] / self.n_heads;
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let a = &l.encoder_attn;
                LayerCache {
                    self_k: Tensor::zeros([b, self.n_heads, self.max_positions, dh], &device),
                    self_v: Tensor::zeros([b, self.n_heads, self.max_positions, dh], &device),
                    cross_k: a.k_proj.forward(encoder_out.clone()),
                    cross_v: a.v_proj.forward(encoder_out.clone()),
                }
            })
            .collect();
        DecoderState {
            layers,
            host_layers: Vec::new(),
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
        let device = self.embed_tokens.device();
        if let (Some(host), true) = (&self.host, state.on_host()) {
            let (starts, n_new, _) = self.check_step(tokens, state)?;
            let hidden = host.forward(tokens, &starts, &mut state.host_layers);
            state.lens.iter_mut().for_each(|l| *l += n_new);
            let d = host.d_model;
            return Ok(Tensor::from_data(
                TensorData::new(hidden, [tokens.len(), n_new, d]),
                &device,
            ));
        }
        let layout = self.layout(tokens, state)?;
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
        for (layer, cache) in self.layers.iter().zip(state.layers.iter_mut()) {
            x = layer.forward(x, cache, &layout);
        }
        state.lens.iter_mut().for_each(|l| *l += layout.n_new);
        Ok(self.layer_norm.forward(x))
    }

    /// Vocabulary logits of hidden states: `[b, t, d]` -> `[b, t, vocab]`.
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, d] = hidden.dims();
        let v = self.proj_out_t.dims()[1];
        if let Some(h) = self.proj_out_host.as_ref().filter(|_| b * t <= MAX_ROWS) {
            return host_forward(h, hidden.reshape([b * t, d])).reshape([b, t, v]);
        }
        hidden
            .reshape([b * t, d])
            .matmul(self.proj_out_t.clone())
            .reshape([b, t, v])
    }

    fn layout(&self, tokens: &[Vec<u32>], state: &DecoderState<B>) -> Result<StepLayout<B>> {
        let (starts, n_new, key_len) = self.check_step(tokens, state)?;
        let uniform = starts.iter().all(|s| *s == starts[0]);
        let mask = if uniform && n_new == 1 {
            None
        } else {
            Some(self.mask(&starts, n_new, key_len))
        };
        Ok(StepLayout {
            starts,
            n_new,
            key_len,
            mask,
        })
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
        let vocab = self.embed_tokens.dims()[0];
        if let Some(t) = tokens.iter().flatten().find(|t| **t as usize >= vocab) {
            return Err(WhisperError::Decode(format!(
                "token id {t} is outside the vocabulary of {vocab}"
            )));
        }
        Ok((starts, n_new, key_len))
    }

    /// True where query `q` of row `r` may not see key `k`: `k > start_r + q`.
    fn mask(&self, starts: &[usize], n_new: usize, key_len: usize) -> Tensor<B, 4, Bool> {
        let mut hidden = Vec::with_capacity(starts.len() * n_new * key_len);
        for s in starts {
            for q in 0..n_new {
                hidden.extend((0..key_len).map(|k| k > s + q));
            }
        }
        Tensor::from_data(
            TensorData::new(hidden, [starts.len(), 1, n_new, key_len]),
            &self.embed_tokens.device(),
        )
    }
}
