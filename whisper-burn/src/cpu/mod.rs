//! The CPU implementation of the model's operations: hand-written kernels that the
//! CPU backends run instead of burn's generic ops (see [`crate::backend::Kernels`]).
//!
//! - [`features`]: what this CPU can run, detected once per process
//! - [`gemm`]: packed few-row products (f32 or exact-f16 weights), the same FMA order
//!   whatever the row count, so a row's result never depends on its batch
//! - [`math`]: `exp`, GELU, softmax and layer norm on host buffers
//! - [`encoder`], [`decoder`]: the encoder and the KV-cached decoder on host buffers
//! - [`quant`]: int8/int4 weights and activations for the self-draft
pub mod decoder;
pub mod encoder;
pub mod features;
pub mod gemm;
pub mod math;
pub mod quant;
