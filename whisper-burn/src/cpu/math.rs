//! Element-wise math on host buffers for the CPU encoder: `exp`, GELU and layer norm,
//! written branch-free so the compiler vectorizes them.
use rayon::prelude::*;

/// The widest vector instructions this CPU runs. Without FMA in hardware `mul_add` is a
/// call to a software `fmaf` (the same correctly rounded result, 20-50x slower), so
/// every loop that uses it needs an FMA build: results are bit-identical across levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimdLevel {
    Portable,
    Avx2,
    Avx512,
}

/// Detected once per process (from [`super::features`]).
pub fn simd_level() -> SimdLevel {
    let f = super::features::features();
    if f.avx512f && f.avx512dq && f.fma {
        SimdLevel::Avx512
    } else if f.avx2_fma() {
        SimdLevel::Avx2
    } else {
        SimdLevel::Portable
    }
}

/// `e^x` to about one ulp: `x = n ln2 + r` (ln2 split in two for an exact reduction),
/// `e^r` by a degree-7 polynomial on `|r| <= ln2 / 2`. Flushes to 0 below about -87.3.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.3);
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_2e-4f32;
    let p = p.mul_add(r, 1.398_2e-3);
    let p = p.mul_add(r, 8.333_452e-3);
    let p = p.mul_add(r, 4.166_579_6e-2);
    let p = p.mul_add(r, 1.666_666_5e-1);
    // Cephes' 5.0000001201e-1, which rounds to exactly 0.5 in f32.
    let p = p.mul_add(r, 0.5);
    let e_r = (p * r).mul_add(r, r) + 1.0;
    e_r * pow2(n)
}

/// `2^n` for integral `n` in -126..=127: `n + 127` lands in the low mantissa bits of
/// `2^23 + n + 127`, and the shift moves it into the exponent field. The same value as
/// `from_bits((n as i32 + 127) << 23)`, without the float-to-int conversion, which has
/// no vector form (it made every `exp` loop scalar).
#[inline(always)]
fn pow2(n: f32) -> f32 {
    f32::from_bits((n + (8_388_608.0 + 127.0)).to_bits() << 23)
}

/// `erfc(z)` with relative error below 1.2e-7 everywhere (Chebyshev fit, Numerical
/// Recipes' `erfcc`).
#[inline(always)]
fn erfc(z: f32) -> f32 {
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    let mut p = 0.170_872_77f32;
    for c in [
        -0.822_152_23,
        1.488_515_9,
        -1.135_204, // Numerical Recipes' -1.135_203_98, the same f32
        0.278_868_07,
        -0.186_288_06,
        0.096_784_18,
        0.374_091_96,
        1.000_023_7,
        -1.265_512_2,
    ] {
        p = p.mul_add(t, c);
    }
    let tail = t * exp(-a * a + p);
    if z >= 0.0 {
        tail
    } else {
        2.0 - tail
    }
}

/// Exact (erf) GELU, `x * Phi(x) = x/2 * erfc(-x / sqrt 2)`, accurate in relative terms
/// on both tails.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * erfc(-x * std::f32::consts::FRAC_1_SQRT_2)
}

/// GELU of every value, in place, on all threads.
pub fn gelu_in_place(data: &mut [f32]) {
    data.par_chunks_mut(16 * 1024).for_each(gelu_chunk);
}

