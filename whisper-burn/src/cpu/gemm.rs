//! Matrix products with few rows (decoder steps, verification of a few drafted tokens)
//! on CPU backends. The backend's general GEMM repacks the weights on every call, so 5
//! rows cost about 4x one row; here the weights are packed once at load into panels of
//! 32 outputs (`[k][32]` each) and a register-blocked kernel streams each panel once per
//! group of 4 rows, so k rows cost close to one. Each output is the same sequence of
//! fused multiply-adds whatever the number of rows, so a sequence gets bit-identical
//! logits alone, in a batch, or while verifying drafted tokens.
//!
//! Decoder weights that are all exactly representable in half precision (checkpoints
//! trained or shipped in f16, as Whisper's are, even when stored as f32) are kept as f16
//! and widened in registers: the same f32 products, so the same bits, from half the
//! memory traffic, which is what bounds a decoder step.
use rayon::prelude::*;

/// A packed weight the kernels widen to f32 on load: `f32` itself, or [`F16Bits`].
pub trait PanelWeight: Copy + Send + Sync + 'static {
    fn to_f32(self) -> f32;
    /// 8 consecutive weights as f32 lanes (callers enable AVX2 and F16C).
    ///
    /// # Safety
    /// `p` must be valid for reads of 8 consecutive `Self` values (no alignment is
    /// needed: the load is unaligned), and the CPU must support AVX and F16C, which the
    /// caller guarantees by running in an `avx2,fma,f16c` kernel reached only after
    /// feature detection.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256;
    /// 16 consecutive weights as f32 lanes (callers enable AVX-512F).
    ///
    /// # Safety
    /// `p` must be valid for reads of 16 consecutive `Self` values (no alignment is
    /// needed: the load is unaligned), and the CPU must support AVX-512F, which the
    /// caller guarantees by running in an `avx512f` kernel reached only after feature
    /// detection.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512;
}

impl PanelWeight for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256 {
        std::arch::x86_64::_mm256_loadu_ps(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512 {
        std::arch::x86_64::_mm512_loadu_ps(p)
    }
}

/// The bits of an IEEE half-precision weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
#[derive(Default)]
pub struct F16Bits(u16);

impl F16Bits {
    /// `v` in half precision, if that holds it exactly.
    pub fn exact(v: f32) -> Option<Self> {
        let h = half::f16::from_f32(v);
        (h.to_f32().to_bits() == v.to_bits()).then_some(Self(h.to_bits()))
    }
}

impl PanelWeight for F16Bits {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        half::f16::from_bits(self.0).to_f32()
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
    }
}

/// Packed weights in single or (exactly representable) half precision.
#[derive(Debug, Clone, PartialEq)]
enum Panels {
    F32(Vec<f32>),
    F16(Vec<F16Bits>),
}

/// Largest number of rows sent to this kernel.
pub const MAX_ROWS: usize = 128;
pub const PANEL: usize = 32;
const PANELS_PER_TASK: usize = 4;
const ROW_BLOCK: usize = 4;
/// Rows per AVX2 kernel call (12 accumulators, 2 weight vectors, 1 broadcast).
const AVX2_ROWS: usize = 6;

/// A weight matrix kept on the host in panels, with an optional bias.
#[derive(Debug, Clone)]
pub struct HostMatrix {
    pub d_in: usize,
    pub d_out: usize,
    /// `n_panels` blocks of `[d_in][PANEL]`, zero-padded past `d_out`.
    panels: Panels,
    pub bias: Option<Vec<f32>>,
}

/// Rows per task of the row-tiled path (large products such as the encoder's).
const TILE_ROWS: usize = 96;
/// From this many rows on, products are split by rows instead of by panels.
const ROW_TILED_FROM: usize = 64;

impl HostMatrix {
    /// Packs a row-major `[d_out, d_in]` weight in single precision.
    pub fn new(weight: &[f32], d_out: usize, d_in: usize, bias: Option<Vec<f32>>) -> Self {
        Self {
            d_in,
            d_out,
            panels: Panels::F32(pack_panels(d_out, d_in, |o, c| weight[o * d_in + c])),
            bias,
        }
    }

