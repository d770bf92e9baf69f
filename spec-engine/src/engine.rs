//! The user-facing engine: a main model, an optional draft, and batched transcription.
use crate::compat::check_compatible;
use crate::cost::CostModel;
use crate::error::{Result, SpecError};
use crate::model_draft::ModelDraft;
use crate::policy::DraftLength;
use crate::proposer::Proposer;
use crate::self_draft::{SelfDraft, WeightBits, DEFAULT_DRAFT_VOCAB, DRAFT_MARGIN_FRAMES};
use crate::speculative::SpeculativeDecoder;
use burn::prelude::*;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
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
        /// Decoder layers the draft keeps, the first ones (`None`: all of them).
        layers: Option<usize>,
    },
    /// A separate smaller model with the same tokenizer (directory or hub id).
    Model(String),
}

impl FromStr for DraftSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default();
        let bits = match name {
            "" | "none" if !s.contains(':') => return Ok(DraftSpec::None),
            "self-q8" => 8,
            "self-q4" => 4,
            other if other.starts_with("self-") => return Err(SpecError::BadDraftSpec(s.into())),
            _ => return Ok(DraftSpec::Model(s.into())),
        };
        let (mut vocab, mut layers) = (DEFAULT_DRAFT_VOCAB, None);
        for option in parts {
            match parse_self_option(option) {
                Some(SelfOption::Vocab(v)) => vocab = v,
                Some(SelfOption::Layers(l)) => layers = Some(l),
                None => return Err(SpecError::BadDraftSpec(s.into())),
            }
        }
        Ok(DraftSpec::SelfQuantized {
            bits,
            vocab,
            margin_frames: Some(DRAFT_MARGIN_FRAMES),
            layers,
        })
    }
}

enum SelfOption {
    Vocab(usize),
    Layers(usize),
}

/// One `:`-separated self-draft option: `N` or `vocab=N` (text tokens the output
/// projection keeps), `layers=N` (decoder layers kept); every number positive.
fn parse_self_option(option: &str) -> Option<SelfOption> {
    let (key, value) = option.split_once('=').unwrap_or(("vocab", option));
    let n = value.parse::<usize>().ok().filter(|n| *n > 0)?;
    match key {
        "vocab" => Some(SelfOption::Vocab(n)),
        "layers" => Some(SelfOption::Layers(n)),
        _ => None,
    }
}

impl std::fmt::Display for DraftSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DraftSpec::None => f.write_str("none"),
            DraftSpec::SelfQuantized {
                bits,
                vocab,
                layers,
                ..
            } => {
                write!(f, "self-q{bits}")?;
                if *vocab != DEFAULT_DRAFT_VOCAB {
                    write!(f, ":{vocab}")?;
                }
                match layers {
                    Some(l) => write!(f, ":layers={l}"),
                    None => Ok(()),
                }
            }
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

enum LoadedDraft<B: Backend> {
    None,
    SelfQuantized(Arc<SelfDraft>),
    Model(Arc<ModelDraft<B>>),
}

/// A main model plus its draft; shared read-only, each call owns its decoding state.
pub struct Engine<B: Backend> {
    pub main: Arc<Pipeline<B>>,
    draft: LoadedDraft<B>,
    pub config: EngineConfig,
    /// Draft and verification costs measured so far (they pick adaptive draft lengths).
    costs: Mutex<CostModel>,
}

impl<B: Backend> Engine<B> {
    /// Loads the main model and the draft, refusing incompatible pairs.
    pub fn load(main: &str, config: EngineConfig, device: &B::Device) -> Result<Self> {
        let main = Arc::new(Pipeline::<B>::load(main, device)?);
        Self::with_main(main, config, device)
    }

    pub fn with_main(
        main: Arc<Pipeline<B>>,
        config: EngineConfig,
        device: &B::Device,
    ) -> Result<Self> {
        let draft = match &config.draft {
            DraftSpec::None => LoadedDraft::None,
            DraftSpec::SelfQuantized {
                bits,
                vocab,
                margin_frames,
                layers,
            } => LoadedDraft::SelfQuantized(Arc::new(SelfDraft::from_main(
                &main,
                WeightBits::from_bits(*bits)?,
                *vocab,
                *margin_frames,
                *layers,
            )?)),
            DraftSpec::Model(name) => {
                let draft = Pipeline::<B>::load(name, device)?;
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
                margin_frames: Some(DRAFT_MARGIN_FRAMES),
                layers: None,
            }
        );
        assert_eq!(spec.to_string(), "self-q4:8192");
        for (text, canonical) in [
            ("self-q4:layers=3", "self-q4:layers=3"),
            ("self-q8:vocab=8192:layers=2", "self-q8:8192:layers=2"),
            ("self-q4:layers=3:4096", "self-q4:4096:layers=3"),
        ] {
            let spec: DraftSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), canonical);
            assert_eq!(canonical.parse::<DraftSpec>().unwrap(), spec);
        }
        assert_eq!(
            "self-q8".parse::<DraftSpec>().unwrap().to_string(),
            "self-q8"
        );
        for bad in [
            "self-q4:0",
            "self-q4:lots",
            "self-q3",
            "self-q8:",
            "self-q4:layers=0",
            "self-q4:layers=",
            "self-q4:depth=2",
        ] {
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
