//! 8-bit and 4-bit weight matrices with the matrix-vector kernels the self-draft needs.
//! Symmetric quantization: 8-bit with one scale per row, 4-bit with one scale per
//! group of 32 inputs. The kernels read the quantized bytes directly (no dequantized copy).
use rayon::prelude::*;

pub const Q4_GROUP: usize = 32;
const ROWS_PER_TASK: usize = 64;
const PARALLEL_MIN_WEIGHTS: usize = 1 << 20;

/// A quantized `[rows, cols]` matrix (`y = W x`).
#[derive(Debug, Clone)]
pub enum QuantMatrix {
    Q8 {
        rows: usize,
        cols: usize,
        data: Vec<i8>,
        scales: Vec<f32>,
        row_sums: Vec<i32>,
    },
    Q4 {
        rows: usize,
        cols: usize,
        data: Vec<u8>,
        scales: Vec<f32>,
    },
}

impl QuantMatrix {
    /// Quantizes row-major `w` (`[rows, cols]`) to `bits` (8 or 4; 4 needs cols % 32 == 0).
    pub fn quantize(w: &[f32], rows: usize, cols: usize, bits: u8) -> Self {
        if bits == 4 && cols.is_multiple_of(Q4_GROUP) {
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
            let inv = 1.0 / scale;
            for (q, v) in data[r * cols..(r + 1) * cols].iter_mut().zip(row) {
                *q = round_nearest(v * inv).clamp(-127.0, 127.0) as i8;
            }
        }
        let row_sums = data
            .chunks(cols.max(1))
            .map(|r| r.iter().map(|v| *v as i32).sum())
            .collect();
        QuantMatrix::Q8 {
            rows,
            cols,
            data,
            scales,
            row_sums,
        }
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
                let q = |v: f32| ((v / scale).round().clamp(-8.0, 7.0) as i32 + 8) as u8;
                for j in 0..Q4_GROUP / 2 {
                    data[start / 2 + j] = q(vals[j]) | (q(vals[j + Q4_GROUP / 2]) << 4);
                }
            }
        }
        QuantMatrix::Q4 {
            rows,
            cols,
            data,
            scales,
        }
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
        self.matmul(&[x], out)
    }

    /// `out[j] = W xs[j]` for each activation row `j` (`out` is `[xs.len(), rows]`). Each
    /// weight row is read from memory once for all activations (it stays in L1 between
    /// them), and each output gets the same arithmetic as [`Self::matvec`] of its row.
    pub fn matmul(&self, xs: &[&[f32]], out: &mut [f32]) {
        assert!(
            xs.iter().all(|x| x.len() == self.cols()),
            "activations must be {} wide",
            self.cols()
        );
        assert!(
            out.len() >= self.rows() * xs.len(),
            "output holds fewer than {} x {} values",
            xs.len(),
            self.rows()
        );
        if xs.is_empty() || self.cols() == 0 {
            out[..self.rows() * xs.len()]
                .iter_mut()
                .for_each(|o| *o = 0.0);
            return;
        }
        if has_vnni() && self.cols().is_multiple_of(64) {
            let qx: Vec<QuantVec> = xs.iter().map(|x| QuantVec::new(x)).collect();
            if let QuantMatrix::Q4 {
                cols, data, scales, ..
            } = self
            {
                // Four rows at a time, 64 weights per instruction (see `vnni::dots_q4_rows`).
                let m = qx.len();
                return self.for_row_blocks(m, out, |r0, o| {
                    let n = o.len() / m;
                    let mut dots = vec![0f32; n];
                    for (j, q) in qx.iter().enumerate() {
                        // SAFETY: only reached when `has_vnni()` is true; `cols` is a
                        // multiple of 64 and rows `r0..r0 + n` exist.
                        unsafe { vnni::dots_q4_rows(data, scales, *cols, r0, q, &mut dots) };
                        for (i, d) in dots.iter().enumerate() {
                            o[i * m + j] = *d;
                        }
                    }
                });
            }
            // SAFETY: only reached when `has_vnni()` is true.
            return self.for_row_blocks(
                xs.len(),
                out,
                per_row(xs.len(), |r, o| {
                    o.iter_mut()
                        .zip(&qx)
                        .for_each(|(o, q)| *o = unsafe { self.row_dot_vnni(r, q) })
                }),
            );
        }
        if has_avx2() && self.cols().is_multiple_of(Q4_GROUP) {
            // Integer dot products (`maddubs`: 32 byte products per instruction) against
            // the activations quantized to 8 bits on the fly.
            let qx: Vec<QuantVec> = xs.iter().map(|x| QuantVec::new(x)).collect();
            // SAFETY: only reached when `has_avx2()` is true.
            return self.for_row_blocks(xs.len(), out, |r0, o| unsafe {
                self.block_dots_int_avx2(r0, &qx, o)
            });
        }
        let simd = has_avx2();
        self.for_row_blocks(
            xs.len(),
            out,
            per_row(xs.len(), |r, o| {
                o.iter_mut().zip(xs).for_each(|(o, x)| {
                    *o = if simd {
                        self.row_dot_simd(r, x)
                    } else {
                        self.row_dot(r, x)
                    }
                })
            }),
        );
    }

    /// `out[j * rows + r]` = weight row `r` times activation `j`, where
    /// `block_dots(r0, o)` fills `o[i * m + j]` for the block of rows from `r0` and all `m`
    /// activations; on all threads for large products only (small ones cost less than
    /// handing work to another thread).
    fn for_row_blocks(
        &self,
        m: usize,
        out: &mut [f32],
        block_dots: impl Fn(usize, &mut [f32]) + Sync,
    ) {
        let rows = self.rows();
        let mut by_row = if m == 1 {
            Vec::new()
        } else {
            vec![0f32; rows * m]
        };
        let dst: &mut [f32] = if m == 1 {
            &mut out[..rows]
        } else {
            &mut by_row
        };
        let block = |(block, chunk): (usize, &mut [f32])| block_dots(block * ROWS_PER_TASK, chunk);
        if rows * self.cols() * m < PARALLEL_MIN_WEIGHTS {
            dst.chunks_mut(ROWS_PER_TASK * m)
                .enumerate()
                .for_each(block);
        } else {
            dst.par_chunks_mut(ROWS_PER_TASK * m)
                .enumerate()
                .for_each(block);
        }
        if m > 1 {
            for (r, vals) in by_row.chunks(m).enumerate() {
                vals.iter()
                    .enumerate()
                    .for_each(|(j, v)| out[j * rows + r] = *v);
            }
        }
    }

    /// Rows `r0..` times each of `qx` (`out[i * qx.len() + j]`, as many rows as `out`
    /// holds), the activations in groups of up to four: each row's bytes are decoded once
    /// per group, and each output gets the same arithmetic as one activation alone.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_dots_int_avx2(&self, r0: usize, qx: &[QuantVec], out: &mut [f32]) {
        let m = qx.len();
        for (g, qs) in qx.chunks(4).enumerate() {
            let (j0, n) = (4 * g, out.len() / m);
            match qs.len() {
                4 => self.block_dots_n::<4>(r0, n, qs, &mut out[j0..], m),
                3 => self.block_dots_n::<3>(r0, n, qs, &mut out[j0..], m),
                2 => self.block_dots_n::<2>(r0, n, qs, &mut out[j0..], m),
                _ => self.block_dots_n::<1>(r0, n, qs, &mut out[j0..], m),
            }
        }
    }

    /// `n` rows from `r0` times `M` activations: `out[i * stride + j]`.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_dots_n<const M: usize>(
        &self,
        r0: usize,
        n: usize,
        qx: &[QuantVec],
        out: &mut [f32],
        stride: usize,
    ) {
        let x_scales: [f32; M] = std::array::from_fn(|j| qx[j].scale);
        match self {
            QuantMatrix::Q8 {
                cols, data, scales, ..
            } => {
                let xs: [&[i8]; M] = std::array::from_fn(|j| qx[j].signed.as_slice());
                for (r, row) in data.chunks_exact(*cols).enumerate().skip(r0).take(n) {
                    let dots = simd::dots_i8_i8::<M>(row, xs);
                    for j in 0..M {
                        out[(r - r0) * stride + j] = dots[j] as f32 * x_scales[j] * scales[r];
                    }
                }
            }
            QuantMatrix::Q4 {
                cols, data, scales, ..
            } => {
                let groups = cols / Q4_GROUP;
                let pairs: [&[i8]; M] = std::array::from_fn(|j| qx[j].pairs.as_slice());
                let offsets: [&[f32]; M] = std::array::from_fn(|j| qx[j].group_offsets.as_slice());
                let xs: [&[i8]; M] = std::array::from_fn(|j| qx[j].signed.as_slice());
                let sums: [&[i32]; M] = std::array::from_fn(|j| qx[j].group_sums.as_slice());
                let rows = data.chunks_exact(cols / 2).zip(scales.chunks_exact(groups));
                for (r, (bytes, row_scales)) in rows.enumerate().skip(r0).take(n) {
                    let dots = if groups.is_multiple_of(2) {
                        simd::dots_q4_pairs::<M>(bytes, row_scales, pairs, offsets)
                    } else {
                        simd::dots_q4_i8::<M>(bytes, row_scales, xs, sums)
                    };
                    for j in 0..M {
                        out[(r - r0) * stride + j] = dots[j] * x_scales[j];
                    }
                }
            }
        }
    }

    /// Weight row `r` times `qx` (integer AVX2 kernels).
    #[cfg(all(test, target_arch = "x86_64"))]
    unsafe fn row_dot_int_avx2(&self, r: usize, qx: &QuantVec) -> f32 {
        let mut out = [0f32];
        self.block_dots_int_avx2(r, std::slice::from_ref(qx), &mut out);
        out[0]
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn block_dots_int_avx2(&self, r0: usize, qx: &[QuantVec], out: &mut [f32]) {
        let _ = (r0, qx, out);
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn row_dot_vnni(&self, r: usize, qx: &QuantVec) -> f32 {
        match self {
            QuantMatrix::Q8 {
                cols,
                data,
                scales,
                row_sums,
                ..
            } => {
                let dot = vnni::dot_u8_i8(&qx.biased, &data[r * cols..(r + 1) * cols]);
                (dot - 128 * row_sums[r]) as f32 * qx.scale * scales[r]
            }
            QuantMatrix::Q4 {
                cols, data, scales, ..
            } => {
                let groups = cols / Q4_GROUP;
                vnni::dot_q4_i8(
                    &data[r * cols / 2..(r + 1) * cols / 2],
                    &scales[r * groups..(r + 1) * groups],
                    &qx.signed,
                    &qx.group_sums,
                ) * qx.scale
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn row_dot_vnni(&self, r: usize, qx: &QuantVec) -> f32 {
        let _ = qx;
        0.0 * r as f32
    }

    #[inline]
    fn row_dot_simd(&self, r: usize, x: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: only called when AVX2 and FMA are present (`has_avx2`).
            unsafe {
                match self {
                    QuantMatrix::Q8 {
                        cols, data, scales, ..
                    } => scales[r] * simd::dot_i8(&data[r * cols..(r + 1) * cols], x),
                    QuantMatrix::Q4 {
                        cols, data, scales, ..
                    } => {
                        let groups = cols / Q4_GROUP;
                        simd::dot_q4_row(
                            &data[r * cols / 2..(r + 1) * cols / 2],
                            &scales[r * groups..(r + 1) * groups],
                            x,
                        )
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.row_dot(r, x)
    }

    /// Dot product of row `r` with `x`.
    #[inline]
    pub fn row_dot(&self, r: usize, x: &[f32]) -> f32 {
        match self {
            QuantMatrix::Q8 {
                cols, data, scales, ..
            } => scales[r] * dot_i8(&data[r * cols..(r + 1) * cols], x),
            QuantMatrix::Q4 {
                cols, data, scales, ..
            } => {
                let groups = cols / Q4_GROUP;
                let bytes = &data[r * cols / 2..(r + 1) * cols / 2];
                (0..groups)
                    .map(|g| {
                        scales[r * groups + g]
                            * dot_q4(
                                &bytes[g * Q4_GROUP / 2..(g + 1) * Q4_GROUP / 2],
                                &x[g * Q4_GROUP..(g + 1) * Q4_GROUP],
                            )
                    })
                    .sum()
            }
        }
    }

    /// Row `r` dequantized into `out` (embedding lookup).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) {
        match self {
            QuantMatrix::Q8 {
                cols, data, scales, ..
            } => {
                for (o, q) in out.iter_mut().zip(&data[r * cols..(r + 1) * cols]) {
                    *o = *q as f32 * scales[r];
                }
            }
            QuantMatrix::Q4 {
                cols, data, scales, ..
            } => {
                let groups = cols / Q4_GROUP;
                for (c, o) in out[..*cols].iter_mut().enumerate() {
                    let (g, j) = (c / Q4_GROUP, c % Q4_GROUP);
                    let b = data[(r * cols + g * Q4_GROUP) / 2 + j % (Q4_GROUP / 2)];
                    let q = if j < Q4_GROUP / 2 { b & 15 } else { b >> 4 } as i32 - 8;
                    *o = q as f32 * scales[r * groups + g];
                }
            }
        }
    }
}

/// A per-row `row_dots(r, o)` (filling `o[j]` for `m` activations) as a per-block one.
fn per_row(
    m: usize,
    row_dots: impl Fn(usize, &mut [f32]) + Sync,
) -> impl Fn(usize, &mut [f32]) + Sync {
    move |r0, block| {
        block
            .chunks_mut(m)
            .enumerate()
            .for_each(|(i, o)| row_dots(r0 + i, o))
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
    let half = Q4_GROUP / 2;
    let mut acc = [0f32; 16];
    for (j, b) in bytes.iter().enumerate() {
        acc[j] += ((b & 15) as i32 - 8) as f32 * x[j] + ((b >> 4) as i32 - 8) as f32 * x[j + half];
    }
    acc.iter().sum()
}

/// Round to nearest (ties to even) for `|v| < 2^22`, branch-free so quantization loops
/// vectorize (`f32::round` is a call to `roundf` on baseline x86-64).
#[inline(always)]
fn round_nearest(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    let v = v.clamp(-4_194_304.0, 4_194_304.0);
    (v + MAGIC) - MAGIC
}

/// True when the AVX-512 VNNI integer kernels can run.
pub fn has_vnni() -> bool {
    super::features::features().vnni()
}

/// An activation vector quantized to 8 bits for integer dot products.
pub struct QuantVec {
    /// `round(x / scale)` as i8.
    pub signed: Vec<i8>,
    /// The same plus 128, as u8 (VNNI multiplies unsigned by signed bytes).
    pub biased: Vec<u8>,
    /// Sum of `signed` over each group of 32 (for the int4 offset of 8).
    pub group_sums: Vec<i32>,
    /// `8 * group_sums`, as floats (the int4 offset, subtracted in vector lanes).
    pub group_offsets: Vec<f32>,
    /// `signed` reordered for [`simd::dots_q4_pairs`]: per 64 values (two groups) the
    /// first halves of both groups, then their second halves (the order in which one
    /// 32-byte load of packed int4 weights unpacks).
    pub pairs: Vec<i8>,
    /// `-8 *` the sum of each 4 consecutive values of `pairs` (the int4 offset of 8 per
    /// 32-bit lane of a VNNI dot product over `pairs`).
    pub pair_offsets: Vec<i32>,
    pub scale: f32,
}

impl QuantVec {
    pub fn new(x: &[f32]) -> Self {
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
        let inv = 1.0 / scale;
        let mut signed = vec![0i8; x.len()];
        quantize_i8(x, inv, &mut signed);
        // i8 + 128 as u8 is the i8's bits with the top one flipped.
        let biased = signed.iter().map(|v| *v as u8 ^ 0x80).collect();
        let group_sums: Vec<i32> = signed
            .chunks(Q4_GROUP)
            .map(|g| g.iter().map(|v| *v as i32).sum())
            .collect();
        let group_offsets = group_sums.iter().map(|s| (8 * s) as f32).collect();
        let half = Q4_GROUP / 2;
        let mut pairs = Vec::with_capacity(x.len());
        for p in signed.chunks(2 * Q4_GROUP) {
            for k in [0, 2, 1, 3] {
                pairs.extend_from_slice(&p[(k * half).min(p.len())..((k + 1) * half).min(p.len())]);
            }
        }
        let pair_offsets = pairs
            .chunks(4)
            .map(|c| -8 * c.iter().map(|v| *v as i32).sum::<i32>())
            .collect();
        Self {
            signed,
            biased,
            group_sums,
            group_offsets,
            pairs,
            pair_offsets,
            scale,
        }
    }
}

/// `out[i] = round(x[i] * inv)` clamped to -127..=127 (ties to even), 32 lanes at a
/// time where AVX2 is present (the same values as the scalar loop).
fn quantize_i8(x: &[f32], inv: f32, out: &mut [i8]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 is present; `done` is a multiple of 32 within both slices.
        done = unsafe { simd::quantize_i8(x, inv, out) };
    }
    for (q, v) in out[done..].iter_mut().zip(&x[done..]) {
        *q = round_nearest(v * inv).clamp(-127.0, 127.0) as i8;
    }
}

/// AVX-512 VNNI kernels: 64 (or 32) byte products per instruction.
#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::Q4_GROUP;
    use std::arch::x86_64::*;

    /// `sum(a[i] * b[i])` for unsigned `a`, signed `b`; length a multiple of 64.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn dot_u8_i8(a: &[u8], b: &[i8]) -> i32 {
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        while i + 64 <= a.len().min(b.len()) {
            let va = _mm512_loadu_si512(a.as_ptr().add(i) as *const _);
            let vb = _mm512_loadu_si512(b.as_ptr().add(i) as *const _);
            acc = _mm512_dpbusd_epi32(acc, va, vb);
            i += 64;
        }
        _mm512_reduce_add_epi32(acc)
    }

    /// Rows `r0..r0 + out.len()` of a packed int4 matrix (`cols` a multiple of 64) times
    /// `x`: per 64 weights, one 32-byte load unpacked to 64 bytes in `x.pairs`' order, one
    /// `dpbusd` starting from the int4 offsets (`x.pair_offsets`), converted and scaled
    /// per group in float lanes. Four rows go together (independent accumulators, `x`
    /// loaded once); each row's arithmetic is the same whichever rows it goes with.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub unsafe fn dots_q4_rows(
        data: &[u8],
        scales: &[f32],
        cols: usize,
        r0: usize,
        x: &super::QuantVec,
        out: &mut [f32],
    ) {
        let n = out.len();
        let (groups, half) = (cols / Q4_GROUP, cols / 2);
        assert!(
            cols.is_multiple_of(64)
                && data.len() >= (r0 + n) * half
                && scales.len() >= (r0 + n) * groups
                && x.pairs.len() >= cols
                && x.pair_offsets.len() >= cols / 4
        );
        let mask = _mm256_set1_epi8(0x0f);
        // Lanes 0-3 and 8-11 hold the first group of a pair, 4-7 and 12-15 the second.
        let spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
        let row = |r: usize, b: usize| -> (__m512i, __m512) {
            let p = _mm256_loadu_si256(data.as_ptr().add(r * half + 32 * b) as *const __m256i);
            let lo = _mm256_and_si256(p, mask);
            let hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), mask);
            let w = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            let s2 = _mm_castpd_ps(_mm_load_sd(
                scales.as_ptr().add(r * groups + 2 * b) as *const f64
            ));
            (w, _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(s2)))
        };
        let blocks = cols / 64;
        let mut i = 0;
        while i + 4 <= n {
            let r = r0 + i;
            let mut acc = [_mm512_setzero_ps(); 4];
            for b in 0..blocks {
                let xv = _mm512_loadu_si512(x.pairs.as_ptr().add(64 * b) as *const _);
                let off = _mm512_loadu_si512(x.pair_offsets.as_ptr().add(16 * b) as *const _);
                for (k, a) in acc.iter_mut().enumerate() {
                    let (w, sc) = row(r + k, b);
                    let dot = _mm512_dpbusd_epi32(off, w, xv);
                    *a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, *a);
                }
            }
            for (k, a) in acc.iter().enumerate() {
                out[i + k] = _mm512_reduce_add_ps(*a) * x.scale;
            }
            i += 4;
        }
        while i < n {
            let r = r0 + i;
            let mut a = _mm512_setzero_ps();
            for b in 0..blocks {
                let xv = _mm512_loadu_si512(x.pairs.as_ptr().add(64 * b) as *const _);
                let off = _mm512_loadu_si512(x.pair_offsets.as_ptr().add(16 * b) as *const _);
                let (w, sc) = row(r, b);
                let dot = _mm512_dpbusd_epi32(off, w, xv);
                a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, a);
            }
            out[i] = _mm512_reduce_add_ps(a) * x.scale;
            i += 1;
        }
    }

    /// One row of packed int4 weights (stored as q + 8, byte j of a group = elements j
    /// and j + 16) against int8 activations: `sum_g scale_g * (dot(w+8, x) - 8 sum(x_g))`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub unsafe fn dot_q4_i8(bytes: &[u8], scales: &[f32], x: &[i8], group_sums: &[i32]) -> f32 {
        let mask = _mm_set1_epi8(0x0f);
        let mut acc = _mm256_setzero_ps();
        let mut offset = 0f32;
        for (g, scale) in scales.iter().enumerate() {
            let b = _mm_loadu_si128(bytes.as_ptr().add(g * Q4_GROUP / 2) as *const __m128i);
            let lo = _mm_and_si128(b, mask);
            let hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
            let w = _mm256_set_m128i(hi, lo);
            let xv = _mm256_loadu_si256(x.as_ptr().add(g * Q4_GROUP) as *const __m256i);
            let dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, xv);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(*scale), acc);
            offset += scale * (8 * group_sums[g]) as f32;
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        lanes.iter().sum::<f32>() - offset
    }
}

