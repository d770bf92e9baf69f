//! The logit rules on the device hide what the host's hide: for many contexts (start,
//! text, one and two timestamps, decreasing timestamps) and random logits with heavy
//! timestamp mass (so the timestamp preference fires too), the device's greedy choice
//! equals the host's, and its log-probability agrees.
use std::path::Path;

use burn::prelude::*;
use whisper_burn::backend::CpuBackend;
use whisper_burn::decoding::device::DeviceRules;
use whisper_burn::decoding::greedy::choose_on_host;
use whisper_burn::decoding::LogitFilters;
use whisper_burn::testing::{write_hf_checkpoint, SplitMix, TinySpec};
use whisper_burn::Pipeline;

type B = CpuBackend;

#[test]
fn device_rules_choose_what_the_host_rules_choose() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("device_rules");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_hf_checkpoint(&dir, &TinySpec::default()).unwrap();
    let p = Pipeline::<B>::load(dir.to_str().unwrap(), &Default::default()).unwrap();
    let (g, s) = (&p.model.generation, &p.tokenizer.special);
    let vocab = p.config().vocab_size;
    let tb = s.timestamp_begin;
    let contexts: Vec<Vec<u32>> = vec![
        vec![],
        vec![220],
        vec![tb],
        vec![tb + 3, 400],
        vec![tb + 3, 400, tb + 9],
        vec![tb + 3, 400, tb + 9, tb + 9],
        vec![tb, 11, tb + 40, tb + 40, 12],
        vec![5, 6, 7],
    ];
    let mut rng = SplitMix::new(11);
    let mut compared = 0;
    for timestamps in [false, true] {
        let filters = LogitFilters::new(
            &p.tokenizer,
            &g.suppress_tokens,
            &g.begin_suppress_tokens,
            true,
            timestamps,
            vocab,
        );
        let rules = DeviceRules::<B>::new(&filters, &Default::default());
        for round in 0..6 {
            // Rounds alternate between text-heavy and timestamp-heavy logits.
            let ts_bias = if round % 2 == 0 { 0.0 } else { 6.0 };
            let rows: Vec<Vec<f32>> = contexts
                .iter()
                .map(|_| {
                    (0..vocab)
                        .map(|t| {
                            let bias = if t as u32 >= tb { ts_bias } else { 0.0 };
                            4.0 * rng.normal() + bias
                        })
                        .collect()
                })
                .collect();
            let flat: Vec<f32> = rows.concat();
            let logits = Tensor::<B, 2>::from_data(
                TensorData::new(flat, [rows.len(), vocab]),
                &Default::default(),
            );
            let refs: Vec<&[u32]> = contexts.iter().map(|c| c.as_slice()).collect();
            let device = rules.decide(logits, &refs, None).unwrap();
            for ((mut l, ctx), d) in rows.into_iter().zip(&contexts).zip(&device) {
                let (token, logprob) = choose_on_host(&mut l, ctx, None, &filters);
                assert_eq!(
                    d.token, token,
                    "timestamps {timestamps}, round {round}, context {ctx:?}"
                );
                assert!(
                    (d.logprob - logprob).abs() < 1e-3,
                    "{} vs {logprob}",
                    d.logprob
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 2 * 6 * contexts.len());
}
