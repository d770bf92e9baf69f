//! Times a decoder's per-window set-up (cross-attention keys/values) on a real model.
use std::time::Instant;
use whisper_burn::backend::CpuBackend as B;
use whisper_burn::Pipeline;
fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or("weights/models/base".into());
    let p = Pipeline::<B>::load(&dir, &Default::default()).expect("load");
    let enc = p
        .model
        .encode(&[vec![0f32; p.config().num_mel_bins * 3000]])
        .expect("encode");
    for _ in 0..5 {
        let t = Instant::now();
        let mut st = p.model.decoder.new_state(enc.clone());
        let t1 = t.elapsed().as_secs_f64() * 1e3;
        let h = p
            .model
            .decoder
            .forward(&[vec![50258, 50259, 50360, 50364]], &mut st)
            .unwrap();
        let _ = whisper_burn::decoding::greedy::host_rows(p.model.decoder.logits(h)).unwrap();
        println!(
            "new_state {t1:.1} ms, + prompt forward and logits {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3 - t1
        );
    }
}
