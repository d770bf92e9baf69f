//! Timed runs on one backend: load the main model once, then per configuration a warm-up
//! and a timed pass over the data set (wall clock around `transcribe_batch`, audio already
//! decoded; the engine synchronises the device before it returns).
use super::{
    draft_config_name, draft_length, model_label, models, spec_point_draft, speculative_drafts,
    BenchmarkArgs, ConfigRun, Corpus, DeviceRuns,
};
use anyhow::{bail, Context as _, Result};
use indicatif::ProgressBar;
use spec_engine::{DraftSpec, Engine, EngineConfig};
use std::sync::Arc;
use std::time::Instant;
use whisper_burn::backend::WhisperBackend;
use whisper_burn::backend::{BackendTask, DeviceKind};
use whisper_burn::decoding::beam::BeamSearchDecoder;
use whisper_burn::{DecodeOptions, Pipeline, Transcript};

/// What every run needs.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub args: &'a BenchmarkArgs,
    pub corpus: &'a Corpus,
    pub opts: &'a DecodeOptions,
    pub bar: &'a ProgressBar,
}

/// Greedy baseline, then each draft, sharing one loaded main model.
pub struct SpeculativeTask<'a>(pub Context<'a>);

/// Every beam size of every model, plus the speculative greedy point per model.
pub struct BeamTask<'a>(pub Context<'a>);

impl BackendTask for SpeculativeTask<'_> {
    type Output = Result<DeviceRuns>;
    fn run<B: WhisperBackend>(self, device: B::Device, kind: DeviceKind) -> Result<DeviceRuns> {
        let ctx = self.0;
        let args = ctx.args;
        let (main, main_load_s) = ctx.load_main::<B>(&args.main, &device, kind)?;

        let greedy = Engine::with_main(
            main.clone(),
            EngineConfig {
                draft: DraftSpec::None,
                draft_length: draft_length(args),
            },
            &device,
        )?;
        let mut configs = vec![("greedy".to_string(), greedy, main_load_s)];
        for draft in speculative_drafts(args)? {
            let t0 = Instant::now();
            let engine = Engine::with_main(
                main.clone(),
                EngineConfig {
                    draft: draft.clone(),
                    draft_length: draft_length(args),
                },
                &device,
            )
            .with_context(|| format!("preparing draft {draft} for {}", args.main))?;
            let load_s = t0.elapsed().as_secs_f64();
            ctx.bar
                .suspend(|| eprintln!("[{kind}] draft {draft} ready in {load_s:.2} s"));
            configs.push((draft_config_name(args, &draft), engine, load_s));
        }
        // Interleaved: every batch goes through every configuration before the next batch,
        // so slow drift of a shared machine's speed falls on all of them alike.
        let names: Vec<String> = configs.iter().map(|c| c.0.clone()).collect();
        let mut runs = ctx.time_interleaved(&names, kind, |i, refs| {
            Ok(configs[i].1.transcribe_batch(refs, ctx.opts)?)
        })?;
        for (run, config) in runs.iter_mut().zip(&configs) {
            run.load_s = config.2;
        }
        runs[0].is_baseline = true;
        Ok(DeviceRuns {
            device: kind,
            model_loads: vec![(args.main.clone(), main_load_s)],
            runs,
        })
    }
}

impl BackendTask for BeamTask<'_> {
    type Output = Result<DeviceRuns>;
    fn run<B: WhisperBackend>(self, device: B::Device, kind: DeviceKind) -> Result<DeviceRuns> {
        let ctx = self.0;
        let args = ctx.args;
        let mut beams: Vec<usize> = Vec::new();
        for &b in &args.beams {
            if !beams.contains(&b) {
                beams.push(b);
            }
        }
        let spec_draft = spec_point_draft(args)?;
        let mut runs = Vec::new();
        let mut model_loads = Vec::new();
        for model in models(args) {
            let label = model_label(&model);
            let (pipeline, load_s) = ctx.load_main::<B>(&model, &device, kind)?;
            model_loads.push((model.clone(), load_s));
            for &b in &beams {
                let mut decoder = BeamSearchDecoder {
                    beam_size: b,
                    patience: 1.0,
                    length_penalty: None,
                };
                let mut run = ctx.time(&format!("{label}/beam{b}"), kind, |refs| {
                    Ok(pipeline.transcribe_batch(refs, ctx.opts, &mut decoder)?)
                })?;
                run.group = label.clone();
                run.is_baseline = b == 1;
                run.beam = Some((label.clone(), b));
                run.load_s = load_s;
                runs.push(run);
            }
            if let Some(draft) = &spec_draft {
                let t0 = Instant::now();
                let engine = Engine::with_main(
                    pipeline.clone(),
                    EngineConfig {
                        draft: draft.clone(),
                        draft_length: draft_length(args),
                    },
                    &device,
                )
                .with_context(|| format!("preparing draft {draft} for {model}"))?;
                let draft_load_s = t0.elapsed().as_secs_f64();
                let name = format!("{label}/{}", draft_config_name(args, draft));
                let mut run = ctx.time(&name, kind, |refs| {
                    Ok(engine.transcribe_batch(refs, ctx.opts)?)
                })?;
                run.group = label.clone();
                run.spec_point_of = Some(label.clone());
                run.load_s = draft_load_s;
                runs.push(run);
            }
        }
        Ok(DeviceRuns {
            device: kind,
            model_loads,
            runs,
        })
    }
}

