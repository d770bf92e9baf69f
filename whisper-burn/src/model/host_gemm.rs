//! Matrix products with few rows (decoder steps, verification of a few drafted tokens)
//! on CPU backends. The backend's general GEMM repacks the weights on every call, so 5
//! rows cost about 4x one row; here the weights are packed once at load into panels of
//! 32 outputs (`[k][32]` each) and a register-blocked kernel streams each panel once per
//! group of 4 rows, so k rows cost close to one. Each output is the same sequence of
//! fused multiply-adds whatever the number of rows, so a sequence gets bit-identical
//! logits alone, in a batch, or while verifying drafted tokens.
use rayon::prelude::*;

/// Largest number of rows sent to this kernel.
pub const MAX_ROWS: usize = 128;
const PANEL: usize = 32;
const PANELS_PER_TASK: usize = 4;
const ROW_BLOCK: usize = 4;

/// A weight matrix kept on the host in panels, with an optional bias.
#[derive(Debug, Clone)]
pub struct HostMatrix {
    pub d_in: usize,
    pub d_out: usize,
    /// `n_panels` blocks of `[d_in][PANEL]`, zero-padded past `d_out`.
    panels: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

impl HostMatrix {
    /// Packs a row-major `[d_out, d_in]` weight.
    pub fn new(weight: &[f32], d_out: usize, d_in: usize, bias: Option<Vec<f32>>) -> Self {
        let n_panels = d_out.div_ceil(PANEL);
        let mut panels = vec![0f32; n_panels * d_in * PANEL];
        for o in 0..d_out {
            let (p, lane) = (o / PANEL, o % PANEL);
            let base = p * d_in * PANEL;
            for c in 0..d_in {
                panels[base + c * PANEL + lane] = weight[o * d_in + c];
            }
        }
        Self { d_in, d_out, panels, bias }
    }

    /// `x` (`[m, d_in]`, row-major) -> `[m, d_out]`.
    pub fn forward(&self, x: &[f32], m: usize) -> Vec<f32> {
        let k = self.d_in;
        let n_panels = self.d_out.div_ceil(PANEL);
        let mut tmp = vec![0f32; n_panels * m * PANEL];
        let simd = simd_level();
        tmp.par_chunks_mut(PANELS_PER_TASK * m * PANEL).enumerate().for_each(|(task, chunk)| {
            for (i, out) in chunk.chunks_mut(m * PANEL).enumerate() {
                let p = task * PANELS_PER_TASK + i;
                let panel = &self.panels[p * k * PANEL..(p + 1) * k * PANEL];
                panel_product(x, m, k, panel, out, simd);
            }
        });
        let n = self.d_out;
        let mut out = vec![0f32; m * n];
        for p in 0..n_panels {
            let width = PANEL.min(n - p * PANEL);
            for r in 0..m {
                let src = &tmp[(p * m + r) * PANEL..(p * m + r) * PANEL + width];
                out[r * n + p * PANEL..r * n + p * PANEL + width].copy_from_slice(src);
            }
        }
        if let Some(b) = &self.bias {
            out.chunks_mut(n).for_each(|row| row.iter_mut().zip(b).for_each(|(o, b)| *o += b));
        }
        out
    }
}

/// Which kernel the CPU can run: 0 portable, 1 AVX2/FMA, 2 AVX-512.
fn simd_level() -> u8 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return 2;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return 1;
        }
    }
    0
}

