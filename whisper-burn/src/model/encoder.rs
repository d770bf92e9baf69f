//! The audio encoder: two convolutions, sinusoidal positions, pre-norm transformer layers.
use super::host_encoder::HostEncoder;
use super::layers::{is_cpu_backend, to_tensor, AttentionProj, FeedForward, LayerNorm};
use crate::config::WhisperConfig;
use crate::weights::TensorStore;
use crate::Result;
use burn::prelude::*;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct EncoderLayer<B: Backend> {
    pub self_attn_layer_norm: LayerNorm<B>,
    pub self_attn: AttentionProj<B>,
    pub final_layer_norm: LayerNorm<B>,
    pub ffn: FeedForward<B>,
}

impl<B: Backend> EncoderLayer<B> {
    fn load(s: &mut TensorStore, p: &str, c: &WhisperConfig, dev: &B::Device) -> Result<Self> {
        Ok(Self {
            self_attn_layer_norm: LayerNorm::load(
                s,
                &format!("{p}.self_attn_layer_norm"),
                c.d_model,
                dev,
            )?,
            self_attn: AttentionProj::load(
                s,
                &format!("{p}.self_attn"),
                c.d_model,
                c.encoder_attention_heads,
                false,
                dev,
            )?,
            final_layer_norm: LayerNorm::load(s, &format!("{p}.final_layer_norm"), c.d_model, dev)?,
            ffn: FeedForward::load(s, p, c.d_model, c.encoder_ffn_dim, false, dev)?,
        })
    }

    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = self.self_attn_layer_norm.forward(x.clone());
        let a = &self.self_attn;
        let q = a.q_proj.forward(h.clone());
        let k = a.k_proj.forward(h.clone());
        let v = a.v_proj.forward(h);
        let x = x + a.out_proj.forward(attention_per_head(q, k, v, a.n_heads));
        let h = self.final_layer_norm.forward(x.clone());
        x + self.ffn.forward(h)
    }
}

/// Full (unmasked) attention computed head by head with 2-D products, which the
/// generic backends run faster than one batched 4-D product.
fn attention_per_head<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    n_heads: usize,
) -> Tensor<B, 3> {
    let [b, t, d] = q.dims();
    let dh = d / n_heads;
    let scale = (dh as f64).powf(-0.5);
    let rows: Vec<Tensor<B, 3>> = (0..b)
        .map(|r| {
            let (q, k, v) = (
                q.clone().slice([r..r + 1, 0..t, 0..d]).reshape([t, d]),
                k.clone().slice([r..r + 1, 0..t, 0..d]).reshape([t, d]),
                v.clone().slice([r..r + 1, 0..t, 0..d]).reshape([t, d]),
            );
            let heads: Vec<Tensor<B, 2>> = (0..n_heads)
                .map(|h| {
                    let cols = h * dh..(h + 1) * dh;
                    let qh = q.clone().slice([0..t, cols.clone()]).mul_scalar(scale);
                    let kh = k.clone().slice([0..t, cols.clone()]).transpose();
                    softmax(qh.matmul(kh), 1).matmul(v.clone().slice([0..t, cols]))
                })
                .collect();
            Tensor::cat(heads, 1).unsqueeze::<3>()
        })
        .collect();
    Tensor::cat(rows, 0)
}

#[derive(Debug, Clone)]
pub struct Encoder<B: Backend> {
    pub conv1_weight: Tensor<B, 3>,
    pub conv1_bias: Tensor<B, 1>,
    pub conv2_weight: Tensor<B, 3>,
    pub conv2_bias: Tensor<B, 1>,
    pub embed_positions: Tensor<B, 2>,
    /// The backend's layers; empty on CPU backends, which run [`HostEncoder`] instead.
    pub layers: Vec<EncoderLayer<B>>,
    pub layer_norm: Option<LayerNorm<B>>,
    pub host: Option<Arc<HostEncoder>>,
}

impl<B: Backend> Encoder<B> {
    /// Loads the encoder; CPU backends get the host implementation.
    pub fn load(s: &mut TensorStore, c: &WhisperConfig, dev: &B::Device) -> Result<Self> {
        Self::load_with(s, c, dev, is_cpu_backend::<B>())
    }

    /// `on_host`: run the encoder as [`HostEncoder`] instead of the backend's ops.
    pub(crate) fn load_with(
        s: &mut TensorStore,
        c: &WhisperConfig,
        dev: &B::Device,
        on_host: bool,
    ) -> Result<Self> {
        let (d, m) = (c.d_model, c.num_mel_bins);
        let w1 = s.take("model.encoder.conv1.weight", &[d, m, 3])?;
        let b1 = s.take("model.encoder.conv1.bias", &[d])?;
        let w2 = s.take("model.encoder.conv2.weight", &[d, d, 3])?;
        let b2 = s.take("model.encoder.conv2.bias", &[d])?;
        let positions = s.take(
            "model.encoder.embed_positions.weight",
            &[c.max_source_positions, d],
        )?;
        let host = if on_host {
            Some(Arc::new(HostEncoder::load(
                s,
                c,
                [&w1, &b1, &w2, &b2],
                &positions,
            )?))
        } else {
            None
        };
        let (layers, layer_norm) = match host {
            Some(_) => (Vec::new(), None),
            None => (
                (0..c.encoder_layers)
                    .map(|i| EncoderLayer::load(s, &format!("model.encoder.layers.{i}"), c, dev))
                    .collect::<Result<_>>()?,
                Some(LayerNorm::load(s, "model.encoder.layer_norm", d, dev)?),
            ),
        };
        Ok(Self {
            conv1_weight: to_tensor(w1, dev),
            conv1_bias: to_tensor(b1, dev),
            conv2_weight: to_tensor(w2, dev),
            conv2_bias: to_tensor(b2, dev),
            embed_positions: to_tensor(positions, dev),
            layers,
            layer_norm,
            host,
        })
    }

