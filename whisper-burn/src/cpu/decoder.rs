//! The decoder on the host, for CPU backends: the same computation as
//! [`crate::model::decoder`]'s generic implementation, on plain buffers. A step of a few tokens then costs a few
//! packed-GEMM passes over the weights and nothing else, and every row and every query
//! gets the same arithmetic whatever else is in the pass, so logits are bit-identical
//! alone, batched, or while verifying drafted tokens.
use crate::config::WhisperConfig;
use crate::cpu::encoder::add_in_place;
use crate::cpu::gemm::{gemm_packed, pack_panels, HostMatrix, PANEL};
use crate::cpu::math::{gelu_in_place, simd_level, softmax_row, HostNorm, SimdLevel};
use crate::model::decoder::{PlainDecoder, PlainDecoderLayer};
use crate::model::kv_cache::{HostCross, HostLayerCache};
use crate::model::layers::PlainLinear;
use crate::weights::TensorStore;
use crate::Result;
use rayon::prelude::*;
use std::sync::Arc;

/// One decoder layer's weights, packed for the host GEMM (half precision where exact).
#[derive(Debug, Clone)]
pub struct HostDecoderLayer {
    pub self_attn_layer_norm: HostNorm,
    /// q, k, v, out
    pub self_attn: [Arc<HostMatrix>; 4],
    pub encoder_attn_layer_norm: HostNorm,
    /// q, k, v, out
    pub encoder_attn: [Arc<HostMatrix>; 4],
    pub final_layer_norm: HostNorm,
    pub fc1: Arc<HostMatrix>,
    pub fc2: Arc<HostMatrix>,
}

#[derive(Debug, Clone)]
pub struct HostDecoder {
    pub layers: Vec<HostDecoderLayer>,
    pub layer_norm: HostNorm,
    /// Token embeddings as a packed matrix (`[vocab, d_model]`), read a row at a time.
    pub embed_tokens: Arc<HostMatrix>,
    /// The output projection (`[vocab, d_model]`): the same matrix as `embed_tokens`
    /// when the checkpoint ties them.
    pub proj_out: Arc<HostMatrix>,
    /// `[max_target_positions, d_model]`
    pub embed_positions: Vec<f32>,
    pub d_model: usize,
    pub n_heads: usize,
}

fn load_norm(s: &mut TensorStore, prefix: &str, d: usize) -> Result<HostNorm> {
    Ok(HostNorm {
        gamma: s.take(&format!("{prefix}.weight"), &[d])?.data,
        beta: s.take(&format!("{prefix}.bias"), &[d])?.data,
    })
}

fn load_matrix(
    s: &mut TensorStore,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    with_bias: bool,
) -> Result<Arc<HostMatrix>> {
    let w = s.take(&format!("{prefix}.weight"), &[d_out, d_in])?;
    let bias = if with_bias {
        Some(s.take(&format!("{prefix}.bias"), &[d_out])?.data)
    } else {
        None
    };
    Ok(Arc::new(HostMatrix::new_compact(
        &w.data, d_out, d_in, bias,
    )))
}

fn load_attention(s: &mut TensorStore, p: &str, d: usize) -> Result<[Arc<HostMatrix>; 4]> {
    Ok([
        load_matrix(s, &format!("{p}.q_proj"), d, d, true)?,
        load_matrix(s, &format!("{p}.k_proj"), d, d, false)?,
        load_matrix(s, &format!("{p}.v_proj"), d, d, true)?,
        load_matrix(s, &format!("{p}.out_proj"), d, d, true)?,
    ])
}

impl HostDecoderLayer {
    fn load(s: &mut TensorStore, p: &str, c: &WhisperConfig) -> Result<Self> {
        let (d, ffn) = (c.d_model, c.decoder_ffn_dim);
        Ok(Self {
            self_attn_layer_norm: load_norm(s, &format!("{p}.self_attn_layer_norm"), d)?,
            self_attn: load_attention(s, &format!("{p}.self_attn"), d)?,
            encoder_attn_layer_norm: load_norm(s, &format!("{p}.encoder_attn_layer_norm"), d)?,
            encoder_attn: load_attention(s, &format!("{p}.encoder_attn"), d)?,
            final_layer_norm: load_norm(s, &format!("{p}.final_layer_norm"), d)?,
            fc1: load_matrix(s, &format!("{p}.fc1"), d, ffn, true)?,
            fc2: load_matrix(s, &format!("{p}.fc2"), ffn, d, true)?,
        })
    }

