//! The user-facing engine: a main model, an optional draft, and batched transcription.
use crate::compat::check_compatible;
use crate::cost::CostModel;
use crate::device_draft::DeviceSelfDraft;
use crate::error::{Result, SpecError};
use crate::model_draft::ModelDraft;
use crate::policy::DraftLength;
use crate::proposer::Proposer;
use crate::self_draft::{SelfDraft, WeightBits, DEFAULT_DRAFT_VOCAB, DRAFT_MARGIN_FRAMES};
use crate::speculative::SpeculativeDecoder;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use whisper_burn::backend::{Kernels, WhisperBackend};
use whisper_burn::{DecodeOptions, GreedyDecoder, Pipeline, Transcript};

/// Which draft proposes tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftSpec {
    /// Plain greedy decoding, no draft.
    None,
    /// The main model's own decoder with 8-bit (or 4-bit) weights and a reduced vocabulary,
    /// reading the main model's encoder output (over the audio and `margin_frames` of the
    /// padding after it; `None`: the whole window).
    SelfQuantized {
        bits: u8,
        vocab: usize,
        margin_frames: Option<usize>,
    },
    /// A separate smaller model with the same tokenizer (directory or hub id).
    Model(String),
}

impl FromStr for DraftSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self> {
        // `self-q8`, `self-q4`, or with the number of text tokens the draft's output
        // projection keeps: `self-q4:8192`.
        let (name, vocab) = match s.split_once(':') {
            Some((n, v)) if n.starts_with("self-") => (
                n,
                v.parse::<usize>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| SpecError::BadDraftSpec(s.into()))?,
            ),
            _ => (s, DEFAULT_DRAFT_VOCAB),
        };
        Ok(match name {
            "" | "none" => DraftSpec::None,
            "self-q8" => DraftSpec::SelfQuantized {
                bits: 8,
                vocab,
                margin_frames: Some(DRAFT_MARGIN_FRAMES),
            },
            "self-q4" => DraftSpec::SelfQuantized {
                bits: 4,
                vocab,
                margin_frames: Some(DRAFT_MARGIN_FRAMES),
            },
            other if other.starts_with("self-") => {
                return Err(SpecError::BadDraftSpec(other.into()))
            }
            _ => DraftSpec::Model(s.into()),
        })
    }
}

impl std::fmt::Display for DraftSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DraftSpec::None => f.write_str("none"),
            DraftSpec::SelfQuantized { bits, vocab, .. } if *vocab == DEFAULT_DRAFT_VOCAB => {
                write!(f, "self-q{bits}")
            }
            DraftSpec::SelfQuantized { bits, vocab, .. } => write!(f, "self-q{bits}:{vocab}"),
            DraftSpec::Model(m) => f.write_str(m),
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub draft: DraftSpec,
    pub draft_length: DraftLength,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            draft: DraftSpec::None,
            draft_length: DraftLength::default(),
        }
    }
}

enum LoadedDraft<B: WhisperBackend> {
    None,
    SelfQuantized(Arc<SelfDraft>),
    DeviceSelf(Arc<DeviceSelfDraft<B>>),
    Model(Arc<ModelDraft<B>>),
}

/// A main model plus its draft; shared read-only, each call owns its decoding state.
pub struct Engine<B: WhisperBackend> {
    pub main: Arc<Pipeline<B>>,
    draft: LoadedDraft<B>,
    pub config: EngineConfig,
    /// Draft and verification costs measured so far (they pick adaptive draft lengths).
    costs: Mutex<CostModel>,
}

impl<B: WhisperBackend> Engine<B> {
    /// Loads the main model and the draft, refusing incompatible pairs.
    pub fn load(main: &str, config: EngineConfig, device: &B::Device) -> Result<Self> {
        Self::load_with(main, config, device, B::default_kernels())
    }

    /// As [`Self::load`], with both models in the given kernels.
    pub fn load_with(
        main: &str,
        config: EngineConfig,
        device: &B::Device,
        kernels: Kernels,
    ) -> Result<Self> {
        let main = Arc::new(Pipeline::<B>::load_with(main, device, kernels)?);
        Self::with_main(main, config, device)
    }

