//! Run-time backend choice: `--device cpu|wgpu|cuda` dispatches to a generic function.
use anyhow::{bail, Result};
use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    Cpu,
    Wgpu,
    Cuda,
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Wgpu => "wgpu",
            DeviceKind::Cuda => "cuda",
        })
    }
}

/// Something to run on a backend chosen at run time.
pub trait BackendTask {
    type Output;
    fn run<B: burn::prelude::Backend>(self, device: B::Device) -> Result<Self::Output>;
}

/// Runs `task` on the backend named by `kind`, if this build has it.
pub fn dispatch<T: BackendTask>(kind: DeviceKind, task: T) -> Result<T::Output> {
    let _ = &task;
    match kind {
        DeviceKind::Cpu => {
            #[cfg(any(feature = "flex", feature = "ndarray"))]
            return task.run::<whisper_burn::backend::CpuBackend>(Default::default());
            #[allow(unreachable_code)]
            {
                bail!("this build has no CPU backend (enable the `flex` feature)")
            }
        }
        DeviceKind::Wgpu => {
            #[cfg(feature = "wgpu")]
            return task.run::<whisper_burn::backend::WgpuBackend>(Default::default());
            #[allow(unreachable_code)]
            {
                bail!("this build has no wgpu backend: rebuild with `--features wgpu`")
            }
        }
        DeviceKind::Cuda => {
            #[cfg(feature = "cuda")]
            return task.run::<whisper_burn::backend::CudaBackend>(Default::default());
            #[allow(unreachable_code)]
            {
                bail!("this build has no CUDA backend: rebuild with `--features cuda`")
            }
        }
    }
}