    fn to_plain(&self) -> PlainDecoderLayer {
        let plain = |a: &[Arc<HostMatrix>; 4]| a.each_ref().map(|m| PlainLinear::from_host(m));
        PlainDecoderLayer {
            self_attn_layer_norm: self.self_attn_layer_norm.clone(),
            self_attn: plain(&self.self_attn),
            encoder_attn_layer_norm: self.encoder_attn_layer_norm.clone(),
            encoder_attn: plain(&self.encoder_attn),
            final_layer_norm: self.final_layer_norm.clone(),
            fc1: PlainLinear::from_host(&self.fc1),
            fc2: PlainLinear::from_host(&self.fc2),
        }
    }
}

impl HostDecoder {
    /// Loads the decoder's weights (Hugging Face names) straight into the host layout;
    /// `embed_tokens` and `proj_out` are the rows `[vocab, d_model]` already taken.
    pub fn load(
        s: &mut TensorStore,
        c: &WhisperConfig,
        embed_tokens: &[f32],
        proj_out: Option<&[f32]>,
    ) -> Result<Self> {
        let (v, d) = (c.vocab_size, c.d_model);
        let embed = Arc::new(HostMatrix::new_compact(embed_tokens, v, d, None));
        let proj_out = match proj_out {
            Some(p) => Arc::new(HostMatrix::new_compact(p, v, d, None)),
            None => embed.clone(),
        };
        Ok(Self {
            embed_positions: s
                .take(
                    "model.decoder.embed_positions.weight",
                    &[c.max_target_positions, d],
                )?
                .data,
            layers: (0..c.decoder_layers)
                .map(|i| HostDecoderLayer::load(s, &format!("model.decoder.layers.{i}"), c))
                .collect::<Result<_>>()?,
            layer_norm: load_norm(s, "model.decoder.layer_norm", d)?,
            embed_tokens: embed,
            proj_out,
            d_model: d,
            n_heads: c.decoder_attention_heads,
        })
    }

    /// Vocabulary logits of `rows` hidden states (`[rows, d_model]`) -> `[rows, vocab]`.
    pub fn logits(&self, hidden: &[f32], rows: usize) -> Vec<f32> {
        self.proj_out.forward(hidden, rows)
    }

    /// The weights as plain rows (for the self-draft's quantization).
    pub fn to_plain(&self) -> PlainDecoder {
        PlainDecoder {
            layers: self.layers.iter().map(|l| l.to_plain()).collect(),
            layer_norm: self.layer_norm.clone(),
            embed_tokens: PlainLinear::from_host(&self.embed_tokens),
            embed_positions: self.embed_positions.clone(),
            d_model: self.d_model,
            n_heads: self.n_heads,
        }
    }

    fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Empty caches for one row with `capacity` positions and its encoder output
    /// (`[frames, d_model]`): cross keys/values projected and packed per head.
    pub fn new_row(&self, encoder_out: &[f32], capacity: usize) -> Vec<HostLayerCache> {
        let (d, h, dh) = (self.d_model, self.n_heads, self.head_dim());
        let frames = encoder_out.len() / d;
        self.layers
            .iter()
            .map(|l| {
                let k = l.encoder_attn[1].forward(encoder_out, frames);
                let v = l.encoder_attn[2].forward(encoder_out, frames);
                let (keys, values) = (0..h)
                    .into_par_iter()
                    .map(|hh| {
                        let keys = pack_panels(frames, dh, |o, c| k[o * d + hh * dh + c]);
                        let values = pack_panels(dh, frames, |o, c| v[c * d + hh * dh + o]);
                        (keys, values)
                    })
                    .unzip();
                HostLayerCache {
                    width: d,
                    self_k: vec![Vec::with_capacity(capacity * d)],
                    self_v: vec![Vec::with_capacity(capacity * d)],
                    cross: vec![Arc::new(HostCross {
                        frames,
                        head_dim: dh,
                        keys,
                        values,
                    })],
                }
            })
            .collect()
    }