    /// True when both encoders hold the same weights.
    pub fn same_weights(&self, other: &Self) -> bool {
        let eq = |a: &Tensor<B, 3>, b: &Tensor<B, 3>| {
            a.dims() == b.dims() && a.clone().equal(b.clone()).all().into_scalar().to_bool()
        };
        let eq2 = |a: &Tensor<B, 2>, b: &Tensor<B, 2>| {
            a.dims() == b.dims() && a.clone().equal(b.clone()).all().into_scalar().to_bool()
        };
        let layers_equal = match (&self.host, &other.host) {
            (Some(a), Some(b)) => a.same_weights(b),
            _ => {
                self.layers.len() == other.layers.len()
                    && self.layers.iter().zip(&other.layers).all(|(a, b)| {
                        eq2(&a.ffn.fc1.weight_t, &b.ffn.fc1.weight_t)
                            && eq2(&a.self_attn.q_proj.weight_t, &b.self_attn.q_proj.weight_t)
                    })
            }
        };
        eq(&self.conv1_weight, &other.conv1_weight)
            && eq(&self.conv2_weight, &other.conv2_weight)
            && layers_equal
    }

    /// `mel`: `[batch, n_mels, 3000]` -> `[batch, 1500, d_model]`.
    pub fn forward(&self, mel: Tensor<B, 3>) -> Tensor<B, 3> {
        if let Some(host) = &self.host {
            return host_forward(host, mel);
        }
        let x = gelu(conv1d(
            mel,
            self.conv1_weight.clone(),
            Some(self.conv1_bias.clone()),
            ConvOptions::new([1], [1], [1], 1),
        ));
        let x = gelu(conv1d(
            x,
            self.conv2_weight.clone(),
            Some(self.conv2_bias.clone()),
            ConvOptions::new([2], [1], [1], 1),
        ));
        let x = x.swap_dims(1, 2);
        let [_, t, _] = x.dims();
        let mut x = x + self.embed_positions.clone().slice([0..t]).unsqueeze::<3>();
        for layer in &self.layers {
            x = layer.forward(x);
        }
        match &self.layer_norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }
}

/// Runs [`HostEncoder`] on each window of the batch.
fn host_forward<B: Backend>(host: &HostEncoder, mel: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, m, frames] = mel.dims();
    let device = mel.device();
    let data = mel
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 mel");
    let out: Vec<f32> = data
        .chunks(m * frames)
        .flat_map(|w| host.forward(w))
        .collect();
    let t = out.len() / b / host.d_model();
    Tensor::from_data(TensorData::new(out, [b, t, host.d_model()]), &device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend as B;
    use crate::testing::{random_mel, TinySpec};

    fn store(spec: &TinySpec) -> TensorStore {
        let mut s = TensorStore::default();
        spec.hf_tensors()
            .into_iter()
            .for_each(|(name, t)| s.insert(name, t));
        s
    }

    #[test]
    fn host_encoder_matches_the_backend_ops() {
        let specs = [
            TinySpec::default(),
            TinySpec {
                seed: 3,
                d_model: 128,
                heads: 2,
                ffn: 256,
                ..TinySpec::default()
            },
        ];
        for spec in specs {
            let (c, dev) = (spec.config(), Default::default());
            let host = Encoder::<B>::load_with(&mut store(&spec), &c, &dev, true).unwrap();
            let generic = Encoder::<B>::load_with(&mut store(&spec), &c, &dev, false).unwrap();
            assert!(host.host.is_some() && generic.host.is_none());
            let mel: Vec<f32> = [random_mel(5, 80), random_mel(6, 80)].concat();
            let mel = Tensor::<B, 3>::from_data(TensorData::new(mel, [2, 80, 3000]), &dev);
            let a = host
                .forward(mel.clone())
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            let b = generic.forward(mel).into_data().to_vec::<f32>().unwrap();
            assert_eq!(a.len(), 2 * 1500 * spec.d_model);
            let max_diff = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(
                max_diff < 2e-4,
                "d_model {}: max |host - backend| = {max_diff}",
                spec.d_model
            );
            assert!(
                host.same_weights(&host)
                    && !host.same_weights(
                        &Encoder::<B>::load_with(
                            &mut store(&TinySpec { seed: 9, ..spec }),
                            &c,
                            &dev,
                            true
                        )
                        .unwrap()
                    )
            );
        }
    }
}