    pub fn with_main(
        main: Arc<Pipeline<B>>,
        config: EngineConfig,
        device: &B::Device,
    ) -> Result<Self> {
        let draft =
            match &config.draft {
                DraftSpec::None => LoadedDraft::None,
                DraftSpec::SelfQuantized {
                    bits,
                    vocab,
                    margin_frames,
                } => {
                    let bits = WeightBits::from_bits(*bits)?;
                    // The draft runs where the main model's tensors are: the host kernels'
                    // own int8/int4 code, or burn's quantized tensors on the device.
                    match main.model.kernels() {
                        Kernels::Host => LoadedDraft::SelfQuantized(Arc::new(
                            SelfDraft::from_main(&main, bits, *vocab, *margin_frames)?,
                        )),
                        Kernels::Generic => LoadedDraft::DeviceSelf(Arc::new(
                            DeviceSelfDraft::from_main(&main, bits, *vocab, *margin_frames)?,
                        )),
                    }
                }
                DraftSpec::Model(name) => {
                    // The draft runs in the main model's kernels (states and encoder
                    // outputs pass between them).
                    let draft = Pipeline::<B>::load_with(name, device, main.model.kernels())?;
                    check_compatible(&main, &draft)?;
                    LoadedDraft::Model(Arc::new(ModelDraft::new(draft, &main)))
                }
            };
        Ok(Self {
            main,
            draft,
            config,
            costs: Mutex::new(CostModel::default()),
        })
    }

    /// Transcribes a batch of 16 kHz mono inputs (windows of all inputs decoded together).
    pub fn transcribe_batch(
        &self,
        audios: &[&[f32]],
        opts: &DecodeOptions,
    ) -> Result<Vec<Transcript>> {
        let out = match &self.draft {
            LoadedDraft::None => self
                .main
                .transcribe_batch(audios, opts, &mut GreedyDecoder)?,
            LoadedDraft::SelfQuantized(d) => self.run_speculative(audios, opts, d.proposer())?,
            LoadedDraft::DeviceSelf(d) => self.run_speculative(audios, opts, d.proposer())?,
            LoadedDraft::Model(d) => self.run_speculative(audios, opts, d.proposer())?,
        };
        Ok(out)
    }

    pub fn transcribe(&self, audio: &[f32], opts: &DecodeOptions) -> Result<Transcript> {
        Ok(self.transcribe_batch(&[audio], opts)?.remove(0))
    }

    fn run_speculative<P: Proposer<B>>(
        &self,
        audios: &[&[f32]],
        opts: &DecodeOptions,
        proposer: P,
    ) -> Result<Vec<Transcript>> {
        let costs = self.costs.lock().map(|c| c.clone()).unwrap_or_default();
        let mut decoder =
            SpeculativeDecoder::with_costs(proposer, self.config.draft_length.clone(), costs);
        let out = self.main.transcribe_batch(audios, opts, &mut decoder)?;
        if let Ok(mut c) = self.costs.lock() {
            *c = decoder.costs;
        }
        Ok(out)
    }

    /// A short name of the draft (`none`, `self-q8`, a model path).
    pub fn draft_name(&self) -> String {
        self.config.draft.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_specs_parse_and_print() {
        let spec: DraftSpec = "self-q4:8192".parse().unwrap();
        assert_eq!(
            spec,
            DraftSpec::SelfQuantized {
                bits: 4,
                vocab: 8192,
                margin_frames: Some(DRAFT_MARGIN_FRAMES)
            }
        );
        assert_eq!(spec.to_string(), "self-q4:8192");
        assert_eq!(
            "self-q8".parse::<DraftSpec>().unwrap().to_string(),
            "self-q8"
        );
        for bad in ["self-q4:0", "self-q4:lots", "self-q3", "self-q8:"] {
            assert!(
                matches!(bad.parse::<DraftSpec>(), Err(SpecError::BadDraftSpec(_))),
                "{bad}"
            );
        }
        assert_eq!(
            "openai/whisper-tiny".parse::<DraftSpec>().unwrap(),
            DraftSpec::Model("openai/whisper-tiny".into())
        );
    }
}