    /// Packs a row-major `[d_out, d_in]` weight in half precision when every value is
    /// exactly a half (products, and so results, are unchanged), else as [`Self::new`].
    pub fn new_compact(weight: &[f32], d_out: usize, d_in: usize, bias: Option<Vec<f32>>) -> Self {
        match weight
            .iter()
            .map(|v| F16Bits::exact(*v))
            .collect::<Option<Vec<_>>>()
        {
            Some(halves) => Self {
                d_in,
                d_out,
                panels: Panels::F16(pack_panels(d_out, d_in, |o, c| halves[o * d_in + c])),
                bias,
            },
            None => Self::new(weight, d_out, d_in, bias),
        }
    }

    /// True when the weights are held in half precision.
    pub fn is_half(&self) -> bool {
        matches!(self.panels, Panels::F16(_))
    }

    /// Bytes of packed weights (what a few-row product streams).
    pub fn weight_bytes(&self) -> usize {
        match &self.panels {
            Panels::F32(p) => 4 * p.len(),
            Panels::F16(p) => 2 * p.len(),
        }
    }

    /// True when both hold the same weights and bias.
    pub fn same_weights(&self, other: &Self) -> bool {
        self.panels == other.panels && self.bias == other.bias
    }

    /// Row `o` of the weight (`d_in` values), e.g. a token's embedding.
    pub fn row(&self, o: usize) -> Vec<f32> {
        let base = (o / PANEL) * self.d_in * PANEL + o % PANEL;
        match &self.panels {
            Panels::F32(p) => (0..self.d_in).map(|c| p[base + c * PANEL]).collect(),
            Panels::F16(p) => (0..self.d_in)
                .map(|c| p[base + c * PANEL].to_f32())
                .collect(),
        }
    }

    /// `x` (`[m, d_in]`, row-major) -> `[m, d_out]`.
    pub fn forward(&self, x: &[f32], m: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * self.d_out];
        self.forward_into(x, m, &mut out);
        out
    }

    /// `out` (`[m, d_out]`) = `x` (`[m, d_in]`) times the weight, plus the bias; both
    /// threads of work give every output the same arithmetic.
    pub fn forward_into(&self, x: &[f32], m: usize, out: &mut [f32]) {
        match (&self.panels, m >= ROW_TILED_FROM) {
            (Panels::F32(p), true) => self.forward_row_tiled(p, x, out),
            (Panels::F32(p), false) => self.forward_panel_split(p, x, m, out),
            (Panels::F16(p), true) => self.forward_row_tiled(p, x, out),
            (Panels::F16(p), false) => self.forward_panel_split(p, x, m, out),
        }
        if let Some(b) = &self.bias {
            out.chunks_mut(self.d_out)
                .for_each(|row| row.iter_mut().zip(b).for_each(|(o, b)| *o += b));
        }
    }

    /// Few rows: tasks take groups of panels (weights are read once in all).
    fn forward_panel_split<W: PanelWeight>(
        &self,
        panels: &[W],
        x: &[f32],
        m: usize,
        out: &mut [f32],
    ) {
        let k = self.d_in;
        let n_panels = self.d_out.div_ceil(PANEL);
        let mut tmp = vec![0f32; n_panels * m * PANEL];
        tmp.par_chunks_mut(PANELS_PER_TASK * m * PANEL)
            .enumerate()
            .for_each(|(task, chunk)| {
                for (i, tile) in chunk.chunks_mut(m * PANEL).enumerate() {
                    let p = task * PANELS_PER_TASK + i;
                    gemm_packed(
                        x,
                        k,
                        m,
                        k,
                        &panels[p * k * PANEL..(p + 1) * k * PANEL],
                        PANEL,
                        tile,
                        PANEL,
                    );
                }
            });
        let n = self.d_out;
        for p in 0..n_panels {
            let width = PANEL.min(n - p * PANEL);
            for r in 0..m {
                let src = &tmp[(p * m + r) * PANEL..(p * m + r) * PANEL + width];
                out[r * n + p * PANEL..r * n + p * PANEL + width].copy_from_slice(src);
            }
        }
    }

    /// Many rows: tasks take blocks of rows and write the output in place.
    fn forward_row_tiled<W: PanelWeight>(&self, panels: &[W], x: &[f32], out: &mut [f32]) {
        let (k, n) = (self.d_in, self.d_out);
        let padded = n.div_ceil(PANEL) * PANEL;
        out.par_chunks_mut(TILE_ROWS * n)
            .enumerate()
            .for_each(|(t, out_rows)| {
                let rows = out_rows.len() / n;
                let xs = &x[t * TILE_ROWS * k..(t * TILE_ROWS + rows) * k];
                if padded == n {
                    gemm_packed(xs, k, rows, k, panels, n, out_rows, n);
                } else {
                    let mut tile = vec![0f32; rows * padded];
                    gemm_packed(xs, k, rows, k, panels, padded, &mut tile, padded);
                    for (o, t) in out_rows.chunks_mut(n).zip(tile.chunks(padded)) {
                        o.copy_from_slice(&t[..n]);
                    }
                }
            });
    }
}

