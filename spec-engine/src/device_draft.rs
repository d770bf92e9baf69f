//! The self-draft on the backend's device, for models on the generic kernels (GPU
//! backends, or any backend when asked): the main model's decoder with its projections
//! in burn's quantized tensors (8 or 4 bits, blocks of 32), logits over a reduced
//! vocabulary, and the main model's own cross-attention keys/values (no second encoder,
//! no copy). Every row of the batch steps in one decoder pass; greedy choices are made on
//! the device and only `(token, log-probability)` comes back per step.
//!
//! The host kernels have their own self-draft ([`crate::self_draft`]) with int8 caches
//! and VNNI kernels; this one is what runs where the main model's tensors live on a GPU.
use crate::error::{Result, SpecError};
use crate::proposer::{Proposal, ProposeRequest, Proposer};
use crate::self_draft::WeightBits;
use burn::prelude::*;
use burn::tensor::quantization::{QuantLevel, QuantScheme, QuantValue};
use std::sync::Arc;
use whisper_burn::backend::WhisperBackend;
use whisper_burn::decoding::device::DeviceRules;
use whisper_burn::decoding::greedy::host_rows;
use whisper_burn::decoding::{DecodeRequest, LogitFilters};
use whisper_burn::model::decoder::{DecoderImpl, DecoderLayer, GenericDecoder};
use whisper_burn::model::kv_cache::LayerCache;
use whisper_burn::model::layers::{AttentionProj, FeedForward, Linear};
use whisper_burn::model::Decoder;
use whisper_burn::{DecoderState, Pipeline, Whisper};

/// Weights per quantization block (one scale each), along a projection's outputs.
pub const QUANT_BLOCK: u8 = 32;

fn scheme(bits: WeightBits) -> QuantScheme {
    let value = match bits {
        WeightBits::Q8 => QuantValue::Q8S,
        WeightBits::Q4 => QuantValue::Q4S,
    };
    QuantScheme::default()
        .with_value(value)
        .with_level(QuantLevel::block([QUANT_BLOCK]))
}

fn quantized<B: WhisperBackend>(l: &Linear<B>, s: &QuantScheme) -> Linear<B> {
    Linear {
        weight_t: l.weight_t.clone().quantize_dynamic(s),
        bias: l.bias.clone(),
    }
}

fn quantized_attention<B: WhisperBackend>(
    a: &AttentionProj<B>,
    s: &QuantScheme,
) -> AttentionProj<B> {
    AttentionProj {
        q_proj: quantized(&a.q_proj, s),
        k_proj: quantized(&a.k_proj, s),
        v_proj: quantized(&a.v_proj, s),
        out_proj: quantized(&a.out_proj, s),
        n_heads: a.n_heads,
    }
}

fn quantized_layer<B: WhisperBackend>(l: &DecoderLayer<B>, s: &QuantScheme) -> DecoderLayer<B> {
    DecoderLayer {
        self_attn_layer_norm: l.self_attn_layer_norm.clone(),
        self_attn: quantized_attention(&l.self_attn, s),
        encoder_attn_layer_norm: l.encoder_attn_layer_norm.clone(),
        // Cross keys/values come from the main model's state; only q and out run.
        encoder_attn: AttentionProj {
            q_proj: quantized(&l.encoder_attn.q_proj, s),
            k_proj: l.encoder_attn.k_proj.clone(),
            v_proj: l.encoder_attn.v_proj.clone(),
            out_proj: quantized(&l.encoder_attn.out_proj, s),
            n_heads: l.encoder_attn.n_heads,
        },
        final_layer_norm: l.final_layer_norm.clone(),
        ffn: FeedForward {
            fc1: quantized(&l.ffn.fc1, s),
            fc2: quantized(&l.ffn.fc2, s),
        },
    }
}