impl Context<'_> {
    fn load_main<B: WhisperBackend>(
        &self,
        model: &str,
        device: &B::Device,
        kind: DeviceKind,
    ) -> Result<(Arc<Pipeline<B>>, f64)> {
        self.bar
            .set_message(format!("loading {}", model_label(model)));
        let t0 = Instant::now();
        let pipeline = Pipeline::<B>::load(model, device)
            .with_context(|| format!("loading model {model} on {kind}"))?;
        let load_s = t0.elapsed().as_secs_f64();
        self.bar
            .suspend(|| eprintln!("[{kind}] loaded {model} in {load_s:.2} s"));
        Ok((Arc::new(pipeline), load_s))
    }

    /// Warm-up batches (discarded), then every batch of the data set timed.
    fn time(
        &self,
        name: &str,
        kind: DeviceKind,
        mut transcribe: impl FnMut(&[&[f32]]) -> Result<Vec<Transcript>>,
    ) -> Result<ConfigRun> {
        let mut runs =
            self.time_interleaved(&[name.to_string()], kind, |_, refs| transcribe(refs))?;
        Ok(runs.remove(0))
    }

    /// Warm-up batches of each configuration (discarded), then each batch of the data set
    /// timed under every configuration in turn (`transcribe(config, batch)`), the order
    /// rotating from batch to batch.
    fn time_interleaved(
        &self,
        names: &[String],
        kind: DeviceKind,
        mut transcribe: impl FnMut(usize, &[&[f32]]) -> Result<Vec<Transcript>>,
    ) -> Result<Vec<ConfigRun>> {
        let batch = self.args.batch_size.max(1);
        let audio = &self.corpus.audio;
        let ids = |start: usize, len: usize| {
            self.corpus.utterances[start..start + len]
                .iter()
                .map(|u| u.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (i, name) in names.iter().enumerate() {
            self.bar.set_message(format!("warm-up {name}"));
            for (c, chunk) in audio.chunks(batch).take(self.args.warmup).enumerate() {
                let refs: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
                transcribe(i, &refs).with_context(|| {
                    format!(
                        "{name} on {kind}: warm-up on {}",
                        ids(c * batch, chunk.len())
                    )
                })?;
            }
        }
        self.bar
            .set_message(format!("{} ({kind})", names.join(", ")));
        let mut runs: Vec<ConfigRun> = names
            .iter()
            .map(|n| ConfigRun::empty(n, kind, audio.len()))
            .collect();
        for (c, chunk) in audio.chunks(batch).enumerate() {
            let refs: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
            for turn in 0..names.len() {
                let i = (c + turn) % names.len();
                let t0 = Instant::now();
                let out = transcribe(i, &refs).with_context(|| {
                    format!("{} on {kind}: {}", names[i], ids(c * batch, chunk.len()))
                })?;
                let latency = t0.elapsed().as_secs_f64();
                if out.len() != chunk.len() {
                    bail!(
                        "{} on {kind}: {} transcripts for a batch of {}",
                        names[i],
                        out.len(),
                        chunk.len()
                    );
                }
                runs[i].wall_s += latency;
                runs[i]
                    .transcripts
                    .extend(out.into_iter().map(|t| (latency, t)));
                self.bar.inc(chunk.len() as u64);
            }
        }
        Ok(runs)
    }
}

impl ConfigRun {
    fn empty(name: &str, device: DeviceKind, capacity: usize) -> Self {
        ConfigRun {
            name: name.to_string(),
            group: String::new(),
            is_baseline: false,
            device,
            load_s: 0.0,
            beam: None,
            spec_point_of: None,
            wall_s: 0.0,
            transcripts: Vec::with_capacity(capacity),
        }
    }
}
