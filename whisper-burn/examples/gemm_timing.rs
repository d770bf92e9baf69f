//! Times the few-row host GEMM at the vocabulary projection's shape (`[m, 512] x [512, 51865]`).
use std::time::Instant;
use whisper_burn::model::host_gemm::HostMatrix;

fn main() {
    let (k, n) = (512, 51865);
    let w: Vec<f32> = (0..n * k).map(|i| ((i % 97) as f32 - 48.0) / 100.0).collect();
    let h = HostMatrix::new(&w, n, k, None);
    for m in [1usize, 2, 4, 5, 8, 9, 16, 32] {
        let x: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 / 13.0).collect();
        let _ = h.forward(&x, m);
        let reps = 20;
        let t = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(h.forward(&x, m));
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        println!("m={m:<3} {ms:7.2} ms  {:6.1} GFLOP/s", 2.0 * (m * k * n) as f64 / ms / 1e6);
    }
}
