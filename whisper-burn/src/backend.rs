//! Backend types chosen by cargo features; binaries pick one at run time with `--device`
//! and [`dispatch`] generic code to it.
use crate::{Result, WhisperError};
use burn::prelude::Backend;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
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

/// Something generic over the backend, run on one chosen at run time.
pub trait BackendTask {
    type Output;
    fn run<B: Backend>(self, device: B::Device, kind: DeviceKind) -> Self::Output;
}

/// Runs `task` on the backend named by `kind`, or says which cargo feature would add it.
pub fn dispatch<T: BackendTask>(kind: DeviceKind, task: T) -> Result<T::Output> {
    let _ = &task;
    match kind {
        DeviceKind::Cpu => {
            #[cfg(any(feature = "flex", feature = "ndarray"))]
            return Ok(task.run::<CpuBackend>(Default::default(), kind));
            #[allow(unreachable_code)]
            Err(WhisperError::Device(
                "this build has no CPU backend (enable the `flex` feature)".into(),
            ))
        }
        DeviceKind::Wgpu => {
            #[cfg(feature = "wgpu")]
            return Ok(task.run::<WgpuBackend>(Default::default(), kind));
            #[allow(unreachable_code)]
            Err(WhisperError::Device(
                "this build has no wgpu backend: rebuild with `--features wgpu`".into(),
            ))
        }
        DeviceKind::Cuda => {
            #[cfg(feature = "cuda")]
            return Ok(task.run::<CudaBackend>(Default::default(), kind));
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
