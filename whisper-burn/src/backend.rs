//! Backend types chosen by cargo features; binaries pick one at run time with `--device`.
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