    /// Runs `n` tokens per row after each row's `starts[r]` cached positions; returns the
    /// final hidden states `[rows * n, d_model]` (after the last layer norm).
    pub fn forward(
        &self,
        tokens: &[Vec<u32>],
        starts: &[usize],
        caches: &mut [HostLayerCache],
    ) -> Vec<f32> {
        self.forward_capturing(tokens, starts, caches, &[]).0
    }

    /// As [`Self::forward`], also returning the cross-attention scores (scaled `q·k`,
    /// before the softmax) of each `(layer, head)` in `capture`: `[rows][n][frames]`
    /// each, what word alignment reads.
    pub fn forward_capturing(
        &self,
        tokens: &[Vec<u32>],
        starts: &[usize],
        caches: &mut [HostLayerCache],
        capture: &[(usize, usize)],
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        let (b, n, d) = (tokens.len(), tokens[0].len(), self.d_model);
        let mut x = Vec::with_capacity(b * n * d);
        for (row, start) in tokens.iter().zip(starts) {
            for (j, t) in row.iter().enumerate() {
                let pos = &self.embed_positions[(start + j) * d..(start + j + 1) * d];
                x.extend(
                    self.embed_tokens
                        .row(*t as usize)
                        .iter()
                        .zip(pos)
                        .map(|(e, p)| e + p),
                );
            }
        }
        let mut captured = vec![Vec::new(); capture.len()];
        for (i, (layer, cache)) in self.layers.iter().zip(caches.iter_mut()).enumerate() {
            let heads: Vec<usize> = capture
                .iter()
                .filter(|(l, _)| *l == i)
                .map(|(_, h)| *h)
                .collect();
            let scores = self.layer_forward(layer, &mut x, n, starts, cache, &heads);
            for (head, s) in heads.iter().zip(scores) {
                let slot = capture.iter().position(|c| *c == (i, *head));
                captured[slot.expect("captured head was asked for")] = s;
            }
        }
        (self.layer_norm.forward(&x), captured)
    }

    fn layer_forward(
        &self,
        l: &HostDecoderLayer,
        x: &mut [f32],
        n: usize,
        starts: &[usize],
        cache: &mut HostLayerCache,
        capture_heads: &[usize],
    ) -> Vec<Vec<f32>> {
        let (d, m) = (self.d_model, x.len() / self.d_model);
        let h = l.self_attn_layer_norm.forward(x);
        let q = self.scaled(l.self_attn[0].forward(&h, m));
        let (k, v) = (l.self_attn[1].forward(&h, m), l.self_attn[2].forward(&h, m));
        for (r, start) in starts.iter().enumerate() {
            let rows = r * n * d..(r + 1) * n * d;
            write_at(&mut cache.self_k[r], start * d, &k[rows.clone()]);
            write_at(&mut cache.self_v[r], start * d, &v[rows]);
        }
        let ctx = self.self_attention(&q, n, starts, cache);
        add_in_place(x, &l.self_attn[3].forward(&ctx, m));
        let h = l.encoder_attn_layer_norm.forward(x);
        let q = self.scaled(l.encoder_attn[0].forward(&h, m));
        let (ctx, scores) = self.cross_attention(&q, n, &cache.cross, capture_heads);
        add_in_place(x, &l.encoder_attn[3].forward(&ctx, m));
        let h = l.final_layer_norm.forward(x);
        let mut f = l.fc1.forward(&h, m);
        gelu_in_place(&mut f);
        add_in_place(x, &l.fc2.forward(&f, m));
        scores
    }

    fn scaled(&self, mut q: Vec<f32>) -> Vec<f32> {
        let scale = (self.head_dim() as f32).powf(-0.5);
        q.iter_mut().for_each(|v| *v *= scale);
        q
    }

