//! Building blocks of the generic implementation: linear layers stored in the layout the
//! backend multiplies fastest, layer norm, head splitting; the arithmetic itself is
//! [`WhisperBackend`]'s.
use crate::backend::WhisperBackend;
use crate::cpu::gemm::HostMatrix;
use crate::cpu::math::HostNorm;
use crate::weights::{HostTensor, TensorStore};
use crate::{Result, WhisperError};
use burn::prelude::*;

/// Turns a host tensor into a backend tensor of rank `D`.
pub fn to_tensor<B: WhisperBackend, const D: usize>(
    t: HostTensor,
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(t.data, t.shape), device)
}

/// A linear layer `y = x W^T + b`, with `W^T` (`[in, out]`) materialized once at load.
#[derive(Debug, Clone)]
pub struct Linear<B: WhisperBackend> {
    pub weight_t: Tensor<B, 2>,
    pub bias: Option<Tensor<B, 1>>,
}

impl<B: WhisperBackend> Linear<B> {
    /// Loads `{prefix}.weight` (`[out, in]`) and, when `with_bias`, `{prefix}.bias`.
    pub fn load(
        s: &mut TensorStore,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        with_bias: bool,
        device: &B::Device,
    ) -> Result<Self> {
        let w = s.take(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let weight_t = to_tensor::<B, 2>(transpose(&w), device);
        let bias = if with_bias {
            Some(to_tensor::<B, 1>(
                s.take(&format!("{prefix}.bias"), &[d_out])?,
                device,
            ))
        } else {
            None
        };
        Ok(Self { weight_t, bias })
    }

    /// `x`: `[batch, time, in]` -> `[batch, time, out]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, d_in] = x.dims();
        let d_out = self.weight_t.dims()[1];
        B::dense(
            x.reshape([b * t, d_in]),
            self.weight_t.clone(),
            self.bias.clone(),
        )
        .reshape([b, t, d_out])
    }

    /// The weight as `[out, in]` rows and the bias, on the host.
    pub fn to_plain(&self) -> Result<PlainLinear> {
        let [d_in, d_out] = self.weight_t.dims();
        let wt = tensor_f32(self.weight_t.clone())?;
        let weight = transpose(&HostTensor::new(vec![d_in, d_out], wt)).data;
        let bias = match &self.bias {
            Some(b) => Some(tensor_f32(b.clone())?),
            None => None,
        };
        Ok(PlainLinear {
            weight,
            bias,
            d_in,
            d_out,
        })
    }
}

/// A tensor's values as `f32` on the host, whatever the backend's float type.
pub fn tensor_f32<B: WhisperBackend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| WhisperError::Decode(format!("reading a tensor: {e:?}")))
}

/// A linear layer's weights as plain rows, whichever implementation holds them (the
/// self-draft quantizes these).
#[derive(Debug, Clone)]
pub struct PlainLinear {
    /// `[d_out, d_in]`, row-major.
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub d_in: usize,
    pub d_out: usize,
}

impl PlainLinear {
    pub fn from_host(m: &HostMatrix) -> Self {
        Self {
            weight: (0..m.d_out).flat_map(|o| m.row(o)).collect(),
            bias: m.bias.clone(),
            d_in: m.d_in,
            d_out: m.d_out,
        }
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
pub struct LayerNorm<B: WhisperBackend> {
    pub gamma: Tensor<B, 1>,
    pub beta: Tensor<B, 1>,
}

impl<B: WhisperBackend> LayerNorm<B> {
    pub fn load(s: &mut TensorStore, prefix: &str, d: usize, device: &B::Device) -> Result<Self> {
        Ok(Self {
            gamma: to_tensor(s.take(&format!("{prefix}.weight"), &[d])?, device),
            beta: to_tensor(s.take(&format!("{prefix}.bias"), &[d])?, device),
        })
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        B::norm(x, self.gamma.clone(), self.beta.clone())
    }

    pub fn to_host(&self) -> Result<HostNorm> {
        Ok(HostNorm {
            gamma: tensor_f32(self.gamma.clone())?,
            beta: tensor_f32(self.beta.clone())?,
        })
    }
}

/// `[b, t, h * dh]` -> `[b, h, t, dh]`.
pub fn split_heads<B: WhisperBackend>(x: Tensor<B, 3>, n_heads: usize) -> Tensor<B, 4> {
    let [b, t, d] = x.dims();
    x.reshape([b, t, n_heads, d / n_heads]).swap_dims(1, 2)
}

/// `[b, h, t, dh]` -> `[b, t, h * dh]`.
pub fn merge_heads<B: WhisperBackend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [b, h, t, dh] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, h * dh])
}

/// The feed-forward block `fc2(gelu(fc1(x)))`.
#[derive(Debug, Clone)]
pub struct FeedForward<B: WhisperBackend> {
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
}

impl<B: WhisperBackend> FeedForward<B> {
    pub fn load(
        s: &mut TensorStore,
        prefix: &str,
        d: usize,
        ffn: usize,
        device: &B::Device,
    ) -> Result<Self> {
        Ok(Self {
            fc1: Linear::load(s, &format!("{prefix}.fc1"), d, ffn, true, device)?,
            fc2: Linear::load(s, &format!("{prefix}.fc2"), ffn, d, true, device)?,
        })
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.fc2
            .forward(burn::tensor::activation::gelu(self.fc1.forward(x)))
    }
}

/// Query/key/value/output projections of one attention block.
#[derive(Debug, Clone)]
pub struct AttentionProj<B: WhisperBackend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub out_proj: Linear<B>,
    pub n_heads: usize,
}

impl<B: WhisperBackend> AttentionProj<B> {
    pub fn load(
        s: &mut TensorStore,
        prefix: &str,
        d: usize,
        n_heads: usize,
        device: &B::Device,
    ) -> Result<Self> {
        Ok(Self {
            q_proj: Linear::load(s, &format!("{prefix}.q_proj"), d, d, true, device)?,
            k_proj: Linear::load(s, &format!("{prefix}.k_proj"), d, d, false, device)?,
            v_proj: Linear::load(s, &format!("{prefix}.v_proj"), d, d, true, device)?,
            out_proj: Linear::load(s, &format!("{prefix}.out_proj"), d, d, true, device)?,
            n_heads,
        })
    }
}