/// The quantized decoder; shared read-only.
pub struct DeviceSelfDraft<B: WhisperBackend> {
    /// Its `proj_out_t` is the reduced projection `[d_model, text + special]`.
    decoder: Decoder<B>,
    /// Text tokens kept: ids `0..text_tokens`; then every id from end-of-text on.
    text_tokens: usize,
    eot: usize,
    pub bits: WeightBits,
    /// Padding frames after the audio the draft's cross attention reads (`None`: all).
    pub margin_frames: Option<usize>,
}

impl<B: WhisperBackend> DeviceSelfDraft<B> {
    /// Quantizes the generic decoder of `main`; the projection keeps the first `vocab`
    /// text tokens and every special and timestamp token.
    pub fn from_main(
        main: &Pipeline<B>,
        bits: WeightBits,
        vocab: usize,
        margin_frames: Option<usize>,
    ) -> Result<Self> {
        let dec = &main.model.decoder;
        let DecoderImpl::Generic(g) = &dec.imp else {
            return Err(SpecError::Config(
                "the device self-draft needs a model on the generic kernels".into(),
            ));
        };
        let s = scheme(bits);
        let eot = main.tokenizer.special.eot as usize;
        let text_tokens = vocab.min(eot);
        let d = dec.d_model;
        let v = dec.vocab_size;
        let proj = Tensor::cat(
            vec![
                g.proj_out_t.clone().slice([0..d, 0..text_tokens]),
                g.proj_out_t.clone().slice([0..d, eot..v]),
            ],
            1,
        );
        let generic = GenericDecoder {
            embed_tokens: g.embed_tokens.clone(),
            proj_out_t: proj.quantize_dynamic(&s),
            embed_positions: g.embed_positions.clone(),
            layers: g.layers.iter().map(|l| quantized_layer(l, &s)).collect(),
            layer_norm: g.layer_norm.clone(),
        };
        Ok(Self {
            decoder: Decoder {
                imp: DecoderImpl::Generic(generic),
                n_heads: dec.n_heads,
                d_model: dec.d_model,
                vocab_size: dec.vocab_size,
                n_layers: dec.n_layers,
                max_positions: dec.max_positions,
                device: dec.device.clone(),
            },
            text_tokens,
            eot,
            bits,
            margin_frames,
        })
    }

    pub fn proposer(self: &Arc<Self>) -> DeviceSelfProposer<B> {
        DeviceSelfProposer {
            draft: self.clone(),
            state: None,
            cached: Vec::new(),
            rules: None,
        }
    }

    /// Full-vocabulary logits (`-inf` where the draft has none) of `hidden` (`[m, d]`).
    fn logits(&self, hidden: Tensor<B, 2>) -> Tensor<B, 2> {
        let DecoderImpl::Generic(g) = &self.decoder.imp else {
            unreachable!("built generic")
        };
        let sub = hidden.matmul(g.proj_out_t.clone());
        let [m, n] = sub.dims();
        let k = self.text_tokens;
        let gap = Tensor::full([m, self.eot - k], f32::NEG_INFINITY, &sub.device());
        Tensor::cat(
            vec![
                sub.clone().slice([0..m, 0..k]),
                gap,
                sub.slice([0..m, k..n]),
            ],
            1,
        )
    }
}

/// Per-batch state of a [`DeviceSelfDraft`]: one decoder state for every row.
pub struct DeviceSelfProposer<B: WhisperBackend> {
    draft: Arc<DeviceSelfDraft<B>>,
    state: Option<DecoderState<B>>,
    /// Tokens whose keys/values are in each row of `state`.
    cached: Vec<Vec<u32>>,
    rules: Option<DeviceRules<B>>,
}

/// Encoder frames the draft reads for a batch: the longest row's audio (two mel frames
/// each) plus the margin, at most the window.
fn draft_frames(audio_mel_frames: &[usize], margin: Option<usize>, window: usize) -> usize {
    match margin {
        Some(m) => audio_mel_frames
            .iter()
            .map(|f| f.div_ceil(2) + m)
            .max()
            .unwrap_or(window)
            .min(window),
        None => window,
    }
}

