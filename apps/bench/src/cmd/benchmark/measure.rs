//! Timed runs on one backend: load the main model once, then per configuration a warm-up
//! and a timed pass over the data set (wall clock around `transcribe_batch`, audio already
//! decoded; the engine synchronises the device before it returns).
use super::{
    draft_config_name, draft_length, model_label, models, spec_point_draft, speculative_drafts, BenchmarkArgs,
    ConfigRun, Corpus, DeviceRuns,
};
use crate::device::{BackendTask, DeviceKind};
use anyhow::{bail, Context as _, Result};
use burn::prelude::Backend;
use indicatif::ProgressBar;
use spec_engine::{DraftSpec, Engine, EngineConfig};
use std::sync::Arc;
use std::time::Instant;
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
    type Output = DeviceRuns;
    fn run<B: Backend>(self, device: B::Device, kind: DeviceKind) -> Result<DeviceRuns> {
        let ctx = self.0;
        let args = ctx.args;
        let (main, main_load_s) = ctx.load_main::<B>(&args.main, &device, kind)?;
        let mut runs = Vec::new();

        let greedy = Engine::with_main(main.clone(), EngineConfig { draft: DraftSpec::None, draft_length: draft_length(args) }, &device)?;
        let mut run = ctx.time("greedy", kind, |refs| Ok(greedy.transcribe_batch(refs, ctx.opts)?))?;
        run.is_baseline = true;
        run.load_s = main_load_s;
        runs.push(run);
        drop(greedy);

        for draft in speculative_drafts(args)? {
            let name = draft_config_name(args, &draft);
            let t0 = Instant::now();
            let engine = Engine::with_main(main.clone(), EngineConfig { draft: draft.clone(), draft_length: draft_length(args) }, &device)
                .with_context(|| format!("preparing draft {draft} for {}", args.main))?;
            let load_s = t0.elapsed().as_secs_f64();
            ctx.bar.suspend(|| eprintln!("[{kind}] draft {draft} ready in {load_s:.2} s"));
            let mut run = ctx.time(&name, kind, |refs| Ok(engine.transcribe_batch(refs, ctx.opts)?))?;
            run.load_s = load_s;
            runs.push(run);
        }
        Ok(DeviceRuns { device: kind, model_loads: vec![(args.main.clone(), main_load_s)], runs })
    }
}

impl BackendTask for BeamTask<'_> {
    type Output = DeviceRuns;
    fn run<B: Backend>(self, device: B::Device, kind: DeviceKind) -> Result<DeviceRuns> {
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
                let mut decoder = BeamSearchDecoder { beam_size: b, patience: 1.0, length_penalty: None };
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
                let engine = Engine::with_main(pipeline.clone(), EngineConfig { draft: draft.clone(), draft_length: draft_length(args) }, &device)
                    .with_context(|| format!("preparing draft {draft} for {model}"))?;
                let draft_load_s = t0.elapsed().as_secs_f64();
                let name = format!("{label}/{}", draft_config_name(args, draft));
                let mut run = ctx.time(&name, kind, |refs| Ok(engine.transcribe_batch(refs, ctx.opts)?))?;
                run.group = label.clone();
                run.spec_point_of = Some(label.clone());
                run.load_s = draft_load_s;
                runs.push(run);
            }
        }
        Ok(DeviceRuns { device: kind, model_loads, runs })
    }
}

impl Context<'_> {
    fn load_main<B: Backend>(&self, model: &str, device: &B::Device, kind: DeviceKind) -> Result<(Arc<Pipeline<B>>, f64)> {
        self.bar.set_message(format!("loading {}", model_label(model)));
        let t0 = Instant::now();
        let pipeline = Pipeline::<B>::load(model, device).with_context(|| format!("loading model {model} on {kind}"))?;
        let load_s = t0.elapsed().as_secs_f64();
        self.bar.suspend(|| eprintln!("[{kind}] loaded {model} in {load_s:.2} s"));
        Ok((Arc::new(pipeline), load_s))
    }

    /// Warm-up batches (discarded), then every batch of the data set timed.
    fn time(
        &self,
        name: &str,
        kind: DeviceKind,
        mut transcribe: impl FnMut(&[&[f32]]) -> Result<Vec<Transcript>>,
    ) -> Result<ConfigRun> {
        let batch = self.args.batch_size.max(1);
        let audio = &self.corpus.audio;
        let ids = |start: usize, len: usize| {
            self.corpus.utterances[start..start + len].iter().map(|u| u.id.as_str()).collect::<Vec<_>>().join(", ")
        };

        self.bar.set_message(format!("warm-up {name}"));
        for (c, chunk) in audio.chunks(batch).take(self.args.warmup).enumerate() {
            let refs: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
            transcribe(&refs).with_context(|| format!("{name} on {kind}: warm-up on {}", ids(c * batch, chunk.len())))?;
        }

        self.bar.set_message(format!("{name} ({kind})"));
        let mut transcripts = Vec::with_capacity(audio.len());
        let mut wall_s = 0.0;
        for (c, chunk) in audio.chunks(batch).enumerate() {
            let refs: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
            let t0 = Instant::now();
            let out = transcribe(&refs).with_context(|| format!("{name} on {kind}: {}", ids(c * batch, chunk.len())))?;
            let latency = t0.elapsed().as_secs_f64();
            if out.len() != chunk.len() {
                bail!("{name} on {kind}: {} transcripts for a batch of {}", out.len(), chunk.len());
            }
            wall_s += latency;
            transcripts.extend(out.into_iter().map(|t| (latency, t)));
            self.bar.inc(chunk.len() as u64);
        }
        Ok(ConfigRun {
            name: name.to_string(),
            group: String::new(),
            is_baseline: false,
            device: kind,
            load_s: 0.0,
            beam: None,
            spec_point_of: None,
            wall_s,
            transcripts,
        })
    }
}
