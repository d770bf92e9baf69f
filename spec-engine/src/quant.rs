//! 8-bit and 4-bit weight matrices with the matrix-vector kernels the self-draft needs.
//! Symmetric quantization: 8-bit with one scale per row, 4-bit with one scale per
//! group of 32 inputs. The kernels read the quantized bytes directly (no dequantized copy).
use rayon::prelude::*;

pub const Q4_GROUP: usize = 32;
const ROWS_PER_TASK: usize = 64;

/// A quantized `[rows, cols]` matrix (`y = W x`).
#[derive(Debug, Clone)]
pub enum QuantMatrix {
    Q8 { rows: usize, cols: usize, data: Vec<i8>, scales: Vec<f32> },
    Q4 { rows: usize, cols: usize, data: Vec<u8>, scales: Vec<f32> },
}

impl QuantMatrix {
    /// Quantizes row-major `w` (`[rows, cols]`) to `bits` (8 or 4; 4 needs cols % 32 == 0).
    pub fn quantize(w: &[f32], rows: usize, cols: usize, bits: u8) -> Self {
        if bits == 4 && cols % Q4_GROUP == 0 {
            Self::quantize_q4(w, rows, cols)
        } else {
            Self::quantize_q8(w, rows, cols)
        }
    }

    fn quantize_q8(w: &[f32], rows: usize, cols: usize) -> Self {
        let mut data = vec![0i8; rows * cols];
        let mut scales = vec![0f32; rows];
        for r in 0..rows {
            let row = &w[r * cols..(r + 1) * cols];
            let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
            scales[r] = scale;
            for (q, v) in data[r * cols..(r + 1) * cols].iter_mut().zip(row) {
                *q = (v / scale).round().clamp(-127.0, 127.0) as i8;
            }
        }
        QuantMatrix::Q8 { rows, cols, data, scales }
    }

    fn quantize_q4(w: &[f32], rows: usize, cols: usize) -> Self {
        let groups = cols / Q4_GROUP;
        let mut data = vec![0u8; rows * cols / 2];
        let mut scales = vec![0f32; rows * groups];
        for r in 0..rows {
            for g in 0..groups {
                let start = r * cols + g * Q4_GROUP;
                let vals = &w[start..start + Q4_GROUP];
                let amax = vals.iter().fold(0f32, |m, v| m.max(v.abs()));
                let scale = if amax > 0.0 { amax / 7.0 } else { 1.0 };
                scales[r * groups + g] = scale;
                for j in 0..Q4_GROUP / 2 {
                    let lo = ((vals[2 * j] / scale).round().clamp(-8.0, 7.0) as i32 + 8) as u8;
                    let hi = ((vals[2 * j + 1] / scale).round().clamp(-8.0, 7.0) as i32 + 8) as u8;
                    data[start / 2 + j] = lo | (hi << 4);
                }
            }
        }
        QuantMatrix::Q4 { rows, cols, data, scales }
    }

    pub fn rows(&self) -> usize {
        match self {
            QuantMatrix::Q8 { rows, .. } | QuantMatrix::Q4 { rows, .. } => *rows,
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            QuantMatrix::Q8 { cols, .. } | QuantMatrix::Q4 { cols, .. } => *cols,
        }
    }

    /// Bytes read by one matrix-vector product.
    pub fn size_bytes(&self) -> usize {
        match self {
            QuantMatrix::Q8 { data, scales, .. } => data.len() + 4 * scales.len(),
            QuantMatrix::Q4 { data, scales, .. } => data.len() + 4 * scales.len(),
        }
    }

    /// `out = W x`, parallel over blocks of rows.
    pub fn matvec(&self, x: &[f32], out: &mut [f32]) {
        out.par_chunks_mut(ROWS_PER_TASK).enumerate().for_each(|(block, chunk)| {
            for (i, o) in chunk.iter_mut().enumerate() {
                *o = self.row_dot(block * ROWS_PER_TASK + i, x);
            }
        });
    }

    /// Dot product of row `r` with `x`.
    #[inline]
    pub fn row_dot(&self, r: usize, x: &[f32]) -> f32 {
        match self {
            QuantMatrix::Q8 { cols, data, scales, .. } => scales[r] * dot_i8(&data[r * cols..(r + 1) * cols], x),
            QuantMatrix::Q4 { cols, data, scales, .. } => {
                let groups = cols / Q4_GROUP;
                let bytes = &data[r * cols / 2..(r + 1) * cols / 2];
                (0..groups)
                    .map(|g| scales[r * groups + g] * dot_q4(&bytes[g * Q4_GROUP / 2..(g + 1) * Q4_GROUP / 2], &x[g * Q4_GROUP..(g + 1) * Q4_GROUP]))
                    .sum()
            }
        }
    }