/// Packs `w(o, c)` (`d_out` outputs of `d_in` inputs) into panels of [`PANEL`] outputs,
/// `[d_in][PANEL]` each, zero-padded past `d_out`.
pub fn pack_panels<W: Copy + Default>(
    d_out: usize,
    d_in: usize,
    w: impl Fn(usize, usize) -> W,
) -> Vec<W> {
    let n_panels = d_out.div_ceil(PANEL);
    let mut panels = vec![W::default(); n_panels * d_in * PANEL];
    for o in 0..d_out {
        let (p, lane) = (o / PANEL, o % PANEL);
        let base = p * d_in * PANEL;
        for c in 0..d_in {
            panels[base + c * PANEL + lane] = w(o, c);
        }
    }
    panels
}

/// Single-threaded product: `out[r][0..n_padded]` (row stride `ldo`) = `x[r][0..k]`
/// (row stride `ldx`) times the packed weights of `n_padded / PANEL` panels.
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed<W: PanelWeight>(
    x: &[f32],
    ldx: usize,
    m: usize,
    k: usize,
    panels: &[W],
    n_padded: usize,
    out: &mut [f32],
    ldo: usize,
) {
    assert!(m == 0 || (x.len() >= (m - 1) * ldx + k && out.len() >= (m - 1) * ldo + n_padded));
    assert!(panels.len() >= n_padded * k && n_padded.is_multiple_of(PANEL));
    let simd = simd_level();
    for p in 0..n_padded / PANEL {
        let panel = &panels[p * k * PANEL..(p + 1) * k * PANEL];
        panel_product(x, ldx, m, k, panel, &mut out[p * PANEL..], ldo, simd);
    }
}

/// Which kernel the CPU can run: 0 portable, 1 AVX2/FMA, 2 AVX-512.
fn simd_level() -> u8 {
    let f = super::features::features();
    if f.avx512f {
        2
    } else if f.avx2_fma() && f.f16c {
        1
    } else {
        0
    }
}

