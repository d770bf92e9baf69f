//! The audio encoder: two convolutions, sinusoidal positions, pre-norm transformer layers.
use super::layers::{
    merge_heads, split_heads, tensor_f32, to_tensor, AttentionProj, FeedForward, LayerNorm,
};
use crate::backend::{Kernels, WhisperBackend};
use crate::config::WhisperConfig;
use crate::cpu::encoder::HostEncoder;
use crate::weights::TensorStore;
use crate::Result;
use burn::prelude::*;
use burn::tensor::activation::gelu;
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct EncoderLayer<B: WhisperBackend> {
    pub self_attn_layer_norm: LayerNorm<B>,
    pub self_attn: AttentionProj<B>,
    pub final_layer_norm: LayerNorm<B>,
    pub ffn: FeedForward<B>,
}

impl<B: WhisperBackend> EncoderLayer<B> {
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
                dev,
            )?,
            final_layer_norm: LayerNorm::load(s, &format!("{p}.final_layer_norm"), c.d_model, dev)?,
            ffn: FeedForward::load(s, p, c.d_model, c.encoder_ffn_dim, dev)?,
        })
    }

    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = self.self_attn_layer_norm.forward(x.clone());
        let a = &self.self_attn;
        let q = split_heads(a.q_proj.forward(h.clone()), a.n_heads);
        let k = split_heads(a.k_proj.forward(h.clone()), a.n_heads);
        let v = split_heads(a.v_proj.forward(h), a.n_heads);
        let x = x + a.out_proj.forward(merge_heads(B::attend(q, k, v, None)));
        let h = self.final_layer_norm.forward(x.clone());
        x + self.ffn.forward(h)
    }
}

/// The encoder on burn's generic ops (all heads of a layer in one batched product).
#[derive(Debug, Clone)]
pub struct GenericEncoder<B: WhisperBackend> {
    pub conv1_weight: Tensor<B, 3>,
    pub conv1_bias: Tensor<B, 1>,
    pub conv2_weight: Tensor<B, 3>,
    pub conv2_bias: Tensor<B, 1>,
    pub embed_positions: Tensor<B, 2>,
    pub layers: Vec<EncoderLayer<B>>,
    pub layer_norm: LayerNorm<B>,
}

/// The encoder, in the implementation chosen at load ([`Kernels`]) with its weights.
#[derive(Debug, Clone)]
pub enum Encoder<B: WhisperBackend> {
    Host(Arc<HostEncoder>),
    Generic(GenericEncoder<B>),
}

impl<B: WhisperBackend> Encoder<B> {
    pub fn load(
        s: &mut TensorStore,
        c: &WhisperConfig,
        kernels: Kernels,
        dev: &B::Device,
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
        if kernels == Kernels::Host {
            let host = HostEncoder::load(s, c, [&w1, &b1, &w2, &b2], &positions)?;
            return Ok(Encoder::Host(Arc::new(host)));
        }
        Ok(Encoder::Generic(GenericEncoder {
            conv1_weight: to_tensor(w1, dev),
            conv1_bias: to_tensor(b1, dev),
            conv2_weight: to_tensor(w2, dev),
            conv2_bias: to_tensor(b2, dev),
            embed_positions: to_tensor(positions, dev),
            layers: (0..c.encoder_layers)
                .map(|i| EncoderLayer::load(s, &format!("model.encoder.layers.{i}"), c, dev))
                .collect::<Result<_>>()?,
            layer_norm: LayerNorm::load(s, "model.encoder.layer_norm", d, dev)?,
        }))
    }

    pub fn kernels(&self) -> Kernels {
        match self {
            Encoder::Host(_) => Kernels::Host,
            Encoder::Generic(_) => Kernels::Generic,
        }
    }

    /// True when both encoders hold the same weights in the same implementation.
    pub fn same_weights(&self, other: &Self) -> bool {
        match (self, other) {
            (Encoder::Host(a), Encoder::Host(b)) => a.same_weights(b),
            (Encoder::Generic(a), Encoder::Generic(b)) => a.same_weights(b),
            _ => false,
        }
    }

    /// `mel`: `[batch, n_mels, 3000]` -> `[batch, 1500, d_model]`.
    pub fn forward(&self, mel: Tensor<B, 3>) -> Tensor<B, 3> {
        match self {
            Encoder::Host(host) => host_forward(host, mel),
            Encoder::Generic(g) => g.forward(mel),
        }
    }
}

impl<B: WhisperBackend> GenericEncoder<B> {
    fn same_weights(&self, other: &Self) -> bool {
        fn eq<B: WhisperBackend, const D: usize>(a: &Tensor<B, D>, b: &Tensor<B, D>) -> bool {
            a.dims() == b.dims() && a.clone().equal(b.clone()).all().into_scalar().to_bool()
        }
        eq(&self.conv1_weight, &other.conv1_weight)
            && eq(&self.conv2_weight, &other.conv2_weight)
            && self.layers.len() == other.layers.len()
            && self.layers.iter().zip(&other.layers).all(|(a, b)| {
                eq(&a.ffn.fc1.weight_t, &b.ffn.fc1.weight_t)
                    && eq(&a.self_attn.q_proj.weight_t, &b.self_attn.q_proj.weight_t)
            })
    }

    fn forward(&self, mel: Tensor<B, 3>) -> Tensor<B, 3> {
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
        let mut x = x + self.embed_positions.clone().slice(0..t).unsqueeze::<3>();
        for layer in &self.layers {
            x = layer.forward(x);
        }
        self.layer_norm.forward(x)
    }
}

/// Runs [`HostEncoder`] on each window of the batch.
fn host_forward<B: WhisperBackend>(host: &HostEncoder, mel: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, m, frames] = mel.dims();
    let device = mel.device();
    let data = tensor_f32(mel).unwrap_or_default();
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
            let host = Encoder::<B>::load(&mut store(&spec), &c, Kernels::Host, &dev).unwrap();
            let generic =
                Encoder::<B>::load(&mut store(&spec), &c, Kernels::Generic, &dev).unwrap();
            assert_eq!(
                (host.kernels(), generic.kernels()),
                (Kernels::Host, Kernels::Generic)
            );
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
                        &Encoder::<B>::load(
                            &mut store(&TinySpec { seed: 9, ..spec }),
                            &c,
                            Kernels::Host,
                            &dev,
                        )
                        .unwrap()
                    )
            );
        }
    }
}