    /// Causal attention over each row's cache: query `j` of row `r` sees positions
    /// `0..=starts[r] + j`. Tasks are (row, head) pairs.
    fn self_attention(
        &self,
        q: &[f32],
        n: usize,
        starts: &[usize],
        cache: &HostLayerCache,
    ) -> Vec<f32> {
        let (d, h, dh) = (self.d_model, self.n_heads, self.head_dim());
        let tiles: Vec<Vec<f32>> = (0..starts.len() * h)
            .into_par_iter()
            .map(|task| {
                let (r, hh) = (task / h, task % h);
                let head = HeadView {
                    q: &q[r * n * d + hh * dh..],
                    keys: &cache.self_k[r][hh * dh..],
                    values: &cache.self_v[r][hh * dh..],
                    d,
                    dh,
                };
                let mut out = vec![0f32; n * dh];
                causal_head_attention(&head, n, starts[r], &mut out);
                out
            })
            .collect();
        merge_heads(&tiles, starts.len(), n, h, dh)
    }

    /// Attention over each row's audio frames with the packed cross keys/values; also
    /// the pre-softmax scores of `capture_heads` (`[rows][n][frames]` per head).
    fn cross_attention(
        &self,
        q: &[f32],
        n: usize,
        cross: &[Arc<HostCross>],
        capture_heads: &[usize],
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        let (d, h, dh) = (self.d_model, self.n_heads, self.head_dim());
        let dh_pad = dh.div_ceil(PANEL) * PANEL;
        let tiles: Vec<(Vec<f32>, Option<Vec<f32>>)> = (0..cross.len() * h)
            .into_par_iter()
            .map(|task| {
                let (r, hh) = (task / h, task % h);
                let c = &cross[r];
                let frames_pad = c.frames.div_ceil(PANEL) * PANEL;
                let mut scores = vec![0f32; n * frames_pad];
                gemm_packed(
                    &q[r * n * d + hh * dh..],
                    d,
                    n,
                    dh,
                    &c.keys[hh],
                    frames_pad,
                    &mut scores,
                    frames_pad,
                );
                let captured = capture_heads.contains(&hh).then(|| {
                    scores
                        .chunks(frames_pad)
                        .flat_map(|s| s[..c.frames].to_vec())
                        .collect::<Vec<f32>>()
                });
                scores
                    .chunks_mut(frames_pad)
                    .for_each(|s| softmax_row(&mut s[..c.frames]));
                let mut ctx = vec![0f32; n * dh_pad];
                gemm_packed(
                    &scores,
                    frames_pad,
                    n,
                    c.frames,
                    &c.values[hh],
                    dh_pad,
                    &mut ctx,
                    dh_pad,
                );
                let ctx = ctx
                    .chunks(dh_pad)
                    .flat_map(|row| row[..dh].to_vec())
                    .collect();
                (ctx, captured)
            })
            .collect();
        let (tiles, captured): (Vec<Vec<f32>>, Vec<Option<Vec<f32>>>) = tiles.into_iter().unzip();
        let scores = capture_heads
            .iter()
            .map(|head| {
                (0..cross.len())
                    .flat_map(|r| captured[r * h + head].clone().unwrap_or_default())
                    .collect()
            })
            .collect();
        (merge_heads(&tiles, cross.len(), n, h, dh), scores)
    }
}

/// Attention of one query (`q`: `[d]`, all heads, already scaled) over the first
/// `positions` cached keys and values (`[position][d]` each): the arithmetic of the
/// decoder's self attention for its last position. Returns `[d]`.
pub fn attend_cached(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    n_heads: usize,
    positions: usize,
) -> Vec<f32> {
    let d = q.len();
    assert!(
        n_heads > 0 && d.is_multiple_of(n_heads),
        "{d} query values do not split into {n_heads} heads"
    );
    let dh = d / n_heads;
    assert!(
        positions > 0 && keys.len() >= positions * d && values.len() >= positions * d,
        "fewer than {positions} cached positions"
    );
    let mut out = vec![0f32; d];
    for (hh, o) in out.chunks_mut(dh).enumerate() {
        let head = HeadView {
            q: &q[hh * dh..],
            keys: &keys[hh * dh..],
            values: &values[hh * dh..],
            d,
            dh,
        };
        causal_head_attention(&head, 1, positions - 1, o);
    }
    out
}

