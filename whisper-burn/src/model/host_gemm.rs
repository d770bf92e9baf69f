//! Matrix products with few rows (decoder steps, verification of a few drafted tokens)
//! on CPU backends. The backend's general GEMM costs about 4x one row for 5 rows; this
//! kernel reads each weight row once and reuses it for every input row, so k rows cost
//! close to one. Each output value is the same dot product whatever the number of rows,
//! so a sequence gets bit-identical logits alone, in a batch, or verifying drafts.
use rayon::prelude::*;

/// Largest number of rows sent to this kernel.
pub const MAX_ROWS: usize = 128;
const OUT_PER_TASK: usize = 32;

/// A weight matrix `[out, in]` kept on the host, with an optional bias.
#[derive(Debug, Clone)]
pub struct HostMatrix {
    pub d_in: usize,
    pub d_out: usize,
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

impl HostMatrix {
    /// `x` (`[m, d_in]`, row-major) -> `[m, d_out]`.
    pub fn forward(&self, x: &[f32], m: usize) -> Vec<f32> {
        let (k, n) = (self.d_in, self.d_out);
        let mut tmp = vec![0f32; n * m];
        tmp.par_chunks_mut(OUT_PER_TASK * m).enumerate().for_each(|(block, chunk)| {
            let first = block * OUT_PER_TASK;
            let rows = chunk.len() / m;
            dot_block(x, m, k, &self.weight[first * k..(first + rows) * k], chunk);
        });
        let mut out = vec![0f32; m * n];
        for j in 0..n {
            let b = self.bias.as_ref().map(|b| b[j]).unwrap_or(0.0);
            for i in 0..m {
                out[i * n + j] = tmp[j * m + i] + b;
            }
        }
        out
    }
}

/// `out[j * m + i] = dot(x_i, w_j)` for the weight rows in `w`.
fn dot_block(x: &[f32], m: usize, k: usize, w: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features this function is compiled for.
            unsafe { dot_block_avx2(x, m, k, w, out) };
            return;
        }
    }
    dot_block_generic(x, m, k, w, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_block_avx2(x: &[f32], m: usize, k: usize, w: &[f32], out: &mut [f32]) {
    for (j, row) in w.chunks_exact(k).enumerate() {
        let mut i = 0;
        while i + 4 <= m {
            let d = dot4_avx2(&x[i * k..(i + 4) * k], k, row);
            out[j * m + i..j * m + i + 4].copy_from_slice(&d);
            i += 4;
        }
        while i < m {
            out[j * m + i] = dot_avx2(&x[i * k..(i + 1) * k], row);
            i += 1;
        }
    }
}

/// Four dot products of consecutive `x` rows with one weight row, sharing its loads.
/// Same summation order as [`dot_avx2`], so results do not depend on the row count.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4_avx2(x: &[f32], k: usize, w: &[f32]) -> [f32; 4] {
    use std::arch::x86_64::*;
    let pw = w.as_ptr();
    let px = x.as_ptr();
    let mut acc = [[_mm256_setzero_ps(); 4]; 4];
    let mut i = 0;
    while i + 32 <= k {
        for l in 0..4 {
            let wv = _mm256_loadu_ps(pw.add(i + 8 * l));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                acc_r[l] = _mm256_fmadd_ps(_mm256_loadu_ps(px.add(r * k + i + 8 * l)), wv, acc_r[l]);
            }
        }
        i += 32;
    }
    if i < k {
        let mut out = [0f32; 4];
        for (r, o) in out.iter_mut().enumerate() {
            *o = dot_avx2(&x[r * k..(r + 1) * k], w);
        }
        return out;
    }
    let mut out = [0f32; 4];
    for (r, acc_r) in acc.iter().enumerate() {
        let sum = _mm256_add_ps(_mm256_add_ps(acc_r[0], acc_r[1]), _mm256_add_ps(acc_r[2], acc_r[3]));
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
        out[r] = lanes.iter().sum::<f32>();
    }
    out
}

/// AVX2/FMA dot product: four 8-lane accumulators, then the scalar tail.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (l, a_l) in acc.iter_mut().enumerate() {
            let o = i + 8 * l;
            *a_l = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(o)), _mm256_loadu_ps(pb.add(o)), *a_l);
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc[0]);
        i += 8;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
    let mut s = lanes.iter().sum::<f32>();
    while i < n {
        s = a[i].mul_add(b[i], s);
        i += 1;
    }
    s
}

#[inline(always)]
fn dot_block_generic(x: &[f32], m: usize, k: usize, w: &[f32], out: &mut [f32]) {
    for (j, row) in w.chunks_exact(k).enumerate() {
        for i in 0..m {
            out[j * m + i] = dot(&x[i * k..(i + 1) * k], row);
        }
    }
}

/// Dot product with 16 independent accumulators (vectorizes; fixed summation order).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ac, bc) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..16 {
            acc[l] = x[l].mul_add(y[l], acc[l]);
        }
    }
    let mut s = 0f32;
    for (x, y) in ar.iter().zip(br) {
        s = x.mul_add(*y, s);
    }
    let mut half = [0f32; 8];
    for l in 0..8 {
        half[l] = acc[l] + acc[l + 8];
    }
    half.iter().sum::<f32>() + s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_product_and_is_row_count_invariant() {
        let (k, n) = (70, 45);
        let w: Vec<f32> = (0..n * k).map(|i| ((i * 31 % 17) as f32 - 8.0) / 9.0).collect();
        let x: Vec<f32> = (0..5 * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
        let m = HostMatrix { d_in: k, d_out: n, weight: w.clone(), bias: Some((0..n).map(|j| j as f32).collect()) };
        let y5 = m.forward(&x, 5);
        for i in 0..5 {
            let y1 = m.forward(&x[i * k..(i + 1) * k], 1);
            assert_eq!(&y5[i * n..(i + 1) * n], &y1[..], "row {i} differs alone vs batched");
            for j in 0..n {
                let naive: f32 = (0..k).map(|c| x[i * k + c] * w[j * k + c]).sum::<f32>() + j as f32;
                assert!((naive - y1[j]).abs() < 1e-3, "{naive} vs {}", y1[j]);
            }
        }
    }
}
