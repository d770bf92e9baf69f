//! The bounded request queue and the one batcher task that turns queued requests into
//! batches for the inference thread.
//!
//! Handlers push decoded audio with [`JobQueue::push`] (refused when full or shutting down)
//! and await their own oneshot reply. The batcher waits until the inference thread is
//! idle, then takes up to `max_batch` requests with the same decoding options, waiting at
//! most `max_wait` after the oldest one arrived for the batch to fill. Requests whose client
//! went away (reply receiver dropped) are removed without being decoded.
use crate::errors::{ApiError, ErrorCode};
use crate::memory::Reservation;
use crate::metrics::Metrics;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use whisper_burn::{DecodeOptions, Transcript};

/// What the inference thread sends back for one request.
#[derive(Debug)]
pub struct JobOutput {
    pub transcript: Transcript,
    /// Seconds from enqueueing to the start of its batch.
    pub queue_s: f64,
    /// Wall seconds of its batch in the model.
    pub inference_s: f64,
    pub batch_size: usize,
    /// The sampling temperature it was decoded at (0: greedy).
    pub temperature: f32,
    /// Whether its segments were given words.
    pub word_timestamps: bool,
}

pub type JobResult = Result<JobOutput, ApiError>;

/// One transcription request waiting for the model.
#[derive(Debug)]
pub struct Job {
    pub audio: Vec<f32>,
    pub opts: DecodeOptions,
    pub enqueued: Instant,
    pub reply: oneshot::Sender<JobResult>,
    /// The audio's share of the upload budget, given back when the job is dropped.
    pub memory: Option<Reservation>,
}

impl Job {
    pub fn new(audio: Vec<f32>, opts: DecodeOptions) -> (Self, oneshot::Receiver<JobResult>) {
        let (tx, rx) = oneshot::channel();
        (
            Self {
                audio,
                opts,
                enqueued: Instant::now(),
                reply: tx,
                memory: None,
            },
            rx,
        )
    }

    /// The job, holding `memory` for as long as it lives.
    pub fn holding(mut self, memory: Reservation) -> Self {
        self.memory = Some(memory);
        self
    }

    pub fn audio_s(&self) -> f64 {
        self.audio.len() as f64 / whisper_burn::audio::SAMPLE_RATE as f64
    }

    /// Whether the client still waits for the answer.
    pub fn is_live(&self) -> bool {
        !self.reply.is_closed()
    }
}

/// A batch for the inference thread; `idle` goes back when the thread is done with it.
#[derive(Debug)]
pub struct Batch {
    pub jobs: Vec<Job>,
    pub opts: DecodeOptions,
    pub idle: OwnedSemaphorePermit,
}

#[derive(Debug)]
struct QueueState {
    jobs: VecDeque<Job>,
    audio_s: f64,
    closed: bool,
}

/// The bounded queue between the handlers and the batcher.
#[derive(Debug)]
pub struct JobQueue {
    state: Mutex<QueueState>,
    notify: Notify,
    capacity: usize,
    max_audio_s: f64,
    retry_after_s: u64,
    metrics: Arc<Metrics>,
}