/// `tiles[r * h + head]` (`[n][dh]`) -> `[r * n][h * dh]`.
fn merge_heads(tiles: &[Vec<f32>], rows: usize, n: usize, h: usize, dh: usize) -> Vec<f32> {
    let d = h * dh;
    let mut out = vec![0f32; rows * n * d];
    for (task, tile) in tiles.iter().enumerate() {
        let (r, hh) = (task / h, task % h);
        for (j, v) in tile.chunks(dh).enumerate() {
            out[(r * n + j) * d + hh * dh..][..dh].copy_from_slice(v);
        }
    }
    out
}

/// Writes `values` at `at` in a cache row, dropping anything after it (rolled back).
fn write_at(row: &mut Vec<f32>, at: usize, values: &[f32]) {
    assert!(
        row.len() >= at,
        "cache row shorter than its recorded length"
    );
    row.truncate(at);
    row.extend_from_slice(values);
}

/// One (row, head) of self attention: queries, keys and values with row stride `d`,
/// starting at the head's first column.
struct HeadView<'a> {
    q: &'a [f32],
    keys: &'a [f32],
    values: &'a [f32],
    d: usize,
    dh: usize,
}

/// `out[j]` (`[n][dh]`) = attention of query `j` over positions `0..=start + j`, on the
/// widest FMA kernel the CPU has (the same arithmetic on every level).
fn causal_head_attention(head: &HeadView, n: usize, start: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if simd_level() != SimdLevel::Portable {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { causal_head_attention_fma(head, n, start, out) };
    }
    causal_head_attention_generic(head, n, start, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn causal_head_attention_fma(head: &HeadView, n: usize, start: usize, out: &mut [f32]) {
    causal_head_attention_generic(head, n, start, out)
}

// Plain loops only: a closure here would be compiled apart from the FMA-enabled caller,
// and its `mul_add` would become a call to the software `fmaf` for every element.
#[inline(always)]
fn causal_head_attention_generic(head: &HeadView, n: usize, start: usize, out: &mut [f32]) {
    let (d, dh) = (head.d, head.dh);
    let mut scores = Vec::with_capacity(start + n);
    for j in 0..n {
        let qj = &head.q[j * d..][..dh];
        scores.clear();
        for t in 0..start + j + 1 {
            scores.push(dot(qj, &head.keys[t * d..][..dh]));
        }
        softmax_row(&mut scores);
        let o = &mut out[j * dh..(j + 1) * dh];
        for (t, &p) in scores.iter().enumerate() {
            let v = &head.values[t * d..][..dh];
            for c in 0..dh {
                o[c] = p.mul_add(v[c], o[c]);
            }
        }
    }
}

/// Dot product in a fixed order (16 partial sums, then summed in order).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] = x[l].mul_add(y[l], acc[l]);
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[l] = x.mul_add(*y, acc[l]);
    }
    acc.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attend_cached_is_softmax_attention_per_head() {
        let (heads, dh, positions) = (3, 20, 7);
        let d = heads * dh;
        let val = |i: usize, m: usize| ((i * m % 37) as f32 - 18.0) / 23.0;
        let q: Vec<f32> = (0..d).map(|i| val(i, 7)).collect();
        let keys: Vec<f32> = (0..positions * d).map(|i| val(i, 11)).collect();
        let values: Vec<f32> = (0..positions * d).map(|i| val(i, 13)).collect();
        let out = attend_cached(&q, &keys, &values, heads, positions);
        for h in 0..heads {
            let cols = h * dh..(h + 1) * dh;
            let scores: Vec<f64> = (0..positions)
                .map(|t| {
                    cols.clone()
                        .map(|c| q[c] as f64 * keys[t * d + c] as f64)
                        .sum()
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = weights.iter().sum();
            for c in cols {
                let want: f64 = (0..positions)
                    .map(|t| weights[t] / total * values[t * d + c] as f64)
                    .sum();
                assert!(
                    (out[c] as f64 - want).abs() < 1e-5,
                    "head {h} column {c}: {} vs {want}",
                    out[c]
                );
            }
        }
    }
}