    /// Row `r` dequantized into `out` (embedding lookup).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) {
        match self {
            QuantMatrix::Q8 { cols, data, scales, .. } => {
                for (o, q) in out.iter_mut().zip(&data[r * cols..(r + 1) * cols]) {
                    *o = *q as f32 * scales[r];
                }
            }
            QuantMatrix::Q4 { cols, data, scales, .. } => {
                let groups = cols / Q4_GROUP;
                for c in 0..*cols {
                    let b = data[(r * cols + c) / 2];
                    let q = if c % 2 == 0 { b & 15 } else { b >> 4 } as i32 - 8;
                    out[c] = q as f32 * scales[r * groups + c / Q4_GROUP];
                }
            }
        }
    }
}

#[inline]
fn dot_i8(q: &[i8], x: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = q.len() / 16;
    for c in 0..chunks {
        let (qs, xs) = (&q[c * 16..c * 16 + 16], &x[c * 16..c * 16 + 16]);
        for j in 0..16 {
            acc[j] += qs[j] as f32 * xs[j];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for j in chunks * 16..q.len() {
        sum += q[j] as f32 * x[j];
    }
    sum
}

#[inline]
fn dot_q4(bytes: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    for (j, b) in bytes.iter().enumerate() {
        let lo = (b & 15) as i32 - 8;
        let hi = (b >> 4) as i32 - 8;
        acc[(2 * j) % 16] += lo as f32 * x[2 * j];
        acc[(2 * j + 1) % 16] += hi as f32 * x[2 * j + 1];
    }
    acc.iter().sum()
}

/// Int8 keys or values of one attention head: `[positions, head_dim]` with a scale per position.
#[derive(Debug, Clone, Default)]
pub struct QuantRows {
    pub dim: usize,
    pub data: Vec<i8>,
    pub scales: Vec<f32>,
}

impl QuantRows {
    pub fn quantize(values: &[f32], dim: usize) -> Self {
        let n = values.len() / dim;
        let m = QuantMatrix::quantize_q8(values, n, dim);
        match m {
            QuantMatrix::Q8 { data, scales, .. } => QuantRows { dim, data, scales },
            QuantMatrix::Q4 { .. } => unreachable!("quantize_q8 returns Q8"),
        }
    }

    pub fn len(&self) -> usize {
        self.scales.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    #[inline]
    pub fn dot(&self, row: usize, x: &[f32]) -> f32 {
        self.scales[row] * dot_i8(&self.data[row * self.dim..(row + 1) * self.dim], x)
    }

    /// `out += w * row`.
    #[inline]
    pub fn axpy(&self, row: usize, w: f32, out: &mut [f32]) {
        let s = w * self.scales[row];
        for (o, q) in out.iter_mut().zip(&self.data[row * self.dim..(row + 1) * self.dim]) {
            *o += s * *q as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1).collect()
    }

    fn exact(w: &[f32], x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..rows).map(|r| (0..cols).map(|c| w[r * cols + c] * x[c]).sum()).collect()
    }

    #[test]
    fn q8_and_q4_matvec_track_f32() {
        let (rows, cols) = (130, 96);
        let w = matrix(rows, cols);
        let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
        let want = exact(&w, &x, rows, cols);
        for (bits, tol) in [(8u8, 0.01f32), (4, 0.08)] {
            let q = QuantMatrix::quantize(&w, rows, cols, bits);
            let mut got = vec![0.0; rows];
            q.matvec(&x, &mut got);
            let max_err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            let max_val = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(max_err < tol * max_val, "bits {bits}: err {max_err} vs {max_val}");
        }
    }

    #[test]
    fn q4_is_smaller_than_q8() {
        let w = matrix(64, 64);
        assert!(QuantMatrix::quantize(&w, 64, 64, 4).size_bytes() < QuantMatrix::quantize(&w, 64, 64, 8).size_bytes() * 2 / 3);
    }

    #[test]
    fn row_f32_dequantizes() {
        let w = matrix(4, 64);
        for bits in [8u8, 4] {
            let q = QuantMatrix::quantize(&w, 4, 64, bits);
            let mut row = vec![0.0; 64];
            q.row_f32(2, &mut row);
            let err = row.iter().zip(&w[128..192]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(err < 0.02, "bits {bits}: {err}");
        }
    }
}
