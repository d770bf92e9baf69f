//! The signal processing of word alignment, as openai-whisper's `timing.py` and
//! CTranslate2's `Whisper.align` do it: attention weights normalised over the tokens,
//! a median filter along time, and dynamic time warping of tokens against frames.

/// Standardises each frame's column of a `[tokens][frames]` matrix over the tokens
/// (population variance, no epsilon: CTranslate2's `LayerNorm(-2, 0)`).
pub fn normalize_over_tokens(x: &mut [f32], frames: usize) {
    let tokens = x.len() / frames.max(1);
    if tokens == 0 {
        return;
    }
    for f in 0..frames {
        let column = || (0..tokens).map(|t| x[t * frames + f]);
        let mean = column().sum::<f32>() / tokens as f32;
        let var = column().map(|v| (v - mean) * (v - mean)).sum::<f32>() / tokens as f32;
        let inv_std = 1.0 / var.sqrt();
        for t in 0..tokens {
            x[t * frames + f] = (x[t * frames + f] - mean) * inv_std;
        }
    }
}

/// Median of each `width`-wide window along every row of `[rows][frames]`, the row
/// reflected at its ends (no edge repeat); rows no longer than `width / 2` pass through.
pub fn median_filter_rows(x: &[f32], frames: usize, width: usize) -> Vec<f32> {
    let half = width / 2;
    if frames <= half || width < 2 {
        return x.to_vec();
    }
    let mut window = vec![0f32; 2 * half + 1];
    let mut out = vec![0f32; x.len()];
    for (row, out_row) in x.chunks(frames).zip(out.chunks_mut(frames)) {
        for (j, o) in out_row.iter_mut().enumerate() {
            for (slot, k) in window.iter_mut().zip(-(half as isize)..=half as isize) {
                *slot = row[reflect(j as isize + k, frames)];
            }
            window.sort_unstable_by(|a, b| a.total_cmp(b));
            *o = window[half];
        }
    }
    out
}

fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let i = i.abs();
    (if i >= n { 2 * n - i - 2 } else { i }) as usize
}

/// The cheapest monotonic path through `-x` (`[n][m]`, row-major) from `(0, 0)` to
/// `(n-1, m-1)`: each step moves down a row, right a frame, or both. Returns the path's
/// `(row, frame)` points. Ties go as in openai-whisper's `dtw_cpu`: diagonal only when
/// strictly cheapest, then up, else left.
pub fn negative_dtw(x: &[f32], n: usize, m: usize) -> Vec<(usize, usize)> {
    if n == 0 || m == 0 {
        return Vec::new();
    }
    let (rows, cols) = (n + 1, m + 1);
    let mut cost = vec![f32::INFINITY; rows * cols];
    let mut trace = vec![-1i8; rows * cols];
    cost[0] = 0.0;
    for j in 1..cols {
        for i in 1..rows {
            let c0 = cost[(i - 1) * cols + j - 1];
            let c1 = cost[(i - 1) * cols + j];
            let c2 = cost[i * cols + j - 1];
            let (c, t) = if c0 < c1 && c0 < c2 {
                (c0, 0)
            } else if c1 < c0 && c1 < c2 {
                (c1, 1)
            } else {
                (c2, 2)
            };
            cost[i * cols + j] = -x[(i - 1) * m + j - 1] + c;
            trace[i * cols + j] = t;
        }
    }
    (0..cols).for_each(|j| trace[j] = 2);
    (0..rows).for_each(|i| trace[i * cols] = 1);
    let (mut i, mut j) = (n, m);
    let mut path = Vec::with_capacity(n + m);
    while i > 0 || j > 0 {
        path.push((i.wrapping_sub(1), j.wrapping_sub(1)));
        match trace[i * cols + j] {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    path.reverse();
    // The corner steps (row or frame -1) only reach the origin; the path starts at (0, 0).
    path.retain(|(i, j)| *i < n && *j < m);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_columns_have_zero_mean_and_unit_variance() {
        let mut x = vec![1.0, 10.0, 3.0, 20.0, 5.0, 60.0];
        normalize_over_tokens(&mut x, 2);
        for f in 0..2 {
            let col: Vec<f32> = (0..3).map(|t| x[t * 2 + f]).collect();
            let mean: f32 = col.iter().sum::<f32>() / 3.0;
            let var: f32 = col.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 3.0;
            assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{col:?}");
        }
        assert!((x[0] + 1.2247449).abs() < 1e-5);
    }

    #[test]
    fn median_filter_reflects_at_the_edges() {
        // numpy: np.median over np.pad(x, 3, mode="reflect") windows gives the same.
        let x = [5.0, 1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0];
        let y = median_filter_rows(&x, 8, 7);
        assert_eq!(y, vec![2.0, 5.0, 3.0, 5.0, 4.0, 7.0, 4.0, 7.0]);
        assert_eq!(median_filter_rows(&x[..3], 3, 7), x[..3].to_vec());
    }

    #[test]
    fn dtw_follows_the_bright_diagonal() {
        // Row r is brightest at frames 2r and 2r + 1.
        let (n, m) = (3, 6);
        let x: Vec<f32> = (0..n * m)
            .map(|k| if (k % m) / 2 == k / m { 1.0 } else { 0.0 })
            .collect();
        let path = negative_dtw(&x, n, m);
        assert_eq!(path.first(), Some(&(0, 0)));
        assert_eq!(path.last(), Some(&(n - 1, m - 1)));
        let rows_at: Vec<usize> = (0..m)
            .map(|f| path.iter().find(|p| p.1 == f).unwrap().0)
            .collect();
        assert_eq!(rows_at, vec![0, 0, 1, 1, 2, 2]);
        for w in path.windows(2) {
            let (d0, d1) = (w[1].0 - w[0].0, w[1].1 - w[0].1);
            assert!(d0 <= 1 && d1 <= 1 && d0 + d1 >= 1, "{w:?}");
        }
    }
}
