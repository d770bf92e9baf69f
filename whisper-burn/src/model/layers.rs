//! Building blocks: linear layers stored in the layout the backend multiplies fastest,
//! layer norm, and multi-head attention over explicit key/value tensors.
use super::host_gemm::{HostMatrix, MAX_ROWS};
use crate::weights::{HostTensor, TensorStore};
use crate::Result;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use std::sync::Arc;

/// Turns a host tensor into a backend tensor of rank `D`.
pub fn to_tensor<B: Backend, const D: usize>(t: HostTensor, device: &B::Device) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(t.data, t.shape), device)
}

/// A linear layer `y = x W^T + b`, with `W^T` (`[in, out]`) materialized once at load.
/// On CPU backends decoder layers also keep a host copy for few-row products.
#[derive(Debug, Clone)]
pub struct Linear<B: Backend> {
    pub weight_t: Tensor<B, 2>,
    pub bias: Option<Tensor<B, 1>>,
    pub host: Option<Arc<HostMatrix>>,
}

/// True for the CPU backends, where host kernels beat the generic GEMM for few rows.
pub fn is_cpu_backend<B: Backend>() -> bool {
    let name = std::any::type_name::<B>();
    name.contains("Flex") || name.contains("NdArray") || name.contains("Candle")
}

/// Few-row product on the host: `x` `[rows, in]` -> `[rows, out]`.
pub fn host_forward<B: Backend>(h: &HostMatrix, x: Tensor<B, 2>) -> Tensor<B, 2> {
    let [m, _] = x.dims();
    let device = x.device();
    let xs = x
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default();
    Tensor::from_data(TensorData::new(h.forward(&xs, m), [m, h.d_out]), &device)
}

impl<B: Backend> Linear<B> {
    /// Loads `{prefix}.weight` (`[out, in]`) and, when `with_bias`, `{prefix}.bias`.
    /// `host_copy`: keep `[out, in]` on the host for few-row products (decoder layers).
    pub fn load(
        s: &mut TensorStore,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        with_bias: bool,
        host_copy: bool,
        device: &B::Device,
    ) -> Result<Self> {
        let w = s.take(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let weight_t = to_tensor::<B, 2>(transpose(&w), device);
        let bias_host = if with_bias {
            Some(s.take(&format!("{prefix}.bias"), &[d_out])?)
        } else {
            None
        };
        let host = (host_copy && is_cpu_backend::<B>()).then(|| {
            Arc::new(HostMatrix::new_compact(
                &w.data,
                d_out,
                d_in,
                bias_host.as_ref().map(|b| b.data.clone()),
            ))
        });
        let bias = bias_host.map(|b| to_tensor::<B, 1>(b, device));
        Ok(Self {
            weight_t,
            bias,
            host,
        })
    }

    /// `x`: `[batch, time, in]` -> `[batch, time, out]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, d_in] = x.dims();
        let d_out = self.weight_t.dims()[1];
        if let Some(h) = self.host.as_ref().filter(|_| b * t <= MAX_ROWS) {
            return host_forward(h, x.reshape([b * t, d_in])).reshape([b, t, d_out]);
        }
        let y = x.reshape([b * t, d_in]).matmul(self.weight_t.clone());
        let y = match &self.bias {
            Some(bias) => y + bias.clone().unsqueeze::<2>(),
            None => y,
        };
        y.reshape([b, t, d_out])
    }
}

/// `[out, in]` -> `[in, out]` on the host.
pub fn transpose(w: &HostTensor) -> HostTensor {
    let (rows, cols) = (w.shape[0], w.shape[1]);
    let mut out = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = w.data[r * cols + c];
        }
    }
    HostTensor::new(vec![cols, rows], out)
}

/// Layer normalisation over the last dimension (eps 1e-5, as Whisper).
#[derive(Debug, Clone)]
pub struct LayerNorm<B: Backend> {
    pub gamma: Tensor<B, 1>,
    pub beta: Tensor<B, 1>,
}

impl<B: Backend> LayerNorm<B> {
    pub fn load(s: &mut TensorStore, prefix: &str, d: usize, device: &B::Device) -> Result<Self> {
        Ok(Self {
            gamma: to_tensor(s.take(&format!("{prefix}.weight"), &[d])?, device),
            beta: to_tensor(s.take(&format!("{prefix}.bias"), &[d])?, device),
        })
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let (var, mean) = x.clone().var_mean_bias(2);
        let x = (x - mean) / (var + 1e-5).sqrt();
        x * self.gamma.clone().unsqueeze::<3>() + self.beta.clone().unsqueeze::<3>()
    }
}

/// `[b, t, h * dh]` -> `[b, h, t, dh]`.
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, n_heads: usize) -> Tensor<B, 4> {
    let [b, t, d] = x.dims();
    x.reshape([b, t, n_heads, d / n_heads]).swap_dims(1, 2)
}

/// `[b, h, t, dh]` -> `[b, t, h * dh]`.
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [b, h, t, dh] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, h * dh])
}

/// Scaled dot-product attention; `mask` (true = hidden) is `[b, 1, t_q, t_k]`.
pub fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
) -> Tensor<B, 4> {
    let dh = q.dims()[3];
    let scores = q
        .mul_scalar((dh as f64).powf(-0.5))
        .matmul(k.swap_dims(2, 3));
    let scores = match mask {
        Some(m) => {
            let [b, h, tq, tk] = scores.dims();
            scores.mask_fill(m.expand([b, h, tq, tk]), f32::NEG_INFINITY)
        }
        None => scores,
    };
    softmax(scores, 3).matmul(v)
}

/// The feed-forward block `fc2(gelu(fc1(x)))`.
#[derive(Debug, Clone)]
pub struct FeedForward<B: Backend> {
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
}

impl<B: Backend> FeedForward<B> {
    pub fn load(
        s: &mut TensorStore,
        prefix: &str,
        d: usize,
        ffn: usize,
        host: bool,
        device: &B::Device,
    ) -> Result<Self> {
        Ok(Self {
            fc1: Linear::load(s, &format!("{prefix}.fc1"), d, ffn, true, host, device)?,
            fc2: Linear::load(s, &format!("{prefix}.fc2"), ffn, d, true, host, device)?,
        })
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.fc2
            .forward(burn::tensor::activation::gelu(self.fc1.forward(x)))
    }
}

/// Query/key/value/output projections of one attention block.
#[derive(Debug, Clone)]
pub struct AttentionProj<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub out_proj: Linear<B>,
    pub n_heads: usize,
}

impl<B: Backend> AttentionProj<B> {
    pub fn load(
        s: &mut TensorStore,
        prefix: &str,
        d: usize,
        n_heads: usize,
        host: bool,
        device: &B::Device,
    ) -> Result<Self> {
        Ok(Self {
            q_proj: Linear::load(s, &format!("{prefix}.q_proj"), d, d, true, host, device)?,
            k_proj: Linear::load(s, &format!("{prefix}.k_proj"), d, d, false, host, device)?,
            v_proj: Linear::load(s, &format!("{prefix}.v_proj"), d, d, true, host, device)?,
            out_proj: Linear::load(s, &format!("{prefix}.out_proj"), d, d, true, host, device)?,
            n_heads,
        })
    }
}