impl<B: WhisperBackend> Proposer<B> for DeviceSelfProposer<B> {
    fn begin(
        &mut self,
        _main: &Whisper<B>,
        main_state: &DecoderState<B>,
        _encoder_out: &Tensor<B, 3>,
        req: &DecodeRequest,
    ) -> Result<()> {
        if main_state.on_host() || main_state.layers.len() != self.draft.decoder.n_layers {
            return Err(SpecError::Config(
                "the device self-draft needs its main model's device state".into(),
            ));
        }
        let b = main_state.batch_size();
        let window = main_state.layers[0].cross_k.dims()[1];
        let frames = draft_frames(&req.audio_mel_frames, self.draft.margin_frames, window);
        // The prompt is already in the main model's self-attention cache: the draft
        // starts from those keys/values (a shared tensor, copied on the first write).
        let layers = main_state
            .layers
            .iter()
            .map(|l| {
                let [_, _, d] = l.cross_k.dims();
                LayerCache {
                    self_k: l.self_k.clone(),
                    self_v: l.self_v.clone(),
                    cross_k: l.cross_k.clone().slice([0..b, 0..frames, 0..d]),
                    cross_v: l.cross_v.clone().slice([0..b, 0..frames, 0..d]),
                }
            })
            .collect();
        let lens: Vec<usize> = (0..b)
            .map(|r| {
                main_state
                    .len(r)
                    .min(req.prompts.get(r).map_or(0, Vec::len))
            })
            .collect();
        self.cached = lens
            .iter()
            .enumerate()
            .map(|(r, n)| req.prompts[r][..*n].to_vec())
            .collect();
        self.state = Some(DecoderState {
            layers,
            host_layers: Vec::new(),
            lens,
            capacity: main_state.capacity,
        });
        self.rules = Some(DeviceRules::new(req.filters, &self.draft.decoder.device));
        Ok(())
    }

    fn propose(
        &mut self,
        requests: &[ProposeRequest],
        filters: &LogitFilters,
    ) -> Result<Vec<Proposal>> {
        let state = self
            .state
            .as_mut()
            .ok_or_else(|| SpecError::Config("proposal before begin".into()))?;
        let b = state.batch_size();
        let mut jobs: Vec<Option<Drafting>> = (0..b).map(|_| None).collect();
        for q in requests {
            let slot = jobs
                .get_mut(q.row)
                .filter(|j| j.is_none())
                .ok_or_else(|| SpecError::Config(format!("row {} proposed for twice", q.row)))?;
            *slot = Some(Drafting::start(&mut self.cached[q.row], q));
        }
        loop {
            let feeds: Vec<usize> = jobs
                .iter()
                .map(|j| j.as_ref().map_or(0, |j| j.feed.len()))
                .collect();
            let n = feeds.iter().copied().max().unwrap_or(0);
            if n == 0 {
                break;
            }
            let hidden = self.step(&mut jobs, n)?;
            let live: Vec<usize> = (0..b).filter(|r| feeds[*r] > 0).collect();
            // The hidden state after each live row's last fed token.
            let [_, _, d] = hidden.dims();
            let last: Vec<i64> = live
                .iter()
                .map(|r| (r * n + feeds[*r] - 1) as i64)
                .collect();
            let idx = Tensor::<B, 1, Int>::from_data(
                TensorData::new(last, [live.len()]),
                &hidden.device(),
            );
            let logits = self.draft.logits(hidden.reshape([b * n, d]).select(0, idx));
            self.choose(&mut jobs, &live, logits, requests, filters)?;
        }
        let mut out: Vec<Proposal> = Vec::with_capacity(requests.len());
        for q in requests {
            out.push(jobs[q.row].take().map(|j| j.out).unwrap_or_default());
        }
        Ok(out)
    }
}