/// GELU of every value, in place, on the calling thread (for small slices, where handing
/// work to other threads costs more than it saves).
pub fn gelu_chunk(c: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match simd_level() {
        // SAFETY: the CPU has the kernel's features.
        SimdLevel::Avx512 => return unsafe { gelu_chunk_avx512(c) },
        SimdLevel::Avx2 => return unsafe { gelu_chunk_avx2(c) },
        SimdLevel::Portable => {}
    }
    c.iter_mut().for_each(|v| *v = gelu(*v));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_chunk_avx2(c: &mut [f32]) {
    c.iter_mut().for_each(|v| *v = gelu(*v));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,fma")]
unsafe fn gelu_chunk_avx512(c: &mut [f32]) {
    c.iter_mut().for_each(|v| *v = gelu(*v));
}

/// Softmax of one row, in place.
pub fn softmax_row(row: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match simd_level() {
        // SAFETY: the CPU has the kernel's features.
        SimdLevel::Avx512 => return unsafe { softmax_row_avx512(row) },
        SimdLevel::Avx2 => return unsafe { softmax_row_avx2(row) },
        SimdLevel::Portable => {}
    }
    softmax_row_generic(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_row_avx2(row: &mut [f32]) {
    softmax_row_generic(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,fma")]
unsafe fn softmax_row_avx512(row: &mut [f32]) {
    softmax_row_generic(row)
}

/// The largest value, kept in 16 lanes so the loop vectorizes (the max is exact in any
/// order).
#[inline(always)]
fn max_value(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let chunks = values.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..16 {
            lanes[l] = if c[l] > lanes[l] { c[l] } else { lanes[l] };
        }
    }
    lanes
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, v| if *v > m { *v } else { m })
}

#[inline(always)]
fn softmax_row_generic(row: &mut [f32]) {
    let max = max_value(row);
    let mut sums = [0f32; 16];
    let mut chunks = row.chunks_exact_mut(16);
    for c in &mut chunks {
        for l in 0..16 {
            c[l] = exp(c[l] - max);
            sums[l] += c[l];
        }
    }
    let mut sum: f32 = sums.iter().sum();
    for v in chunks.into_remainder() {
        *v = exp(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// `log_softmax(values)[index]`, the max and the sum of exponentials kept in 16 lanes so
/// the loops vectorize (the same result on every SIMD level).
pub fn log_softmax_at(values: &[f32], index: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    match simd_level() {
        // SAFETY: the CPU has the kernel's features.
        SimdLevel::Avx512 => return unsafe { log_softmax_at_avx512(values, index) },
        SimdLevel::Avx2 => return unsafe { log_softmax_at_avx2(values, index) },
        SimdLevel::Portable => {}
    }
    log_softmax_at_generic(values, index)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn log_softmax_at_avx2(values: &[f32], index: usize) -> f32 {
    log_softmax_at_generic(values, index)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,fma")]
unsafe fn log_softmax_at_avx512(values: &[f32], index: usize) -> f32 {
    log_softmax_at_generic(values, index)
}

#[inline(always)]
fn log_softmax_at_generic(values: &[f32], index: usize) -> f32 {
    let max = max_value(values);
    let mut sums = [0f32; 16];
    let chunks = values.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..16 {
            sums[l] += exp(c[l] - max);
        }
    }
    let sum = sums.iter().sum::<f32>() + rest.iter().map(|v| exp(v - max)).sum::<f32>();
    values[index] - max - sum.ln()
}

/// Layer-norm parameters on the host.
#[derive(Debug, Clone)]
pub struct HostNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

impl HostNorm {
    /// Normalizes every `d`-wide row of `x`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; x.len()];
        layer_norm_rows(x, &self.gamma, &self.beta, &mut out);
        out
    }

    /// Normalizes one row on the calling thread (for a few rows, where handing work to
    /// other threads costs more than it saves).
    pub fn forward_row(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; x.len()];
        layer_norm_row(x, &self.gamma, &self.beta, &mut out);
        out
    }
}

/// Layer norm (eps 1e-5) of `input`'s `d`-wide rows into `out`, on all threads.
pub fn layer_norm_rows(input: &[f32], gamma: &[f32], beta: &[f32], out: &mut [f32]) {
    let d = gamma.len();
    out.par_chunks_mut(d * 64)
        .zip(input.par_chunks(d * 64))
        .for_each(|(o, x)| {
            for (orow, xrow) in o.chunks_mut(d).zip(x.chunks(d)) {
                layer_norm_row(xrow, gamma, beta, orow);
            }
        });
}

/// Layer norm (eps 1e-5) of one row into `out`.
fn layer_norm_row(x: &[f32], gamma: &[f32], beta: &[f32], out: &mut [f32]) {
    let d = x.len();
    let mean = x.iter().map(|v| *v as f64).sum::<f64>() / d as f64;
    let var = x.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
    let inv = (1.0 / (var + 1e-5).sqrt()) as f32;
    let mean = mean as f32;
    for ((o, x), (g, b)) in out.iter_mut().zip(x).zip(gamma.iter().zip(beta)) {
        *o = (x - mean) * inv * g + b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series in f64 (accurate to ~1e-11 for |x| <= 4).
    fn erf_reference(x: f64) -> f64 {
        let (mut term, mut sum) = (x, x);
        for n in 1..120 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_within_two_ulp() {
        for i in -8000..800 {
            let x = i as f32 * 0.01;
            let (a, e) = (exp(x), (x as f64).exp());
            assert!(((a as f64 - e) / e).abs() < 2.5e-7, "x {x}: {a} vs {e}");
        }
    }

    #[test]
    fn gelu_matches_the_erf_definition() {
        for i in -560..560 {
            let x = i as f32 * 0.01;
            let want = 0.5 * x as f64 * (1.0 + erf_reference(x as f64 / 2f64.sqrt()));
            let got = gelu(x) as f64;
            assert!(
                (got - want).abs() <= 1e-6 * want.abs() + 5e-9,
                "x {x}: {got} vs {want}"
            );
        }
        let mut v = vec![-3.0f32, -0.5, 0.0, 0.5, 3.0];
        gelu_in_place(&mut v);
        assert_eq!(v, [-3.0f32, -0.5, 0.0, 0.5, 3.0].map(gelu));
    }

    #[test]
    fn log_softmax_at_matches_reference() {
        let mut row: Vec<f32> = (0..1037)
            .map(|i| ((i * 17 % 23) as f32) * 0.7 - 5.0)
            .collect();
        row[5] = f32::NEG_INFINITY;
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let z: f64 = row.iter().map(|v| (*v as f64 - m).exp()).sum();
        for i in [0usize, 7, 1036] {
            let want = row[i] as f64 - m - z.ln();
            let got = log_softmax_at(&row, i) as f64;
            assert!((got - want).abs() < 1e-5, "{i}: {got} vs {want}");
        }
        assert_eq!(log_softmax_at(&row, 5), f32::NEG_INFINITY);
    }

    #[test]
    fn pow2_matches_the_exponent_bits() {
        for n in -126..=127 {
            assert_eq!(pow2(n as f32).to_bits(), ((n + 127) as u32) << 23, "2^{n}");
        }
    }

    #[test]
    fn softmax_row_matches_reference() {
        let mut row: Vec<f32> = (0..37)
            .map(|i| ((i * 17 % 23) as f32) * 0.7 - 5.0)
            .collect();
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let z: f64 = row.iter().map(|v| ((v - m) as f64).exp()).sum();
        let want: Vec<f64> = row.iter().map(|v| ((v - m) as f64).exp() / z).collect();
        softmax_row(&mut row);
        for (a, b) in row.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-7, "{a} vs {b}");
        }
    }

    #[test]
    fn layer_norm_normalizes_rows() {
        let x: Vec<f32> = (0..12).map(|i| (i * i) as f32).collect();
        let mut out = vec![0f32; 12];
        layer_norm_rows(&x, &[1.0; 4], &[0.5; 4], &mut out);
        for row in out.chunks(4) {
            let mean: f32 = row.iter().sum::<f32>() / 4.0;
            let var: f32 = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
            assert!(
                (mean - 0.5).abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
                "{row:?}"
            );
        }
    }
}