impl JobQueue {
    pub fn new(
        capacity: usize,
        max_audio_s: f64,
        retry_after_s: u64,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            state: Mutex::new(QueueState {
                jobs: VecDeque::new(),
                audio_s: 0.0,
                closed: false,
            }),
            notify: Notify::new(),
            capacity,
            max_audio_s,
            retry_after_s,
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enqueues a job; refuses it (and hands it back) when full or shutting down.
    #[allow(clippy::result_large_err)]
    pub fn push(&self, job: Job) -> Result<(), (Job, ApiError)> {
        let mut s = self.lock();
        if s.closed {
            return Err((
                job,
                ApiError::new(ErrorCode::ShuttingDown, "the server is shutting down")
                    .with_retry_after(self.retry_after_s),
            ));
        }
        let audio_s = job.audio_s();
        if s.jobs.len() >= self.capacity
            || (s.audio_s + audio_s > self.max_audio_s && !s.jobs.is_empty())
        {
            self.purge_cancelled(&mut s);
        }
        if s.jobs.len() >= self.capacity {
            let msg = format!(
                "the request queue is full ({} waiting); retry later",
                s.jobs.len()
            );
            return Err((job, ApiError::overloaded(msg, self.retry_after_s)));
        }
        if s.audio_s + audio_s > self.max_audio_s && !s.jobs.is_empty() {
            let msg = format!("too much audio is queued ({:.0} s); retry later", s.audio_s);
            return Err((job, ApiError::overloaded(msg, self.retry_after_s)));
        }
        s.audio_s += audio_s;
        s.jobs.push_back(job);
        self.publish(&s);
        drop(s);
        self.notify.notify_one();
        Ok(())
    }

    /// Stops accepting jobs; the batcher flushes what is queued, then ends.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub fn len(&self) -> usize {
        self.lock().jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn publish(&self, s: &QueueState) {
        self.metrics.queue_depth.set(s.jobs.len() as i64);
        self.metrics.queued_audio_s.set(s.audio_s.max(0.0));
    }

    /// Drops jobs whose client went away.
    fn purge_cancelled(&self, s: &mut QueueState) {
        let before = s.jobs.len();
        s.jobs.retain(|j| j.is_live());
        let removed = before - s.jobs.len();
        if removed > 0 {
            self.metrics.cancelled.inc_by(removed as u64);
            s.audio_s = s.jobs.iter().map(Job::audio_s).sum();
            self.publish(s);
        }
    }

    /// `Ok(Some(jobs))`: a batch; `Ok(None)`: closed and drained; `Err(deadline)`: wait
    /// for a new job or until the deadline (if any).
    fn try_take(
        &self,
        max_batch: usize,
        max_wait: Duration,
    ) -> Result<Option<Vec<Job>>, Option<Instant>> {
        let mut s = self.lock();
        self.purge_cancelled(&mut s);
        let Some(front) = s.jobs.front() else {
            return if s.closed { Ok(None) } else { Err(None) };
        };
        let key = front.opts.clone();
        let deadline = front.enqueued + max_wait;
        let compatible = s
            .jobs
            .iter()
            .filter(|j| j.opts == key)
            .take(max_batch)
            .count();
        if compatible < max_batch && Instant::now() < deadline && !s.closed {
            return Err(Some(deadline));
        }
        let mut taken = Vec::with_capacity(compatible);
        let mut rest = VecDeque::with_capacity(s.jobs.len());
        for j in s.jobs.drain(..) {
            if taken.len() < max_batch && j.opts == key {
                taken.push(j);
            } else {
                rest.push_back(j);
            }
        }
        s.jobs = rest;
        s.audio_s = s.jobs.iter().map(Job::audio_s).sum();
        self.publish(&s);
        Ok(Some(taken))
    }

    /// Waits for the next batch; `None` once the queue is closed and drained.
    pub async fn next_batch(&self, max_batch: usize, max_wait: Duration) -> Option<Vec<Job>> {
        loop {
            // A `notify_one` before this point leaves a permit, so no wake-up is lost.
            let notified = self.notify.notified();
            match self.try_take(max_batch, max_wait) {
                Ok(Some(jobs)) => return Some(jobs),
                Ok(None) => return None,
                Err(None) => notified.await,
                Err(Some(deadline)) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(deadline.into()) => {}
                    }
                }
            }
        }
    }
}

