//! Times decoder steps of a real model: one token vs several tokens per pass.
//! `cargo run --release --example step_timing -- weights/models/base`
//! (`STEP_NS=1,6` tokens per row, `STEP_BATCH=8` rows, `STEP_REPS=10`)
use std::time::Instant;
use whisper_burn::backend::CpuBackend as B;
use whisper_burn::decoding::greedy::host_rows;
use whisper_burn::Pipeline;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or("weights/models/base".into());
    let p = Pipeline::<B>::load(&dir, &Default::default()).expect("load");
    let window = vec![0f32; p.config().num_mel_bins * 3000];
    let t = Instant::now();
    let enc = p.model.encode(&[window]).expect("encode");
    let _ = host_rows(
        p.model.decoder.logits(
            p.model
                .decoder
                .forward(&[vec![1]], &mut p.model.decoder.new_state(enc.clone()))
                .unwrap(),
        ),
    );
    println!("encode {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let ns: Vec<usize> = std::env::var("STEP_NS")
        .map(|v| v.split(',').map(|x| x.parse().unwrap()).collect())
        .unwrap_or(vec![1, 2, 5, 9]);
    let batch: usize = std::env::var("STEP_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let enc = burn::tensor::Tensor::cat(vec![enc; batch], 0);
    for n in ns {
        let mut st = p.model.decoder.new_state(enc.clone());
        p.model
            .decoder
            .forward(&vec![vec![50258, 50259, 50360, 50364]; batch], &mut st)
            .unwrap();
        let reps: usize = std::env::var("STEP_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        let (mut fwd, mut lg) = (0.0, 0.0);
        for _ in 0..reps {
            (0..batch).for_each(|r| st.truncate(r, 4));
            let t = Instant::now();
            let h = p
                .model
                .decoder
                .forward(&vec![vec![440; n]; batch], &mut st)
                .unwrap();
            let h = {
                let d = h.clone().into_data();
                let _ = d;
                h
            };
            fwd += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let _ = host_rows(p.model.decoder.logits(h)).unwrap();
            lg += t.elapsed().as_secs_f64();
        }
        println!(
            "{batch} rows x {n} tokens: forward {:.2} ms, logits {:.2} ms",
            fwd * 1e3 / reps as f64,
            lg * 1e3 / reps as f64
        );
    }
}
