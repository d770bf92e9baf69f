//! The backend seam: which implementation of the model's operations runs on each burn
//! backend, the backend types chosen by cargo features, and [`dispatch`] of generic code
//! to a backend named at run time (`--device cpu|wgpu[:N]|cuda[:N]`).
//!
//! The model is written once over [`WhisperBackend`], burn's backend-extension idea: a
//! trait over `Backend` whose default methods are the generic burn implementation of the
//! operations the model needs. The CPU backends say they run the host kernels
//! ([`crate::cpu`]); GPU backends run the generic ops (and are where CubeCL kernels would
//! override a default). A model may also be loaded with [`Kernels::Generic`] on a CPU
//! backend, which is how the tests run every invariant on both implementations.
use crate::{Result, WhisperError};
use burn::prelude::*;
use burn::tensor::activation::softmax;

/// Which implementation of the encoder and decoder a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernels {
    /// The hand-written CPU kernels on host buffers ([`crate::cpu`]).
    Host,
    /// burn's tensor ops on the backend's device (through [`WhisperBackend`]'s methods).
    Generic,
}

impl Kernels {
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Host => "host",
            Kernels::Generic => "generic",
        }
    }
}

impl std::str::FromStr for Kernels {
    type Err = WhisperError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "host" => Ok(Kernels::Host),
            "generic" => Ok(Kernels::Generic),
            _ => Err(WhisperError::Device(format!(
                "unknown kernels `{s}`: expected host or generic"
            ))),
        }
    }
}

/// The operations the model needs from a backend. Every method has the generic burn
/// implementation as its default; a backend overrides one where a measured kernel of
/// its own is faster.
pub trait WhisperBackend: Backend {
    /// The kernels a model on this backend runs unless its loader says otherwise.
    fn default_kernels() -> Kernels {
        Kernels::Generic
    }

    /// Whether [`Kernels::Host`] can run here (host buffers are this backend's memory).
    fn supports_host_kernels() -> bool {
        false
    }

    /// `x W + b`: `x` `[rows, in]`, `weight_t` `[in, out]`, `bias` `[out]`.
    fn dense(
        x: Tensor<Self, 2>,
        weight_t: Tensor<Self, 2>,
        bias: Option<Tensor<Self, 1>>,
    ) -> Tensor<Self, 2> {
        let y = x.matmul(weight_t);
        match bias {
            Some(b) => y + b.unsqueeze::<2>(),
            None => y,
        }
    }

    /// Layer normalisation over the last dimension (eps 1e-5, as Whisper).
    fn norm(x: Tensor<Self, 3>, gamma: Tensor<Self, 1>, beta: Tensor<Self, 1>) -> Tensor<Self, 3> {
        let (var, mean) = x.clone().var_mean_bias(2);
        let x = (x - mean) / (var + 1e-5).sqrt();
        x * gamma.unsqueeze::<3>() + beta.unsqueeze::<3>()
    }

    /// Scaled dot-product attention over `[b, h, t, dh]` queries, keys and values, all
    /// heads in one batched product; `mask` (true = hidden) is `[b, 1, t_q, t_k]`.
    fn attend(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        mask: Option<Tensor<Self, 4, Bool>>,
    ) -> Tensor<Self, 4> {
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
}

#[cfg(feature = "flex")]
impl WhisperBackend for burn::backend::Flex {
    fn default_kernels() -> Kernels {
        Kernels::Host
    }
    fn supports_host_kernels() -> bool {
        true
    }
}

#[cfg(feature = "ndarray")]
impl WhisperBackend for burn::backend::NdArray {
    fn default_kernels() -> Kernels {
        Kernels::Host
    }
    fn supports_host_kernels() -> bool {
        true
    }
}

#[cfg(feature = "wgpu")]
impl WhisperBackend for burn::backend::Wgpu {}

#[cfg(feature = "cuda")]
impl WhisperBackend for burn::backend::Cuda {}

#[cfg(feature = "flex")]
pub type CpuBackend = burn::backend::Flex;
#[cfg(all(not(feature = "flex"), feature = "ndarray"))]
pub type CpuBackend = burn::backend::NdArray;
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda;
#[cfg(feature = "wgpu")]
pub type WgpuBackend = burn::backend::Wgpu;

/// The devices this build can run on.
pub fn available_devices() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(any(feature = "flex", feature = "ndarray")) {
        v.push("cpu");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

/// A backend named at run time (`--device cpu|wgpu|cuda`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    #[default]
    Cpu,
    Wgpu,
    Cuda,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 3] = [DeviceKind::Cpu, DeviceKind::Wgpu, DeviceKind::Cuda];

    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Wgpu => "wgpu",
            DeviceKind::Cuda => "cuda",
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DeviceKind {
    type Err = WhisperError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                WhisperError::Device(format!("unknown device `{s}`: expected cpu, wgpu or cuda"))
            })
    }
}