/// `out[r][0..32] = x_r . panel` for every row `r`, in groups of 8 (AVX-512) or 4 rows.
/// Every kernel does the same fused multiply-adds in the same order per output.
fn panel_product(x: &[f32], m: usize, k: usize, panel: &[f32], out: &mut [f32], simd: u8) {
    let mut r = 0;
    while r < m {
        #[cfg(target_arch = "x86_64")]
        if simd >= 2 {
            let rows = 8.min(m - r);
            let xs = &x[r * k..(r + rows) * k];
            let o = &mut out[r * PANEL..(r + rows) * PANEL];
            // SAFETY: `simd >= 2` only when AVX-512F is available.
            unsafe {
                match rows {
                    8 => kernel_avx512::<8>(xs, k, panel, o),
                    7 => kernel_avx512::<7>(xs, k, panel, o),
                    6 => kernel_avx512::<6>(xs, k, panel, o),
                    5 => kernel_avx512::<5>(xs, k, panel, o),
                    4 => kernel_avx512::<4>(xs, k, panel, o),
                    3 => kernel_avx512::<3>(xs, k, panel, o),
                    2 => kernel_avx512::<2>(xs, k, panel, o),
                    _ => kernel_avx512::<1>(xs, k, panel, o),
                }
            }
            r += rows;
            continue;
        }
        let rows = ROW_BLOCK.min(m - r);
        let xs = &x[r * k..(r + rows) * k];
        let o = &mut out[r * PANEL..(r + rows) * PANEL];
        #[cfg(target_arch = "x86_64")]
        if simd == 1 {
            // SAFETY: `simd` is only true when AVX2 and FMA are available.
            unsafe {
                match rows {
                    4 => kernel_avx2::<4>(xs, k, panel, o),
                    3 => kernel_avx2::<3>(xs, k, panel, o),
                    2 => kernel_avx2::<2>(xs, k, panel, o),
                    _ => kernel_avx2::<1>(xs, k, panel, o),
                }
            }
            r += rows;
            continue;
        }
        kernel_portable(xs, rows, k, panel, o);
        r += rows;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512<const M: usize>(x: &[f32], k: usize, panel: &[f32], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; M];
    let pw = panel.as_ptr();
    let px = x.as_ptr();
    for c in 0..k {
        let w = [_mm512_loadu_ps(pw.add(c * PANEL)), _mm512_loadu_ps(pw.add(c * PANEL + 16))];
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let xb = _mm512_set1_ps(*px.add(r * k + c));
            acc_r[0] = _mm512_fmadd_ps(xb, w[0], acc_r[0]);
            acc_r[1] = _mm512_fmadd_ps(xb, w[1], acc_r[1]);
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        _mm512_storeu_ps(out.as_mut_ptr().add(r * PANEL), acc_r[0]);
        _mm512_storeu_ps(out.as_mut_ptr().add(r * PANEL + 16), acc_r[1]);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2<const M: usize>(x: &[f32], k: usize, panel: &[f32], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 4]; M];
    let pw = panel.as_ptr();
    let px = x.as_ptr();
    for c in 0..k {
        let w = [
            _mm256_loadu_ps(pw.add(c * PANEL)),
            _mm256_loadu_ps(pw.add(c * PANEL + 8)),
            _mm256_loadu_ps(pw.add(c * PANEL + 16)),
            _mm256_loadu_ps(pw.add(c * PANEL + 24)),
        ];
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let xb = _mm256_set1_ps(*px.add(r * k + c));
            for l in 0..4 {
                acc_r[l] = _mm256_fmadd_ps(xb, w[l], acc_r[l]);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (l, a) in acc_r.iter().enumerate() {
            _mm256_storeu_ps(out.as_mut_ptr().add(r * PANEL + 8 * l), *a);
        }
    }
}

/// Same arithmetic as the AVX2 kernel (one fused multiply-add per input, in order).
fn kernel_portable(x: &[f32], rows: usize, k: usize, panel: &[f32], out: &mut [f32]) {
    for r in 0..rows {
        let mut acc = [0f32; PANEL];
        for c in 0..k {
            let xv = x[r * k + c];
            for (a, w) in acc.iter_mut().zip(&panel[c * PANEL..(c + 1) * PANEL]) {
                *a = xv.mul_add(*w, *a);
            }
        }
        out[r * PANEL..(r + 1) * PANEL].copy_from_slice(&acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_product_and_is_row_count_invariant() {
        let (k, n) = (70, 45);
        let w: Vec<f32> = (0..n * k).map(|i| ((i * 31 % 17) as f32 - 8.0) / 9.0).collect();
        let x: Vec<f32> = (0..7 * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
        let m = HostMatrix::new(&w, n, k, Some((0..n).map(|j| j as f32).collect()));
        let y7 = m.forward(&x, 7);
        for i in 0..7 {
            let y1 = m.forward(&x[i * k..(i + 1) * k], 1);
            assert_eq!(&y7[i * n..(i + 1) * n], &y1[..], "row {i} differs alone vs batched");
            for j in 0..n {
                let naive: f32 = (0..k).map(|c| x[i * k + c] * w[j * k + c]).sum::<f32>() + j as f32;
                assert!((naive - y1[j]).abs() < 1e-3, "{naive} vs {}", y1[j]);
            }
        }
    }

    #[test]
    fn portable_and_simd_kernels_agree_bitwise() {
        // 3 rows: one AVX-512 block of 3, or AVX2 block of 3; both must equal the portable one.
        let (k, n) = (64, 40);
        let w: Vec<f32> = (0..n * k).map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0).collect();
        let x: Vec<f32> = (0..3 * k).map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0).collect();
        let m = HostMatrix::new(&w, n, k, None);
        let panel = &m.panels[..k * PANEL];
        let (mut a, mut b) = (vec![0f32; 3 * PANEL], vec![0f32; 3 * PANEL]);
        panel_product(&x, 3, k, panel, &mut a, simd_level());
        panel_product(&x, 3, k, panel, &mut b, 0);
        assert_eq!(a, b);
        if simd_level() >= 1 {
            panel_product(&x, 3, k, panel, &mut b, 1);
            assert_eq!(a, b, "AVX2 and AVX-512 kernels differ");
        }
    }
}