/// True when the AVX2/FMA kernels can run.
pub fn has_avx2() -> bool {
    super::features::features().avx2_fma()
}

/// AVX2/FMA kernels reading int8 and packed int4 weights directly.
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::Q4_GROUP;
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn i8x8(p: *const i8) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p as *const __m128i)))
    }

    /// `sum(q[i] * x[i])` for int8 `q`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_i8(q: &[i8], x: &[f32]) -> f32 {
        let n = q.len().min(x.len());
        let (pq, px) = (q.as_ptr(), x.as_ptr());
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= n {
            a0 = _mm256_fmadd_ps(i8x8(pq.add(i)), _mm256_loadu_ps(px.add(i)), a0);
            a1 = _mm256_fmadd_ps(i8x8(pq.add(i + 8)), _mm256_loadu_ps(px.add(i + 8)), a1);
            i += 16;
        }
        let mut s = hsum(_mm256_add_ps(a0, a1));
        while i < n {
            s += q[i] as f32 * x[i];
            i += 1;
        }
        s
    }

    /// Quantizes the first multiple of 32 values of `x` (see [`super::quantize_i8`]);
    /// returns how many it did. `cvtps` rounds to nearest even, as the scalar path.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn quantize_i8(x: &[f32], inv: f32, out: &mut [i8]) -> usize {
        let n = x.len().min(out.len()) / 32 * 32;
        let (vinv, lim) = (_mm256_set1_ps(inv), _mm256_set1_epi32(127));
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let mut i = 0;
        while i < n {
            let q: [__m256i; 4] = std::array::from_fn(|k| {
                let v = _mm256_cvtps_epi32(_mm256_mul_ps(
                    _mm256_loadu_ps(x.as_ptr().add(i + 8 * k)),
                    vinv,
                ));
                _mm256_max_epi32(
                    _mm256_min_epi32(v, lim),
                    _mm256_sub_epi32(_mm256_setzero_si256(), lim),
                )
            });
            // Packing works within 128-bit lanes; the permute restores the order.
            let packed = _mm256_packs_epi16(
                _mm256_packs_epi32(q[0], q[1]),
                _mm256_packs_epi32(q[2], q[3]),
            );
            _mm256_storeu_si256(
                out.as_mut_ptr().add(i) as *mut __m256i,
                _mm256_permutevar8x32_epi32(packed, order),
            );
            i += 32;
        }
        n
    }

    /// Sum of the 8 i32 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum_i32(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
        _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)))
    }

    /// `sum(w[i] * x_j[i])` for int8 `w` and each of `M` int8 `x_j` (all within
    /// -127..=127), length a multiple of 32: `maddubs(|w|, x * sign(w))` keeps each pair
    /// sum below 2^15. `w` is loaded once for all `x_j`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dots_i8_i8<const M: usize>(w: &[i8], xs: [&[i8]; M]) -> [i32; M] {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_si256(); M];
        let n = xs.iter().fold(w.len(), |n, x| n.min(x.len()));
        let mut i = 0;
        while i + 32 <= n {
            let vw = _mm256_loadu_si256(w.as_ptr().add(i) as *const __m256i);
            let aw = _mm256_sign_epi8(vw, vw);
            for j in 0..M {
                let vx = _mm256_loadu_si256(xs[j].as_ptr().add(i) as *const __m256i);
                let pairs = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(vx, vw));
                acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(pairs, ones));
            }
            i += 32;
        }
        let mut out = [0i32; M];
        for j in 0..M {
            out[j] = hsum_i32(acc[j]);
        }
        out
    }

    /// One row of packed int4 weights (stored as q + 8, byte j of a group = elements j
    /// and j + 16) against each of `M` int8 activations:
    /// `sum_g scale_g * (dot(w+8, x) - 8 sum(x_g))`. Each group is decoded once for all.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dots_q4_i8<const M: usize>(
        bytes: &[u8],
        scales: &[f32],
        xs: [&[i8]; M],
        group_sums: [&[i32]; M],
    ) -> [f32; M] {
        let mask = _mm_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); M];
        let mut offset = [0f32; M];
        for (g, scale) in scales.iter().enumerate() {
            let b = _mm_loadu_si128(bytes.as_ptr().add(g * Q4_GROUP / 2) as *const __m128i);
            let lo = _mm_and_si128(b, mask);
            let hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
            let w = _mm256_set_m128i(hi, lo);
            let sv = _mm256_set1_ps(*scale);
            for j in 0..M {
                let xv = _mm256_loadu_si256(xs[j].as_ptr().add(g * Q4_GROUP) as *const __m256i);
                let dot = _mm256_madd_epi16(_mm256_maddubs_epi16(w, xv), ones);
                acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), sv, acc[j]);
                offset[j] += scale * (8 * group_sums[j][g]) as f32;
            }
        }
        let mut out = [0f32; M];
        for j in 0..M {
            out[j] = hsum(acc[j]) - offset[j];
        }
        out
    }

    /// [`dots_q4_i8`] two groups at a time: one 32-byte load holds groups `2p` and
    /// `2p + 1`, whose low nibbles (first halves) and high nibbles (second halves) meet
    /// activations in [`super::QuantVec::pairs`] order; the offset of 8 is subtracted in
    /// vector lanes (`scale_g * 8 sum(x_g)`, from `offsets`), not per group in scalars.
    /// Needs an even number of groups.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dots_q4_pairs<const M: usize>(
        bytes: &[u8],
        scales: &[f32],
        xs: [&[i8]; M],
        offsets: [&[f32]; M],
    ) -> [f32; M] {
        let mask = _mm256_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        let spread = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
        let mut acc = [_mm256_setzero_ps(); M];
        let groups = scales.len();
        for p in 0..groups / 2 {
            let b = _mm256_loadu_si256(bytes.as_ptr().add(p * Q4_GROUP) as *const __m256i);
            let lo = _mm256_and_si256(b, mask);
            let hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), mask);
            let pair = _mm_castpd_ps(_mm_load_sd(scales.as_ptr().add(2 * p) as *const f64));
            let sv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(pair), spread);
            for j in 0..M {
                let x = xs[j].as_ptr().add(p * 2 * Q4_GROUP);
                let x_lo = _mm256_loadu_si256(x as *const __m256i);
                let x_hi = _mm256_loadu_si256(x.add(Q4_GROUP) as *const __m256i);
                // Nibbles <= 15 times |x| <= 127: each 16-bit sum stays below 2^13.
                let sums = _mm256_add_epi16(
                    _mm256_maddubs_epi16(lo, x_lo),
                    _mm256_maddubs_epi16(hi, x_hi),
                );
                acc[j] = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(_mm256_madd_epi16(sums, ones)),
                    sv,
                    acc[j],
                );
            }
        }
        let mut out = [0f32; M];
        for j in 0..M {
            let mut g = 0;
            while g + 8 <= groups {
                acc[j] = _mm256_fnmadd_ps(
                    _mm256_loadu_ps(scales.as_ptr().add(g)),
                    _mm256_loadu_ps(offsets[j].as_ptr().add(g)),
                    acc[j],
                );
                g += 8;
            }
            out[j] = hsum(acc[j]) - (g..groups).map(|g| scales[g] * offsets[j][g]).sum::<f32>();
        }
        out
    }

    /// Sums of 8 vectors of i32 lanes: lane `i` of the result is the sum of `v[i]`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum8(v: &[__m256i; 8]) -> __m256i {
        let h1 = _mm256_hadd_epi32(v[0], v[1]);
        let h2 = _mm256_hadd_epi32(v[2], v[3]);
        let h3 = _mm256_hadd_epi32(v[4], v[5]);
        let h4 = _mm256_hadd_epi32(v[6], v[7]);
        let (h5, h6) = (_mm256_hadd_epi32(h1, h2), _mm256_hadd_epi32(h3, h4));
        _mm256_add_epi32(
            _mm256_permute2x128_si256(h5, h6, 0x20),
            _mm256_permute2x128_si256(h5, h6, 0x31),
        )
    }

    /// `out[j] = scale * row_scales[j] * (rows[j] . q)` for int8 rows `dim` wide (a
    /// multiple of 32) and int8 `q`, 8 rows at a time.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn scores_i8(
        rows: &[i8],
        dim: usize,
        q: &[i8],
        row_scales: &[f32],
        scale: f32,
        out: &mut [f32],
    ) {
        let ones = _mm256_set1_epi16(1);
        let n = out.len().min(row_scales.len()).min(rows.len() / dim);
        let row_dot = |j: usize| -> __m256i {
            let mut acc = _mm256_setzero_si256();
            for c in (0..dim).step_by(32) {
                let vw = _mm256_loadu_si256(rows.as_ptr().add(j * dim + c) as *const __m256i);
                let vq = _mm256_loadu_si256(q.as_ptr().add(c) as *const __m256i);
                let pairs =
                    _mm256_maddubs_epi16(_mm256_sign_epi8(vw, vw), _mm256_sign_epi8(vq, vw));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
            }
            acc
        };
        let sv = _mm256_set1_ps(scale);
        let mut j = 0;
        while j + 8 <= n {
            let sums = hsum8(&[
                row_dot(j),
                row_dot(j + 1),
                row_dot(j + 2),
                row_dot(j + 3),
                row_dot(j + 4),
                row_dot(j + 5),
                row_dot(j + 6),
                row_dot(j + 7),
            ]);
            let f = _mm256_mul_ps(
                _mm256_mul_ps(_mm256_cvtepi32_ps(sums), sv),
                _mm256_loadu_ps(row_scales.as_ptr().add(j)),
            );
            _mm256_storeu_ps(out.as_mut_ptr().add(j), f);
            j += 8;
        }
        while j < n {
            out[j] = scale * row_scales[j] * hsum_i32(row_dot(j)) as f32;
            j += 1;
        }
    }

    /// `out[0..64] = sum_j p[j] * row_scales[j] * rows[j]` for int8 rows 64 wide, the
    /// sum kept in registers.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weighted_sum_i8_64(rows: &[i8], row_scales: &[f32], p: &[f32], out: &mut [f32]) {
        let n = p.len().min(row_scales.len()).min(rows.len() / 64);
        let mut acc = [_mm256_setzero_ps(); 8];
        for j in 0..n {
            let w = _mm256_set1_ps(p[j] * row_scales[j]);
            let base = rows.as_ptr().add(j * 64);
            for (l, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(i8x8(base.add(8 * l)), w, *a);
            }
        }
        for (l, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.as_mut_ptr().add(8 * l), *a);
        }
    }

    /// `out += w * q` for int8 `q`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy_i8(q: &[i8], w: f32, out: &mut [f32]) {
        let n = q.len().min(out.len());
        let (pq, po) = (q.as_ptr(), out.as_mut_ptr());
        let wv = _mm256_set1_ps(w);
        let mut i = 0;
        while i + 8 <= n {
            let o = _mm256_fmadd_ps(i8x8(pq.add(i)), wv, _mm256_loadu_ps(po.add(i)));
            _mm256_storeu_ps(po.add(i), o);
            i += 8;
        }
        while i < n {
            out[i] += w * q[i] as f32;
            i += 1;
        }
    }

    /// One row of packed int4 weights (groups of 32, one scale each) times `x`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_q4_row(bytes: &[u8], scales: &[f32], x: &[f32]) -> f32 {
        let mask = _mm_set1_epi8(0x0f);
        let eight = _mm256_set1_epi32(8);
        let mut acc = _mm256_setzero_ps();
        for (g, scale) in scales.iter().enumerate() {
            let b = _mm_loadu_si128(bytes.as_ptr().add(g * Q4_GROUP / 2) as *const __m128i);
            let lo = _mm_and_si128(b, mask);
            let hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
            let px = x.as_ptr().add(g * Q4_GROUP);
            let cvt =
                |v: __m128i| _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(v), eight));
            let mut gacc = _mm256_mul_ps(cvt(lo), _mm256_loadu_ps(px));
            gacc = _mm256_fmadd_ps(cvt(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(px.add(8)), gacc);
            gacc = _mm256_fmadd_ps(cvt(hi), _mm256_loadu_ps(px.add(16)), gacc);
            gacc = _mm256_fmadd_ps(
                cvt(_mm_srli_si128(hi, 8)),
                _mm256_loadu_ps(px.add(24)),
                gacc,
            );
            acc = _mm256_fmadd_ps(gacc, _mm256_set1_ps(*scale), acc);
        }
        hsum(acc)
    }
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

    /// No rows yet, `dim` wide (rows are appended with [`Self::push`]).
    pub fn empty(dim: usize) -> Self {
        QuantRows {
            dim,
            data: Vec::new(),
            scales: Vec::new(),
        }
    }

    /// Appends one row (`dim` values), quantized as [`Self::quantize`] would.
    pub fn push(&mut self, row: &[f32]) {
        let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
        let start = self.data.len();
        self.data.resize(start + row.len(), 0);
        quantize_i8(row, 1.0 / scale, &mut self.data[start..]);
        self.scales.push(scale);
    }

    /// Keeps the first `n` rows.
    pub fn truncate(&mut self, n: usize) {
        self.data.truncate(n * self.dim);
        self.scales.truncate(n);
    }

    pub fn len(&self) -> usize {
        self.scales.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    #[inline]
    pub fn dot(&self, row: usize, x: &[f32], simd: bool) -> f32 {
        let q = &self.data[row * self.dim..(row + 1) * self.dim];
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: `simd` is only true when AVX2/FMA are present.
            return self.scales[row] * unsafe { simd::dot_i8(q, x) };
        }
        let _ = simd;
        self.scales[row] * dot_i8(q, x)
    }

    /// `out[j] = scale * (row j . q)` for every row, with `q` quantized to 8 bits
    /// (integer dot products on AVX2 when the row width is a multiple of 32).
    pub fn scores(&self, q: &[f32], scale: f32, out: &mut Vec<f32>) {
        self.scores_first(self.len(), q, scale, out)
    }

    /// [`Self::scores`] of the first `n` rows only (at most all): causal attention over a
    /// cache that already holds later positions.
    pub fn scores_first(&self, n: usize, q: &[f32], scale: f32, out: &mut Vec<f32>) {
        let n = n.min(self.len());
        out.clear();
        #[cfg(target_arch = "x86_64")]
        if has_avx2() && self.dim.is_multiple_of(32) {
            let qx = QuantVec::new(q);
            out.resize(n, 0.0);
            // SAFETY: AVX2 checked; rows are `dim` wide, a multiple of 32.
            unsafe {
                simd::scores_i8(
                    &self.data,
                    self.dim,
                    &qx.signed,
                    &self.scales,
                    scale * qx.scale,
                    out,
                )
            };
            return;
        }
        let simd = has_avx2();
        out.extend((0..n).map(|j| scale * self.dot(j, q, simd)));
    }

    /// `out = sum_j p[j] * row j` (`out` is `dim` wide).
    pub fn weighted_sum(&self, p: &[f32], out: &mut [f32]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        #[cfg(target_arch = "x86_64")]
        if has_avx2() && self.dim == 64 {
            // SAFETY: AVX2 checked; rows are 64 wide.
            unsafe { simd::weighted_sum_i8_64(&self.data, &self.scales, p, out) };
            return;
        }
        let simd = has_avx2();
        p.iter()
            .enumerate()
            .for_each(|(j, pj)| self.axpy(j, *pj, out, simd));
    }

    /// `out += w * row`.
    #[inline]
    pub fn axpy(&self, row: usize, w: f32, out: &mut [f32], simd: bool) {
        let s = w * self.scales[row];
        let q = &self.data[row * self.dim..(row + 1) * self.dim];
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: `simd` is only true when AVX2/FMA are present.
            unsafe { simd::axpy_i8(q, s, out) };
            return;
        }
        let _ = simd;
        for (o, v) in out.iter_mut().zip(q) {
            *o += s * *v as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1)
            .collect()
    }

    fn exact(w: &[f32], x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..rows)
            .map(|r| (0..cols).map(|c| w[r * cols + c] * x[c]).sum())
            .collect()
    }

    #[test]
    fn q8_and_q4_matvec_track_f32() {
        let (rows, cols) = (130, 96);
        let w = matrix(rows, cols);
        let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
        let want = exact(&w, &x, rows, cols);
        for (bits, tol) in [(8u8, 0.05f32), (4, 0.25)] {
            let q = QuantMatrix::quantize(&w, rows, cols, bits);
            let mut got = vec![0.0; rows];
            q.matvec(&x, &mut got);
            if has_avx2() {
                // The float SIMD kernel against the portable one (the matvec itself may
                // quantize the activations too, checked against `want` below).
                for r in 0..rows {
                    let (a, b) = (q.row_dot_simd(r, &x), q.row_dot(r, &x));
                    assert!(
                        (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                        "simd {a} vs portable {b}"
                    );
                }
            }
            let max_err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            let max_val = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(
                max_err < tol * max_val,
                "bits {bits}: err {max_err} vs {max_val}"
            );
        }
    }

    #[test]
    fn vnni_kernels_track_the_float_kernels() {
        if !has_vnni() {
            eprintln!("no AVX-512 VNNI here: skipped");
            return;
        }
        let (rows, cols) = (70, 128);
        let w = matrix(rows, cols);
        let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
        for bits in [8u8, 4] {
            let q = QuantMatrix::quantize(&w, rows, cols, bits);
            let mut got = vec![0.0; rows];
            q.matvec(&x, &mut got);
            let float: Vec<f32> = (0..rows).map(|r| q.row_dot(r, &x)).collect();
            let max = float.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (a, b) in got.iter().zip(&float) {
                assert!(
                    (a - b).abs() < 0.02 * max,
                    "bits {bits}: vnni {a} vs float {b}"
                );
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn integer_avx2_kernels_track_the_float_kernels() {
        if !has_avx2() {
            eprintln!("no AVX2 here: skipped");
            return;
        }
        // 128 columns: int4 in pairs of groups; 96 (three groups): one group at a time.
        for (rows, cols, bits) in [(70, 128, 8u8), (70, 128, 4), (70, 96, 4)] {
            let w = matrix(rows, cols);
            let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
            let qx = QuantVec::new(&x);
            let q = QuantMatrix::quantize(&w, rows, cols, bits);
            let float: Vec<f32> = (0..rows).map(|r| q.row_dot(r, &x)).collect();
            let max = float.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (r, b) in float.iter().enumerate() {
                // SAFETY: AVX2 checked above.
                let a = unsafe { q.row_dot_int_avx2(r, &qx) };
                assert!(
                    (a - b).abs() < 0.02 * max,
                    "bits {bits} row {r}: avx2 int {a} vs float {b}"
                );
            }
        }
        // Extremes: -127 * -127 pairs must not saturate.
        let w8 = vec![-127i8; 64];
        // SAFETY: AVX2 checked above.
        assert_eq!(
            unsafe { simd::dots_i8_i8::<2>(&w8, [&w8, &w8]) },
            [64 * 127 * 127; 2]
        );
        // Int4 extremes: every weight +7 (stored 15) against +-127.
        let (bytes, scales) = (vec![0xffu8; 32], vec![1f32; 2]);
        for x in [127i8, -127] {
            let xs = vec![x; 64];
            let offsets = vec![(8 * 32 * x as i32) as f32; 2];
            // SAFETY: AVX2 checked above.
            let got = unsafe { simd::dots_q4_pairs::<1>(&bytes, &scales, [&xs], [&offsets]) };
            assert_eq!(got, [(64 * 7 * x as i32) as f32]);
        }
    }

    #[test]
    fn attention_kernels_track_the_per_row_ones() {
        for (frames, dim) in [(37usize, 64usize), (20, 32), (9, 48)] {
            let keys = matrix(frames, dim);
            let rows = QuantRows::quantize(&keys, dim);
            let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.21).cos()).collect();
            let mut got = Vec::new();
            rows.scores(&q, 0.125, &mut got);
            let want: Vec<f32> = (0..frames)
                .map(|j| 0.125 * rows.dot(j, &q, false))
                .collect();
            let max = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() < 0.02 * max,
                    "frames {frames} dim {dim}: {a} vs {b}"
                );
            }
            let p: Vec<f32> = (0..frames).map(|j| 1.0 / (1.0 + j as f32)).collect();
            let mut sum = vec![0f32; dim];
            rows.weighted_sum(&p, &mut sum);
            let mut want = vec![0f32; dim];
            p.iter()
                .enumerate()
                .for_each(|(j, pj)| rows.axpy(j, *pj, &mut want, false));
            for (a, b) in sum.iter().zip(&want) {
                assert!(
                    (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                    "dim {dim}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn matmul_equals_one_matvec_per_row() {
        // 2100 x 512 is above the parallel threshold; 40 x 96 below it.
        for (rows, cols) in [(40usize, 96usize), (2100, 512)] {
            let w = matrix(rows, cols);
            let xs: Vec<Vec<f32>> = (0..3)
                .map(|j| {
                    (0..cols)
                        .map(|i| ((i + 7 * j) as f32 * 0.37).sin())
                        .collect()
                })
                .collect();
            let refs: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
            for bits in [8u8, 4] {
                let q = QuantMatrix::quantize(&w, rows, cols, bits);
                let mut all = vec![0f32; 3 * rows];
                q.matmul(&refs, &mut all);
                for (j, x) in xs.iter().enumerate() {
                    let mut one = vec![0f32; rows];
                    q.matvec(x, &mut one);
                    assert_eq!(
                        &all[j * rows..(j + 1) * rows],
                        &one[..],
                        "bits {bits}, {rows}x{cols}, activation {j}"
                    );
                }
            }
        }
    }

    #[test]
    fn vector_quantization_equals_scalar() {
        let x: Vec<f32> = (0..100)
            .map(|i| (i as f32 * 0.61).sin() * 3.0 + if i == 7 { 0.5 } else { 0.0 })
            .collect();
        let inv = 127.0 / 3.3;
        let mut fast = vec![0i8; x.len()];
        quantize_i8(&x, inv, &mut fast);
        let scalar: Vec<i8> = x
            .iter()
            .map(|v| round_nearest(v * inv).clamp(-127.0, 127.0) as i8)
            .collect();
        assert_eq!(fast, scalar);
        // Ties round to even, as the scalar path; values past 127 clamp.
        let mut q = vec![0i8; 32];
        quantize_i8(
            &[[0.5f32, 1.5, 2.5, -0.5, -1.5, 200.0, -300.0, 126.5]; 4].concat(),
            1.0,
            &mut q,
        );
        assert_eq!(&q[..8], &[0, 2, 2, 0, -2, 127, -127, 126]);
    }

    #[test]
    fn rows_pushed_one_by_one_equal_rows_quantized_together() {
        // (24 rows: a multiple of the 8 the vector kernel scores together, so the first 24
        // get the same arithmetic with or without the others.)
        let (n, dim) = (37, 64);
        let values = matrix(n, dim);
        let all = QuantRows::quantize(&values, dim);
        let mut grown = QuantRows::empty(dim);
        values.chunks(dim).for_each(|r| grown.push(r));
        assert_eq!((&grown.data, &grown.scales), (&all.data, &all.scales));
        let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.3).cos()).collect();
        let (mut every, mut first) = (Vec::new(), Vec::new());
        all.scores(&q, 0.125, &mut every);
        all.scores_first(24, &q, 0.125, &mut first);
        assert_eq!(first, every[..24]);
        grown.truncate(24);
        grown.scores(&q, 0.125, &mut every);
        assert_eq!(first, every);
    }

    #[test]
    fn q4_is_smaller_than_q8() {
        let w = matrix(64, 64);
        assert!(
            QuantMatrix::quantize(&w, 64, 64, 4).size_bytes()
                < QuantMatrix::quantize(&w, 64, 64, 8).size_bytes() * 2 / 3
        );
    }

    #[test]
    fn row_f32_dequantizes() {
        let w = matrix(4, 64);
        for bits in [8u8, 4] {
            let q = QuantMatrix::quantize(&w, 4, 64, bits);
            let mut row = vec![0.0; 64];
            q.row_f32(2, &mut row);
            let err = row
                .iter()
                .zip(&w[128..192])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 0.02, "bits {bits}: {err}");
        }
    }
}