/// A device named at run time: `cpu`, `wgpu` (the default adapter), `wgpu:N` (the N-th
/// discrete GPU), `wgpu:cpu` (a software adapter such as lavapipe), `cuda` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DeviceSpec {
    pub kind: DeviceKind,
    /// The device's index (`None`: the default one).
    pub index: Option<usize>,
    /// `wgpu:cpu`: the software adapter.
    pub software: bool,
}

impl From<DeviceKind> for DeviceSpec {
    fn from(kind: DeviceKind) -> Self {
        Self {
            kind,
            index: None,
            software: false,
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.index, self.software) {
            (_, true) => write!(f, "{}:cpu", self.kind),
            (Some(i), _) => write!(f, "{}:{i}", self.kind),
            (None, _) => write!(f, "{}", self.kind),
        }
    }
}

impl std::str::FromStr for DeviceSpec {
    type Err = WhisperError;
    fn from_str(s: &str) -> Result<Self> {
        let (kind, rest) = match s.trim().split_once(':') {
            Some((k, r)) => (k.parse::<DeviceKind>()?, Some(r.trim())),
            None => (s.parse::<DeviceKind>()?, None),
        };
        let mut spec = DeviceSpec::from(kind);
        match rest {
            None => {}
            Some("cpu") if kind == DeviceKind::Wgpu => spec.software = true,
            Some(r) if kind != DeviceKind::Cpu => {
                spec.index = Some(r.parse().map_err(|_| {
                    WhisperError::Device(format!(
                        "bad device index in `{s}`: expected {kind}:N with N a number"
                    ))
                })?)
            }
            Some(_) => {
                return Err(WhisperError::Device(format!(
                    "`{s}`: the cpu device takes no index"
                )))
            }
        }
        Ok(spec)
    }
}

impl serde::Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Something generic over the backend, run on one chosen at run time.
pub trait BackendTask {
    type Output;
    fn run<B: WhisperBackend>(self, device: B::Device, kind: DeviceKind) -> Self::Output;
}

/// Runs `task` on the device named by `spec`, or says which cargo feature would add it.
pub fn dispatch<T: BackendTask>(spec: impl Into<DeviceSpec>, task: T) -> Result<T::Output> {
    let spec = spec.into();
    let _ = &task;
    match spec.kind {
        DeviceKind::Cpu => {
            #[cfg(any(feature = "flex", feature = "ndarray"))]
            return Ok(task.run::<CpuBackend>(Default::default(), spec.kind));
            #[allow(unreachable_code)]
            Err(WhisperError::Device(
                "this build has no CPU backend (enable the `flex` feature)".into(),
            ))
        }
        DeviceKind::Wgpu => {
            #[cfg(feature = "wgpu")]
            {
                use burn::backend::wgpu::WgpuDevice;
                let device = match (spec.software, spec.index) {
                    (true, _) => WgpuDevice::Cpu,
                    (false, Some(i)) => WgpuDevice::DiscreteGpu(i),
                    (false, None) => WgpuDevice::DefaultDevice,
                };
                return Ok(task.run::<WgpuBackend>(device, spec.kind));
            }
            #[allow(unreachable_code)]
            Err(WhisperError::Device(
                "this build has no wgpu backend: rebuild with `--features wgpu`".into(),
            ))
        }
        DeviceKind::Cuda => {
            #[cfg(feature = "cuda")]
            {
                let device = burn::backend::cuda::CudaDevice::new(spec.index.unwrap_or(0));
                return Ok(task.run::<CudaBackend>(device, spec.kind));
            }
            #[allow(unreachable_code)]
            Err(WhisperError::Device(
                "this build has no CUDA backend: rebuild with `--features cuda`".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_specs_parse_indices() {
        let cuda1: DeviceSpec = "cuda:1".parse().unwrap();
        assert_eq!((cuda1.kind, cuda1.index), (DeviceKind::Cuda, Some(1)));
        assert_eq!(cuda1.to_string(), "cuda:1");
        let soft: DeviceSpec = "wgpu:cpu".parse().unwrap();
        assert!(soft.software && soft.kind == DeviceKind::Wgpu);
        assert_eq!(
            "wgpu".parse::<DeviceSpec>().unwrap(),
            DeviceKind::Wgpu.into()
        );
        for bad in ["cpu:0", "cuda:x", "cuda:cpu", "tpu:0"] {
            assert!(bad.parse::<DeviceSpec>().is_err(), "{bad}");
        }
        assert_eq!("host".parse::<Kernels>().unwrap(), Kernels::Host);
        assert!("gpu".parse::<Kernels>().is_err());
    }

    #[test]
    fn device_names_round_trip_and_unknown_ones_are_refused() {
        for k in DeviceKind::ALL {
            assert_eq!(k.name().parse::<DeviceKind>().unwrap(), k);
        }
        assert_eq!(" CUDA ".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda);
        let err = "tpu".parse::<DeviceKind>().unwrap_err().to_string();
        assert!(
            err.contains("tpu") && err.contains("cpu, wgpu or cuda"),
            "{err}"
        );
    }
}
