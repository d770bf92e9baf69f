//! The inference thread: a dedicated OS thread that loads the engine, then decodes one
//! batch at a time and answers each request on its own oneshot channel.
use crate::batcher::{Batch, Job, JobOutput};
use crate::config::ServerConfig;
use crate::errors::ApiError;
use crate::metrics::Metrics;
use spec_engine::{DraftLength, DraftSpec, Engine, EngineConfig};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use whisper_burn::backend::WhisperBackend;
use whisper_burn::vad::{transcribe_chunked_many, transcribe_speech, SileroVad, VadOptions};
use whisper_burn::{DecodeOptions, Transcript};

/// What clients need to know about the loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The id reported to clients.
    pub id: String,
    pub main: String,
    pub draft: String,
    pub multilingual: bool,
    pub device: String,
    pub load_s: f64,
}

/// Where the model stands.
#[derive(Debug, Clone)]
pub enum ModelStatus {
    Loading,
    Ready(Arc<ModelInfo>),
    Failed(String),
}

/// Starts the inference thread; it reports through `status` once loaded (or failed).
pub fn spawn<B: WhisperBackend>(
    config: &ServerConfig,
    device: B::Device,
    batches: Receiver<Batch>,
    status: watch::Sender<ModelStatus>,
    metrics: Arc<Metrics>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let config = config.clone();
    std::thread::Builder::new()
        .name("whisper-inference".into())
        .spawn(move || {
            let t0 = Instant::now();
            let model = match load::<B>(&config, &device) {
                Ok(e) => e,
                Err(msg) => {
                    tracing::error!("loading the model failed: {msg}");
                    status.send_replace(ModelStatus::Failed(msg.clone()));
                    for batch in batches {
                        fail_all(
                            batch.jobs,
                            &ApiError::inference_failed(format!("the model failed to load: {msg}")),
                        );
                    }
                    return;
                }
            };
            let engine = &model.engine;
            if !config.no_warmup {
                let silence = vec![0.0f32; whisper_burn::audio::SAMPLE_RATE as usize];
                if let Err(e) = engine.transcribe_batch(&[&silence], &DecodeOptions::default()) {
                    tracing::warn!("warm-up inference failed: {e}");
                }
            }
            let info = ModelInfo {
                id: config.model_id(),
                main: config.main.clone(),
                draft: engine.draft_name(),
                multilingual: engine.main.tokenizer.multilingual,
                device: config.device.to_string(),
                load_s: t0.elapsed().as_secs_f64(),
            };
            tracing::info!(
                "model `{}` loaded in {:.1} s (draft {}, multilingual {}, device {})",
                info.main,
                info.load_s,
                info.draft,
                info.multilingual,
                info.device
            );
            metrics.model_loaded.set(1);
            status.send_replace(ModelStatus::Ready(Arc::new(info)));
            for batch in batches {
                run_batch(&model, batch, &metrics);
            }
            tracing::debug!("inference thread finished");
        })
}

/// The engine, and the VAD when the server transcribes speech only or in VAD groups.
struct Loaded<B: WhisperBackend> {
    engine: Engine<B>,
    vad: Option<(SileroVad, VadOptions)>,
    /// `--batched`: uploads decoded as VAD groups, this many per engine call.
    groups_per_batch: Option<usize>,
}

fn load<B: WhisperBackend>(config: &ServerConfig, device: &B::Device) -> Result<Loaded<B>, String> {
    let vad = match config.vad || config.batched {
        true => {
            let opts = config.vad_options();
            opts.check().map_err(|e| e.to_string())?;
            let model = SileroVad::load(&config.vad_model).map_err(|e| e.to_string())?;
            Some((model, opts))
        }
        false => None,
    };
    let engine = load_engine(config, device)?;
    Ok(Loaded {
        engine,
        vad,
        groups_per_batch: config.batched.then_some(config.max_batch.max(1)),
    })
}

