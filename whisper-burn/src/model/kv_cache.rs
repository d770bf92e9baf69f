//! Per-sequence decoder state: a preallocated self-attention KV cache with a length per
//! row, plus the cross-attention keys/values of that row's audio.
//!
//! Rollback is a truncate (the length goes down; stale entries are masked and later
//! overwritten) and beam reordering is a row select.
use burn::prelude::*;
use std::sync::Arc;

/// Keys and values of one decoder layer for every row of a batch.
#[derive(Debug, Clone)]
pub struct LayerCache<B: Backend> {
    /// `[batch, heads, capacity, head_dim]`
    pub self_k: Tensor<B, 4>,
    pub self_v: Tensor<B, 4>,
    /// `[batch, audio_frames, d_model]` (heads split on use, a view).
    pub cross_k: Tensor<B, 3>,
    pub cross_v: Tensor<B, 3>,
}

/// One row's cross-attention keys and values for one layer on the host, packed per head
/// for the host GEMM (see [`crate::cpu::decoder`]).
#[derive(Debug, Clone)]
pub struct HostCross {
    pub frames: usize,
    pub head_dim: usize,
    /// Per head: keys as packed weights of `frames` outputs over `head_dim` inputs.
    pub keys: Vec<Vec<f32>>,
    /// Per head: values as packed weights of `head_dim` outputs over `frames` inputs.
    pub values: Vec<Vec<f32>>,
}

impl HostCross {
    /// Head `head`'s keys of the first `frames` frames (at most all) as `[frames][head_dim]`.
    pub fn head_keys(&self, head: usize, frames: usize) -> Vec<f32> {
        let (panels, dh) = (&self.keys[head], self.head_dim);
        let mut out = vec![0f32; frames.min(self.frames) * dh];
        for (f, row) in out.chunks_mut(dh).enumerate() {
            let panel = &panels[(f / 32) * dh * 32 + f % 32..];
            row.iter_mut()
                .enumerate()
                .for_each(|(c, v)| *v = panel[c * 32]);
        }
        out
    }

    /// Head `head`'s values of the first `frames` frames (at most all) as `[frames][head_dim]`.
    pub fn head_values(&self, head: usize, frames: usize) -> Vec<f32> {
        let (panels, dh) = (&self.values[head], self.head_dim);
        let mut out = vec![0f32; frames.min(self.frames) * dh];
        for (f, row) in out.chunks_mut(dh).enumerate() {
            row.iter_mut()
                .enumerate()
                .for_each(|(o, v)| *v = panels[(o / 32) * self.frames * 32 + f * 32 + o % 32]);
        }
        out
    }
}

/// Keys and values of one decoder layer on the host (CPU backends), per row: the self
/// cache as `[len][d_model]` with the full capacity reserved, and the shared cross part.
#[derive(Debug, Clone, Default)]
pub struct HostLayerCache {
    /// Values per cached position (`d_model`).
    pub width: usize,
    pub self_k: Vec<Vec<f32>>,
    pub self_v: Vec<Vec<f32>>,
    pub cross: Vec<Arc<HostCross>>,
}

/// The decoding state of a batch of sequences.
#[derive(Debug, Clone)]
pub struct DecoderState<B: Backend> {
    /// Backend tensors (GPU backends); empty when the state lives on the host.
    pub layers: Vec<LayerCache<B>>,
    /// Host caches (CPU backends); empty otherwise.
    pub host_layers: Vec<HostLayerCache>,
    /// Number of valid cached positions of each row.
    pub lens: Vec<usize>,
    pub capacity: usize,
}

impl<B: Backend> DecoderState<B> {
    pub fn batch_size(&self) -> usize {
        self.lens.len()
    }

    pub fn len(&self, row: usize) -> usize {
        self.lens[row]
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// True when the caches live on the host (CPU backends).
    pub fn on_host(&self) -> bool {
        !self.host_layers.is_empty()
    }

    /// Rolls row `row` back to `len` cached positions.
    pub fn truncate(&mut self, row: usize, len: usize) {
        assert!(len <= self.lens[row], "truncate can only shorten a row");
        self.lens[row] = len;
    }

    /// Rolls every row back to `len` (rows shorter than `len` are unchanged).
    pub fn truncate_all(&mut self, len: usize) {
        self.lens.iter_mut().for_each(|l| *l = (*l).min(len));
    }

    /// Keeps rows `indices` (in that order, repeats allowed): beam reordering and
    /// dropping finished rows.
    pub fn select_rows(&mut self, indices: &[usize]) {
        if self.on_host() {
            let (cap, lens) = (self.capacity, &self.lens);
            let copy = |rows: &[Vec<f32>], d: usize| -> Vec<Vec<f32>> {
                indices
                    .iter()
                    .map(|i| {
                        let used = (lens[*i] * d).min(rows[*i].len());
                        let mut v = Vec::with_capacity(cap * d);
                        v.extend_from_slice(&rows[*i][..used]);
                        v
                    })
                    .collect()
            };
            for l in &mut self.host_layers {
                *l = HostLayerCache {
                    width: l.width,
                    self_k: copy(&l.self_k, l.width),
                    self_v: copy(&l.self_v, l.width),
                    cross: indices.iter().map(|i| l.cross[*i].clone()).collect(),
                };
            }
            self.lens = indices.iter().map(|i| self.lens[*i]).collect();
            return;
        }
        let device = self.layers.first().map(|l| l.self_k.device());
        let Some(device) = device else { return };
        let idx: Vec<i64> = indices.iter().map(|i| *i as i64).collect();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [indices.len()]), &device);
        for l in &mut self.layers {
            l.self_k = l.self_k.clone().select(0, idx.clone());
            l.self_v = l.self_v.clone().select(0, idx.clone());
            l.cross_k = l.cross_k.clone().select(0, idx.clone());
            l.cross_v = l.cross_v.clone().select(0, idx.clone());
        }
        self.lens = indices.iter().map(|i| self.lens[*i]).collect();
    }

    /// Splits off one row as its own state (e.g. to run it unbatched).
    pub fn row(&self, row: usize) -> Self {
        let mut s = self.clone();
        s.select_rows(&[row]);
        s
    }

    /// Appends the rows of `other` to this batch (both with the same capacity).
    pub fn append(&mut self, other: DecoderState<B>) {
        if self.lens.is_empty() {
            *self = other;
            return;
        }
        for (a, b) in self.host_layers.iter_mut().zip(other.host_layers) {
            a.self_k.extend(b.self_k);
            a.self_v.extend(b.self_v);
            a.cross.extend(b.cross);
        }
        for (a, b) in self.layers.iter_mut().zip(other.layers) {
            a.self_k = Tensor::cat(vec![a.self_k.clone(), b.self_k], 0);
            a.self_v = Tensor::cat(vec![a.self_v.clone(), b.self_v], 0);
            a.cross_k = Tensor::cat(vec![a.cross_k.clone(), b.cross_k], 0);
            a.cross_v = Tensor::cat(vec![a.cross_v.clone(), b.cross_v], 0);
        }
        self.lens.extend(other.lens);
    }
}