impl<B: WhisperBackend> DeviceSelfProposer<B> {
    /// Runs every row's feed in one pass of `n` tokens per row (shorter feeds and idle
    /// rows padded; their lengths are cut back after, so the padding is never attended
    /// to). Returns the hidden states `[b, n, d]`.
    fn step(&mut self, jobs: &mut [Option<Drafting>], n: usize) -> Result<Tensor<B, 3>> {
        let state = self.state.as_mut().expect("begun");
        let capacity = state.capacity;
        let mut tokens = Vec::with_capacity(jobs.len());
        for (r, job) in jobs.iter_mut().enumerate() {
            // A row whose padding would run past the cache gives up cached positions
            // (they are fed again later): drafts only propose, so this costs time only.
            let room = capacity.saturating_sub(n);
            if self.cached[r].len() > room {
                self.cached[r].truncate(room);
            }
            state.truncate(r, self.cached[r].len());
            let mut row: Vec<u32> = job
                .as_mut()
                .map(|j| std::mem::take(&mut j.feed))
                .unwrap_or_default();
            self.cached[r].extend_from_slice(&row);
            row.resize(n, self.draft.eot as u32);
            tokens.push(row);
        }
        let hidden = self.draft.decoder.forward(&tokens, state)?;
        for (r, cached) in self.cached.iter().enumerate() {
            state.truncate(r, cached.len());
        }
        Ok(hidden)
    }

    /// Each live row's choice from its logits (`[live, vocab]`): on the device for
    /// greedy rows (one read-back for all), from host logits for sampled ones.
    fn choose(
        &mut self,
        jobs: &mut [Option<Drafting>],
        live: &[usize],
        logits: Tensor<B, 2>,
        requests: &[ProposeRequest],
        filters: &LogitFilters,
    ) -> Result<()> {
        let request = |r: usize| requests.iter().find(|q| q.row == r).expect("live row");
        if live.iter().all(|r| request(*r).sampling.is_none()) {
            let rules = self.rules.as_ref().expect("begun");
            let contexts: Vec<&[u32]> = live
                .iter()
                .map(|r| jobs[*r].as_ref().expect("live").generated.as_slice())
                .collect();
            let decisions = rules.decide(logits, &contexts, None)?;
            for (r, dec) in live.iter().zip(decisions) {
                let job = jobs[*r].as_mut().expect("live");
                job.take(dec.token, dec.logprob.exp(), request(*r));
            }
            return Ok(());
        }
        let [m, v] = logits.dims();
        let rows = host_rows(logits.reshape([m, 1, v]))?;
        for (r, mut row) in live.iter().zip(rows) {
            let job = jobs[*r].as_mut().expect("live");
            filters.apply(&mut row, &job.generated);
            let q = request(*r);
            let (t, c) = Proposal::pick(&row, q, job.out.len());
            job.take(t, c, q);
        }
        Ok(())
    }
}

/// One row's drafting in progress: tokens still to feed, then its guesses.
struct Drafting {
    feed: Vec<u32>,
    /// Generated tokens so far, for the logit rules.
    generated: Vec<u32>,
    out: Proposal,
}

impl Drafting {
    /// Re-synchronises a row's cached tokens with the committed ones (keeping the
    /// longest prefix that agrees, always re-feeding the last committed token).
    fn start(cached: &mut Vec<u32>, q: &ProposeRequest) -> Self {
        let mut d = Self {
            feed: Vec::new(),
            generated: q.committed[q.prompt_len.min(q.committed.len())..].to_vec(),
            out: Proposal::default(),
        };
        if q.max_tokens == 0 || q.committed.is_empty() {
            return d;
        }
        let common = cached
            .iter()
            .zip(q.committed)
            .take_while(|(a, b)| a == b)
            .count();
        let keep = common.min(q.committed.len() - 1);
        cached.truncate(keep);
        d.feed = q.committed[keep..].to_vec();
        d
    }

    /// Takes `token` (of probability `confidence`) unless the request's confidence floor
    /// stops drafting; feeds it back unless drafting ends here.
    fn take(&mut self, token: u32, confidence: f32, q: &ProposeRequest) {
        if !self.out.push(token, confidence, q) {
            return;
        }
        self.generated.push(token);
        if token != q.eot && self.out.len() < q.max_tokens {
            self.feed.push(token);
        }
    }
}