/// `out[r][0..32] = x_r . panel` for every row `r`: blocks of up to 8 rows (AVX-512); on
/// AVX2 up to 4 rows in one whole-panel pass, more in 6-row half-panel blocks (see below);
/// else blocks of 4 (portable). Every kernel does the same fused multiply-adds in the same
/// order per output.
/// Callers guarantee `x` holds `m` rows of stride `ldx` and `out` `m` rows of stride `ldo`.
#[allow(clippy::too_many_arguments)]
fn panel_product<W: PanelWeight>(
    x: &[f32],
    ldx: usize,
    m: usize,
    k: usize,
    panel: &[W],
    out: &mut [f32],
    ldo: usize,
    simd: u8,
) {
    let (px, po, pw) = (x.as_ptr(), out.as_mut_ptr(), panel.as_ptr());
    let mut r = 0;
    while r < m {
        // SAFETY: rows r..r+rows lie inside `x` and `out` (asserted by `gemm_packed`),
        // and the SIMD kernels only run where the CPU has their features.
        unsafe {
            let (xr, or) = (px.add(r * ldx), po.add(r * ldo));
            #[cfg(target_arch = "x86_64")]
            if simd >= 2 {
                let rows = 8.min(m - r);
                match rows {
                    8 => kernel_avx512::<W, 8>(xr, ldx, k, pw, or, ldo),
                    7 => kernel_avx512::<W, 7>(xr, ldx, k, pw, or, ldo),
                    6 => kernel_avx512::<W, 6>(xr, ldx, k, pw, or, ldo),
                    5 => kernel_avx512::<W, 5>(xr, ldx, k, pw, or, ldo),
                    4 => kernel_avx512::<W, 4>(xr, ldx, k, pw, or, ldo),
                    3 => kernel_avx512::<W, 3>(xr, ldx, k, pw, or, ldo),
                    2 => kernel_avx512::<W, 2>(xr, ldx, k, pw, or, ldo),
                    _ => kernel_avx512::<W, 1>(xr, ldx, k, pw, or, ldo),
                }
                r += rows;
                continue;
            }
            #[cfg(target_arch = "x86_64")]
            if simd == 1 {
                // 16 vector registers. Up to 4 rows in all (decoder steps, memory-bound):
                // all 32 columns in one pass so the panel streams once (3-4 rows spill
                // accumulators, which costs less than a second pass here). More rows:
                // 6 rows x 16 columns (12 accumulators, no spill), twice per panel, and
                // a remainder of 1-2 rows in one pass.
                let left = m - r;
                if m <= ROW_BLOCK || left <= 2 {
                    match left {
                        4 => kernel_avx2::<W, 4, 4>(xr, ldx, k, pw, or, ldo),
                        3 => kernel_avx2::<W, 3, 4>(xr, ldx, k, pw, or, ldo),
                        2 => kernel_avx2::<W, 2, 4>(xr, ldx, k, pw, or, ldo),
                        _ => kernel_avx2::<W, 1, 4>(xr, ldx, k, pw, or, ldo),
                    }
                    r += left;
                    continue;
                }
                let rows = AVX2_ROWS.min(left);
                for half in 0..2 {
                    let (w, o) = (pw.add(16 * half), or.add(16 * half));
                    match rows {
                        6 => kernel_avx2::<W, 6, 2>(xr, ldx, k, w, o, ldo),
                        5 => kernel_avx2::<W, 5, 2>(xr, ldx, k, w, o, ldo),
                        4 => kernel_avx2::<W, 4, 2>(xr, ldx, k, w, o, ldo),
                        _ => kernel_avx2::<W, 3, 2>(xr, ldx, k, w, o, ldo),
                    }
                }
                r += rows;
                continue;
            }
            let rows = ROW_BLOCK.min(m - r);
            kernel_portable(xr, ldx, rows, k, pw, or, ldo);
            r += rows;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512<W: PanelWeight, const M: usize>(
    px: *const f32,
    ldx: usize,
    k: usize,
    pw: *const W,
    po: *mut f32,
    ldo: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; M];
    for c in 0..k {
        let w = [
            W::load16(pw.add(c * PANEL)),
            W::load16(pw.add(c * PANEL + 16)),
        ];
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let xb = _mm512_set1_ps(*px.add(r * ldx + c));
            acc_r[0] = _mm512_fmadd_ps(xb, w[0], acc_r[0]);
            acc_r[1] = _mm512_fmadd_ps(xb, w[1], acc_r[1]);
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        _mm512_storeu_ps(po.add(r * ldo), acc_r[0]);
        _mm512_storeu_ps(po.add(r * ldo + 16), acc_r[1]);
    }
}

/// `V` vectors of 8 columns of a panel (`pw` points at the first of them) for `M` rows:
/// `V = 4` streams all 32 columns once (few rows), `V = 2` does half a panel per call so
/// 6 rows of accumulators fit the 16 registers (many rows).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn kernel_avx2<W: PanelWeight, const M: usize, const V: usize>(
    px: *const f32,
    ldx: usize,
    k: usize,
    pw: *const W,
    po: *mut f32,
    ldo: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); V]; M];
    for c in 0..k {
        let mut w = [_mm256_setzero_ps(); V];
        for (l, wl) in w.iter_mut().enumerate() {
            *wl = W::load8(pw.add(c * PANEL + 8 * l));
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let xb = _mm256_set1_ps(*px.add(r * ldx + c));
            for l in 0..V {
                acc_r[l] = _mm256_fmadd_ps(xb, w[l], acc_r[l]);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (l, a) in acc_r.iter().enumerate() {
            _mm256_storeu_ps(po.add(r * ldo + 8 * l), *a);
        }
    }
}

/// Same arithmetic as the SIMD kernels (one fused multiply-add per input, in order).
unsafe fn kernel_portable<W: PanelWeight>(
    px: *const f32,
    ldx: usize,
    rows: usize,
    k: usize,
    pw: *const W,
    po: *mut f32,
    ldo: usize,
) {
    for r in 0..rows {
        let mut acc = [0f32; PANEL];
        for c in 0..k {
            let xv = *px.add(r * ldx + c);
            for (l, a) in acc.iter_mut().enumerate() {
                *a = xv.mul_add((*pw.add(c * PANEL + l)).to_f32(), *a);
            }
        }
        std::ptr::copy_nonoverlapping(acc.as_ptr(), po.add(r * ldo), PANEL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_product_and_is_row_count_invariant() {
        let (k, n) = (70, 45);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 31 % 17) as f32 - 8.0) / 9.0)
            .collect();
        let x: Vec<f32> = (0..7 * k)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
            .collect();
        let m = HostMatrix::new(&w, n, k, Some((0..n).map(|j| j as f32).collect()));
        let y7 = m.forward(&x, 7);
        for i in 0..7 {
            let y1 = m.forward(&x[i * k..(i + 1) * k], 1);
            assert_eq!(
                &y7[i * n..(i + 1) * n],
                &y1[..],
                "row {i} differs alone vs batched"
            );
            for j in 0..n {
                let naive: f32 =
                    (0..k).map(|c| x[i * k + c] * w[j * k + c]).sum::<f32>() + j as f32;
                assert!((naive - y1[j]).abs() < 1e-3, "{naive} vs {}", y1[j]);
            }
        }
    }

    #[test]
    fn row_tiled_path_gives_each_row_the_few_row_result() {
        let (k, n, m) = (33, 70, 150);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 29 % 19) as f32 - 9.0) / 8.0)
            .collect();
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 11 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let h = HostMatrix::new(&w, n, k, Some((0..n).map(|j| j as f32 * 0.5).collect()));
        let all = h.forward(&x, m);
        for r in [0, 7, 95, 96, 149] {
            assert_eq!(
                &all[r * n..(r + 1) * n],
                &h.forward(&x[r * k..(r + 1) * k], 1)[..],
                "row {r}"
            );
        }
    }

    #[test]
    fn half_weights_give_the_single_precision_bits() {
        // Weights that are exact halves: the compact matrix must hold them as f16 and
        // give bit-identical outputs at every row count and path (few rows, row-tiled).
        let (k, n) = (70, 45);
        let w: Vec<f32> = (0..n * k)
            .map(|i| half::f16::from_f32(((i * 31 % 17) as f32 - 8.0) / 9.3).to_f32())
            .collect();
        let bias = Some((0..n).map(|j| j as f32 * 0.1).collect::<Vec<_>>());
        let (full, compact) = (
            HostMatrix::new(&w, n, k, bias.clone()),
            HostMatrix::new_compact(&w, n, k, bias),
        );
        assert!(compact.is_half() && !full.is_half());
        assert_eq!(compact.weight_bytes() * 2, full.weight_bytes());
        for m in [1, 3, 7, 70] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.7)
                .collect();
            assert_eq!(full.forward(&x, m), compact.forward(&x, m), "{m} rows");
        }
        assert_eq!(full.row(44), compact.row(44));
        // One value that is not a half keeps the whole matrix in f32.
        let mut w2 = w.clone();
        w2[5] = 0.1;
        assert!(!HostMatrix::new_compact(&w2, n, k, None).is_half());
    }

    #[test]
    fn portable_and_simd_kernels_agree_bitwise() {
        // Every row count up to 13 (each AVX2 block shape: 1-2 rows whole-panel, 3-6 rows
        // half-panel, and their mixes; AVX-512 blocks of up to 8) must equal the portable kernel.
        let (k, n) = (64, 40);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0)
            .collect();
        let x: Vec<f32> = (0..13 * k)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
            .collect();
        let m = HostMatrix::new(&w, n, k, None);
        let Panels::F32(panels) = &m.panels else {
            panic!("f32 weights expected")
        };
        check_kernels_agree(&x, k, &panels[..k * PANEL]);
        // The same with half-precision panels (weights rounded to halves).
        let halves: Vec<f32> = w.iter().map(|v| half::f16::from_f32(*v).to_f32()).collect();
        let m = HostMatrix::new_compact(&halves, n, k, None);
        let Panels::F16(panels) = &m.panels else {
            panic!("f16 weights expected")
        };
        check_kernels_agree(&x, k, &panels[..k * PANEL]);
    }

    fn check_kernels_agree<W: PanelWeight>(x: &[f32], k: usize, panel: &[W]) {
        for rows in 1..=13 {
            let (mut a, mut b) = (vec![0f32; rows * PANEL], vec![0f32; rows * PANEL]);
            panel_product(x, k, rows, k, panel, &mut a, PANEL, simd_level());
            panel_product(x, k, rows, k, panel, &mut b, PANEL, 0);
            assert_eq!(a, b, "{rows} rows");
            if simd_level() >= 1 {
                panel_product(x, k, rows, k, panel, &mut b, PANEL, 1);
                assert_eq!(a, b, "AVX2 and AVX-512 kernels differ at {rows} rows");
            }
        }
    }
}
