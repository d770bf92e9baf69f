//! Which drafts can serve which main models.
use crate::error::{Result, SpecError};
use whisper_burn::backend::WhisperBackend;
use whisper_burn::Pipeline;

/// Refuses a draft whose input features or vocabulary differ from the main model's.
pub fn check_compatible<B: WhisperBackend>(main: &Pipeline<B>, draft: &Pipeline<B>) -> Result<()> {
    let (m, d) = (main.config(), draft.config());
    let fail = |reason: String, hint: &str| SpecError::Incompatible {
        draft: draft.name.clone(),
        main: main.name.clone(),
        reason,
        hint: hint.to_string(),
    };
    if m.num_mel_bins != d.num_mel_bins {
        return Err(fail(
            format!("the draft reads {} mel bins, the main model {}", d.num_mel_bins, m.num_mel_bins),
            "use a draft of the same generation (large-v3 and distil-large-v3 use 128 bins; the others 80)",
        ));
    }
    if m.vocab_size != d.vocab_size {
        return Err(fail(
            format!("vocabularies differ ({} vs {} tokens)", d.vocab_size, m.vocab_size),
            "English-only (.en) and multilingual models cannot be paired; pick a draft with the same vocabulary, or use `self-q8`/`self-q4`",
        ));
    }
    if main.tokenizer.special != draft.tokenizer.special {
        return Err(fail(
            "special-token ids differ".into(),
            "pick a draft converted with the same tokenizer, or use `self-q8`/`self-q4`",
        ));
    }
    Ok(())
}

/// True when the draft's encoder weights are the main model's (distil-whisper keeps its
/// teacher's encoder): then the main encoder output is reused.
pub fn same_encoder<B: WhisperBackend>(main: &Pipeline<B>, draft: &Pipeline<B>) -> bool {
    let (m, d) = (&main.model, &draft.model);
    if m.config.d_model != d.config.d_model || m.config.encoder_layers != d.config.encoder_layers {
        return false;
    }
    m.encoder.same_weights(&d.encoder)
}