/// The batcher: forms batches while the inference thread is idle and hands them over.
/// Ends when the queue is closed and drained (dropping `to_worker` ends the thread).
pub async fn run_batcher(
    queue: Arc<JobQueue>,
    to_worker: std::sync::mpsc::Sender<Batch>,
    idle: Arc<Semaphore>,
    max_batch: usize,
    max_wait: Duration,
) {
    loop {
        let Ok(permit) = idle.clone().acquire_owned().await else {
            break;
        };
        let Some(jobs) = queue.next_batch(max_batch, max_wait).await else {
            break;
        };
        if jobs.is_empty() {
            continue;
        }
        let opts = jobs[0].opts.clone();
        if let Err(std::sync::mpsc::SendError(batch)) = to_worker.send(Batch {
            jobs,
            opts,
            idle: permit,
        }) {
            for j in batch.jobs {
                let _ = j.reply.send(Err(ApiError::inference_failed(
                    "the inference thread is not running",
                )));
            }
        }
    }
    tracing::debug!("batcher finished");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(opts: DecodeOptions, secs: f64) -> (Job, oneshot::Receiver<JobResult>) {
        Job::new(vec![0.0; (secs * 16_000.0) as usize], opts)
    }

    fn queue(cap: usize) -> JobQueue {
        JobQueue::new(cap, 100.0, 1, Arc::new(Metrics::new(cap, 4)))
    }

    #[tokio::test]
    async fn full_queue_refuses_with_retry_after() {
        let q = queue(2);
        let (a, _ra) = job(DecodeOptions::default(), 1.0);
        let (b, _rb) = job(DecodeOptions::default(), 1.0);
        let (c, _rc) = job(DecodeOptions::default(), 1.0);
        q.push(a).unwrap();
        q.push(b).unwrap();
        let (_, err) = q.push(c).unwrap_err();
        assert_eq!(err.code, ErrorCode::Overloaded);
        assert_eq!(err.retry_after_s, Some(1));
    }

    #[tokio::test]
    async fn queued_audio_is_bounded() {
        let q = queue(10);
        let (a, _ra) = job(DecodeOptions::default(), 60.0);
        let (b, _rb) = job(DecodeOptions::default(), 60.0);
        q.push(a).unwrap();
        assert_eq!(q.push(b).unwrap_err().1.code, ErrorCode::Overloaded);
    }

    #[tokio::test]
    async fn cancelled_jobs_are_dropped_and_free_room() {
        let q = queue(1);
        let (a, ra) = job(DecodeOptions::default(), 1.0);
        q.push(a).unwrap();
        drop(ra);
        let (b, _rb) = job(DecodeOptions::default(), 1.0);
        q.push(b).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q.metrics.cancelled.get(), 1);
    }

    #[tokio::test]
    async fn batches_group_equal_options_in_order() {
        let q = queue(10);
        let ts = DecodeOptions {
            timestamps: true,
            ..Default::default()
        };
        let mut rx = Vec::new();
        for o in [
            DecodeOptions::default(),
            ts.clone(),
            DecodeOptions::default(),
            DecodeOptions::default(),
        ] {
            let (j, r) = job(o, 1.0);
            q.push(j).unwrap();
            rx.push(r);
        }
        let b = q.next_batch(2, Duration::from_millis(0)).await.unwrap();
        assert_eq!(b.len(), 2);
        assert!(b.iter().all(|j| !j.opts.timestamps));
        let b = q.next_batch(8, Duration::from_millis(0)).await.unwrap();
        assert_eq!(b.len(), 1);
        assert!(b[0].opts.timestamps);
        let b = q.next_batch(8, Duration::from_millis(0)).await.unwrap();
        assert_eq!(b.len(), 1);
        q.close();
        assert!(q.next_batch(8, Duration::from_millis(0)).await.is_none());
    }

    #[tokio::test]
    async fn waits_for_the_batch_to_fill_until_the_deadline() {
        let q = Arc::new(queue(10));
        let (a, _ra) = job(DecodeOptions::default(), 1.0);
        q.push(a).unwrap();
        let t0 = Instant::now();
        let q2 = q.clone();
        let pusher = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let (b, rb) = job(DecodeOptions::default(), 1.0);
            q2.push(b).unwrap();
            // Keep the receiver alive until the batch is taken.
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(rb);
        });
        let b = q.next_batch(2, Duration::from_secs(5)).await.unwrap();
        assert_eq!(b.len(), 2, "the second job joins the batch");
        assert!(t0.elapsed() < Duration::from_secs(4));
        let _ = pusher.await;
        let (c, _rc) = job(DecodeOptions::default(), 1.0);
        q.push(c).unwrap();
        let t0 = Instant::now();
        let b = q.next_batch(4, Duration::from_millis(50)).await.unwrap();
        assert_eq!(b.len(), 1);
        assert!(
            t0.elapsed() >= Duration::from_millis(40),
            "waited for the deadline"
        );
    }

    #[tokio::test]
    async fn closed_queue_refuses_and_flushes() {
        let q = queue(4);
        let (a, _ra) = job(DecodeOptions::default(), 1.0);
        q.push(a).unwrap();
        q.close();
        let (b, _rb) = job(DecodeOptions::default(), 1.0);
        assert_eq!(q.push(b).unwrap_err().1.code, ErrorCode::ShuttingDown);
        let t0 = Instant::now();
        assert_eq!(
            q.next_batch(4, Duration::from_secs(10))
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "no waiting once closed"
        );
        assert!(q.next_batch(4, Duration::from_secs(10)).await.is_none());
    }
}