fn load_engine<B: WhisperBackend>(
    config: &ServerConfig,
    device: &B::Device,
) -> Result<Engine<B>, String> {
    let draft: DraftSpec = config.draft.parse().map_err(|e| format!("{e}"))?;
    let engine_config = EngineConfig {
        draft,
        draft_length: DraftLength::default(),
    };
    match catch_unwind(AssertUnwindSafe(|| {
        Engine::<B>::load(&config.main, engine_config, device)
    })) {
        Ok(Ok(e)) => Ok(e),
        Ok(Err(e)) => Err(e.to_string()),
        Err(p) => Err(format!("panic while loading: {}", panic_message(&p))),
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn fail_all(jobs: Vec<Job>, err: &ApiError) {
    for j in jobs {
        let _ = j.reply.send(Err(err.clone()));
    }
}

/// Runs the engine on some inputs, turning panics into errors.
fn infer<B: WhisperBackend>(
    model: &Loaded<B>,
    jobs: &[Job],
    opts: &DecodeOptions,
) -> Result<Vec<Transcript>, ApiError> {
    let audios: Vec<&[f32]> = jobs.iter().map(|j| j.audio.as_slice()).collect();
    let engine = &model.engine;
    let run = || match (&model.vad, model.groups_per_batch) {
        (Some((vad, vad_opts)), Some(n)) => {
            let opts = DecodeOptions {
                condition_on_previous_text: false,
                ..opts.clone()
            };
            transcribe_chunked_many(vad, vad_opts, &audios, n, |groups| {
                engine.transcribe_batch(groups, &opts)
            })
        }
        (Some((vad, vad_opts)), None) => transcribe_speech(vad, vad_opts, &audios, |speech| {
            engine.transcribe_batch(speech, opts)
        }),
        (None, _) => engine.transcribe_batch(&audios, opts),
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(t)) if t.len() == jobs.len() => Ok(t),
        Ok(Ok(t)) => Err(ApiError::inference_failed(format!(
            "the engine returned {} transcripts for {} inputs",
            t.len(),
            jobs.len()
        ))),
        Ok(Err(e)) => Err(ApiError::from_engine(&e)),
        Err(p) => Err(ApiError::inference_failed(format!(
            "inference panicked: {}",
            panic_message(&p)
        ))),
    }
}

fn run_batch<B: WhisperBackend>(model: &Loaded<B>, batch: Batch, metrics: &Metrics) {
    let Batch { jobs, opts, idle } = batch;
    // Clients that went away while the batch formed are not decoded.
    let (jobs, gone): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(Job::is_live);
    if !gone.is_empty() {
        metrics.cancelled.inc_by(gone.len() as u64);
    }
    if jobs.is_empty() {
        return;
    }
    let start = Instant::now();
    let n = jobs.len();
    for j in &jobs {
        metrics.record_queue_wait(start.duration_since(j.enqueued).as_secs_f64());
    }
    let result = infer(model, &jobs, &opts);
    let inference_s = start.elapsed().as_secs_f64();
    metrics.record_batch(n, inference_s);
    match result {
        Ok(transcripts) => {
            for (job, t) in jobs.into_iter().zip(transcripts) {
                metrics.record_transcript(&t);
                let queue_s = start.duration_since(job.enqueued).as_secs_f64();
                let out = JobOutput {
                    transcript: t,
                    queue_s,
                    inference_s,
                    batch_size: n,
                    temperature: job.opts.temperature,
                    word_timestamps: job.opts.word_timestamps,
                };
                let _ = job.reply.send(Ok(out));
            }
        }
        Err(err) if n == 1 => {
            tracing::warn!("inference failed: {err}");
            fail_all(jobs, &err);
        }
        Err(err) => {
            // Retry one by one so a single bad input fails alone.
            tracing::warn!("batch of {n} failed ({err}); retrying its requests one at a time");
            for job in jobs {
                if !job.is_live() {
                    metrics.cancelled.inc();
                    continue;
                }
                let t1 = Instant::now();
                let single = infer(model, std::slice::from_ref(&job), &opts);
                let s = t1.elapsed().as_secs_f64();
                metrics.record_batch(1, s);
                let reply = single.map(|mut t| {
                    let t = t.remove(0);
                    metrics.record_transcript(&t);
                    JobOutput {
                        transcript: t,
                        queue_s: start.duration_since(job.enqueued).as_secs_f64(),
                        inference_s: s,
                        batch_size: 1,
                        temperature: job.opts.temperature,
                        word_timestamps: job.opts.word_timestamps,
                    }
                });
                let _ = job.reply.send(reply);
            }
        }
    }
    drop(idle);
}
