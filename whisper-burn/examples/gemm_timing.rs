//! Times the host GEMM: few rows at the vocabulary projection's shape
//! (`[m, 512] x [512, 51865]`) and the encoder's 1500-row shapes.
//! `cargo run --release --example gemm_timing` (best of the repetitions).
use std::time::Instant;
use whisper_burn::cpu::gemm::HostMatrix;

fn time(m: usize, k: usize, n: usize, reps: usize) {
    let w: Vec<f32> = (0..n * k)
        .map(|i| ((i % 97) as f32 - 48.0) / 100.0)
        .collect();
    let h = HostMatrix::new(&w, n, k, None);
    let x: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 / 13.0).collect();
    let _ = h.forward(&x, m);
    let mut ms = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(h.forward(&x, m));
        ms = ms.min(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "[{m:>4} x {k}] x [{k} x {n:>5}] {ms:7.2} ms  {:6.1} GFLOP/s",
        2.0 * (m * k * n) as f64 / ms / 1e6
    );
}

fn main() {
    // `GEMM_SHAPES=encoder` skips the few-row shapes.
    if std::env::var("GEMM_SHAPES").as_deref() != Ok("encoder") {
        for m in [1usize, 2, 4, 5, 8, 9, 16, 32] {
            time(m, 512, 51865, 20);
        }
    }
    for (k, n) in [(512, 512), (512, 2048), (2048, 512), (1536, 512)] {
        time(1500, k, n, 8);
    }
}
