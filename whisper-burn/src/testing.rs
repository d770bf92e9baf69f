//! Tiny random-weight Whisper checkpoints for tests, written in both real layouts.
//!
//! [`write_hf_checkpoint`] (Hugging Face: `config.json`, `model.safetensors`,
//! `generation_config.json`, `tokenizer.json`) and [`write_ct2_checkpoint`] (CTranslate2:
//! `model.bin` with fused projections, `config.json`, `tokenizer.json`) write the same
//! weights for the same [`TinySpec`], so both load into the same model (up to the rounding
//! of the CTranslate2 dtype). Weights come from a hand-written PRNG seeded per tensor name,
//! so they are reproducible on every platform. The tokenizer is generated too (a word-level
//! vocabulary with Whisper's special tokens at Whisper's ids): no download is needed.
use crate::config::WhisperConfig;
use crate::weights::ct2::{write_model_bin, Ct2Dtype, Ct2WriteVar};
use crate::weights::safetensors::write_safetensors;
use crate::weights::HostTensor;
use crate::{Result, WhisperError};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

/// Shape and seed of a random model.
#[derive(Debug, Clone, PartialEq)]
pub struct TinySpec {
    /// Seed of every weight.
    pub seed: u64,
    pub d_model: usize,
    pub heads: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub ffn: usize,
    pub n_mels: usize,
    /// 51865 (multilingual), 51864 (English-only) or 51866 (large-v3, 100 languages).
    pub vocab_size: usize,
    /// `(seed, relative size)`: noise added to every decoder weight, the encoder left as is.
    /// Gives a draft that shares the encoder and mostly agrees with the unperturbed model.
    pub decoder_noise: Option<(u64, f32)>,
    /// Sequences end by themselves, mostly after 10 to 50 tokens (see [`EOT_DRIFT`]);
    /// without it, end-of-text is as unlikely as any other token.
    pub length_prior: bool,
}

impl Default for TinySpec {
    fn default() -> Self {
        Self {
            seed: 1,
            d_model: 64,
            heads: 2,
            encoder_layers: 2,
            decoder_layers: 2,
            ffn: 128,
            n_mels: 80,
            vocab_size: 51865,
            decoder_noise: None,
            length_prior: true,
        }
    }
}

pub const MAX_SOURCE_POSITIONS: usize = 1500;
pub const MAX_TARGET_POSITIONS: usize = 448;
/// The length prior: decoder positions drift by `EOT_DRIFT` (per element) every
/// `EOT_RAMP` positions, up to twice that; `EOT_GAIN` scales the end-of-text embedding
/// that reads the drift. Most random models then end after 10 to 50 tokens.
pub const EOT_DRIFT: f32 = 2.0;
pub const EOT_RAMP: f32 = 60.0;
pub const EOT_GAIN: f32 = 0.8;

/// splitmix64: small, fast and good enough for weights.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

/// A seed mixing `seed` with a name (FNV-1a), so each tensor has its own stream.
fn stream(seed: u64, name: &str) -> SplitMix {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let mut r = SplitMix::new(seed ^ h);
    r.next_u64();
    r
}

impl TinySpec {
    /// The architecture as the loaders read it back.
    pub fn config(&self) -> WhisperConfig {
        WhisperConfig {
            vocab_size: self.vocab_size,
            num_mel_bins: self.n_mels,
            d_model: self.d_model,
            encoder_layers: self.encoder_layers,
            encoder_attention_heads: self.heads,
            encoder_ffn_dim: self.ffn,
            decoder_layers: self.decoder_layers,
            decoder_attention_heads: self.heads,
            decoder_ffn_dim: self.ffn,
            max_source_positions: MAX_SOURCE_POSITIONS,
            max_target_positions: MAX_TARGET_POSITIONS,
        }
    }

    /// Every tensor of the model in Hugging Face naming and order of construction.
    pub fn hf_tensors(&self) -> Vec<(String, HostTensor)> {
        let (d, f, m, v) = (self.d_model, self.ffn, self.n_mels, self.vocab_size);
        let mut names: Vec<(String, Vec<usize>)> = vec![
            ("model.encoder.conv1.weight".into(), vec![d, m, 3]),
            ("model.encoder.conv1.bias".into(), vec![d]),
            ("model.encoder.conv2.weight".into(), vec![d, d, 3]),
            ("model.encoder.conv2.bias".into(), vec![d]),
            (
                "model.encoder.embed_positions.weight".into(),
                vec![MAX_SOURCE_POSITIONS, d],
            ),
        ];
        let attn = |names: &mut Vec<(String, Vec<usize>)>, p: &str| {
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                names.push((format!("{p}.{proj}.weight"), vec![d, d]));
                if proj != "k_proj" {
                    names.push((format!("{p}.{proj}.bias"), vec![d]));
                }
            }
        };
        let norm = |names: &mut Vec<(String, Vec<usize>)>, p: &str| {
            names.push((format!("{p}.weight"), vec![d]));
            names.push((format!("{p}.bias"), vec![d]));
        };
        let ffn = |names: &mut Vec<(String, Vec<usize>)>, p: &str| {
            names.push((format!("{p}.fc1.weight"), vec![f, d]));
            names.push((format!("{p}.fc1.bias"), vec![f]));
            names.push((format!("{p}.fc2.weight"), vec![d, f]));
            names.push((format!("{p}.fc2.bias"), vec![d]));
        };
        for i in 0..self.encoder_layers {
            let p = format!("model.encoder.layers.{i}");
            norm(&mut names, &format!("{p}.self_attn_layer_norm"));
            attn(&mut names, &format!("{p}.self_attn"));
            norm(&mut names, &format!("{p}.final_layer_norm"));
            ffn(&mut names, &p);
        }
        norm(&mut names, "model.encoder.layer_norm");
        names.push(("model.decoder.embed_tokens.weight".into(), vec![v, d]));
        names.push((
            "model.decoder.embed_positions.weight".into(),
            vec![MAX_TARGET_POSITIONS, d],
        ));
        for i in 0..self.decoder_layers {
            let p = format!("model.decoder.layers.{i}");
            norm(&mut names, &format!("{p}.self_attn_layer_norm"));
            attn(&mut names, &format!("{p}.self_attn"));
            norm(&mut names, &format!("{p}.encoder_attn_layer_norm"));
            attn(&mut names, &format!("{p}.encoder_attn"));
            norm(&mut names, &format!("{p}.final_layer_norm"));
            ffn(&mut names, &p);
        }
        norm(&mut names, "model.decoder.layer_norm");
        names
            .into_iter()
            .map(|(name, shape)| {
                let t = self.init(&name, shape);
                (name, t)
            })
            .collect()
    }

    /// One tensor's values: scaled so activations stay O(1) and the random model's greedy
    /// tokens vary with the audio and the position.
    fn init(&self, name: &str, shape: Vec<usize>) -> HostTensor {
        let n: usize = shape.iter().product();
        if name == "model.encoder.embed_positions.weight" {
            return HostTensor::new(shape, sinusoids(MAX_SOURCE_POSITIONS, self.d_model));
        }
        let (mean, std) = if name == "model.decoder.layer_norm.weight" {
            // Random signs: with tied embeddings the model would otherwise keep predicting
            // the token it was fed.
            (0.0, 1.0)
        } else if name.ends_with("layer_norm.weight") {
            (1.0, 0.1)
        } else if name == "model.decoder.embed_tokens.weight" {
            (0.0, 0.6)
        } else if name == "model.decoder.embed_positions.weight" {
            (0.0, 0.5)
        } else if name.ends_with(".bias") {
            (0.0, 0.02)
        } else if name.starts_with("model.encoder.conv") {
            // Audio features well above the sinusoidal positions.
            (
                0.0,
                2.5 / (shape[1..].iter().product::<usize>() as f32).sqrt(),
            )
        } else if name.ends_with("encoder_attn.q_proj.weight") {
            // Peaked cross-attention: an average over 1500 frames would hide the audio.
            (0.0, 4.0 / (self.d_model as f32).sqrt())
        } else {
            let fan_in: usize = shape[1..].iter().product();
            (0.0, 1.0 / (fan_in as f32).sqrt())
        };
        let mut r = stream(self.seed, name);
        let mut data: Vec<f32> = (0..n).map(|_| mean + std * r.normal()).collect();
        // A length prior, so sequences end now and then instead of always running to the
        // limit: positions drift along a direction `u` and the end-of-text embedding reads
        // `u` through the final layer norm's gains.
        let d = self.d_model;
        let u = || {
            let mut r = stream(self.seed, "end-of-text direction");
            (0..d).map(|_| r.normal()).collect::<Vec<f32>>()
        };
        if name == "model.decoder.embed_positions.weight" && self.length_prior {
            let u = u();
            for (p, row) in data.chunks_mut(d).enumerate() {
                let ramp = EOT_DRIFT * (p as f32).min(2.0 * EOT_RAMP) / EOT_RAMP;
                row.iter_mut().zip(&u).for_each(|(x, u)| *x += ramp * u);
            }
        }
        if name == "model.decoder.embed_tokens.weight" && self.length_prior {
            let eot = vocab_layout(self.vocab_size).0;
            let mut r = stream(self.seed, "model.decoder.layer_norm.weight");
            let gains: Vec<f32> = (0..d).map(|_| r.normal()).collect();
            let row = &mut data[eot * d..(eot + 1) * d];
            for ((x, u), g) in row.iter_mut().zip(u()).zip(gains) {
                *x = EOT_GAIN * u * g;
            }
        }
        if let Some((noise_seed, rel)) = self.decoder_noise {
            if name.starts_with("model.decoder.") {
                let mut r = stream(noise_seed ^ 0x005e_ed0f_d1ff, name);
                data.iter_mut().for_each(|x| *x += rel * std * r.normal());
            }
        }
        HostTensor::new(shape, data)
    }
}

/// Whisper's sinusoidal position table (`[length, channels]`).
pub fn sinusoids(length: usize, channels: usize) -> Vec<f32> {
    let half = channels / 2;
    let inc = (10_000f64).ln() / (half as f64 - 1.0);
    let mut out = Vec::with_capacity(length * channels);
    for t in 0..length {
        let row: Vec<f64> = (0..half)
            .map(|i| t as f64 * (-inc * i as f64).exp())
            .collect();
        out.extend(row.iter().map(|x| x.sin() as f32));
        out.extend(row.iter().map(|x| x.cos() as f32));
    }
    out
}

fn io<T>(path: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| WhisperError::io(path, e))
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| WhisperError::Config(e.to_string()))?;
    io(path, std::fs::write(path, text))
}

/// Layout of a Whisper vocabulary: `(text tokens, language count)`; specials follow.
fn vocab_layout(vocab_size: usize) -> (usize, usize) {
    let n_lang = if vocab_size >= 51866 { 100 } else { 99 };
    // text tokens, eot, sot, languages, translate/transcribe/startoflm/startofprev/nospeech,
    // notimestamps, 1501 timestamps
    (vocab_size - 2 - n_lang - 5 - 1 - 1501, n_lang)
}

/// The special tokens in id order, starting at `<|endoftext|>` (= the text-token count).
fn special_tokens(vocab_size: usize) -> Vec<String> {
    let (_, n_lang) = vocab_layout(vocab_size);
    let mut s = vec![
        "<|endoftext|>".to_string(),
        "<|startoftranscript|>".to_string(),
    ];
    s.extend(
        crate::tokenizer::LANGUAGES[..n_lang]
            .iter()
            .map(|c| format!("<|{c}|>")),
    );
    let nospeech = if vocab_size >= 51866 {
        "<|nospeech|>"
    } else {
        "<|nocaptions|>"
    };
    for t in [
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        nospeech,
        "<|notimestamps|>",
    ] {
        s.push(t.to_string());
    }
    s
}

/// Ids Whisper checkpoints suppress (a few text tokens, as the real lists do).
fn suppress_ids(vocab_size: usize) -> (Vec<u32>, Vec<u32>) {
    let eot = vocab_layout(vocab_size).0 as u32;
    (
        vec![
            1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93,
        ],
        vec![220, eot],
    )
}

/// A `tokenizer.json` with word-level text tokens `w0`, `w1`, ... and Whisper's special
/// tokens at Whisper's ids for this vocabulary size (timestamps implied, as in real files).
pub fn tokenizer_json(vocab_size: usize) -> serde_json::Value {
    let (n_text, _) = vocab_layout(vocab_size);
    let specials = special_tokens(vocab_size);
    let mut vocab: serde_json::Map<String, serde_json::Value> =
        (0..n_text).map(|i| (format!("w{i}"), json!(i))).collect();
    let mut added = Vec::new();
    for (i, s) in specials.iter().enumerate() {
        vocab.insert(s.clone(), json!(n_text + i));
        added.push(
            json!({"id": n_text + i, "content": s, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true}),
        );
    }
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "w0"}
    })
}

fn write_tokenizer(dir: &Path, spec: &TinySpec) -> Result<()> {
    write_json(
        &dir.join("tokenizer.json"),
        &tokenizer_json(spec.vocab_size),
    )
}

/// Writes a Hugging Face layout checkpoint into `dir` (created if missing).
pub fn write_hf_checkpoint(dir: &Path, spec: &TinySpec) -> Result<()> {
    io(dir, std::fs::create_dir_all(dir))?;
    let c = spec.config();
    let (suppress, begin) = suppress_ids(spec.vocab_size);
    let eot = vocab_layout(spec.vocab_size).0;
    write_json(
        &dir.join("config.json"),
        &json!({
            "architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper",
            "vocab_size": c.vocab_size, "num_mel_bins": c.num_mel_bins, "d_model": c.d_model,
            "encoder_layers": c.encoder_layers, "encoder_attention_heads": c.encoder_attention_heads,
            "encoder_ffn_dim": c.encoder_ffn_dim, "decoder_layers": c.decoder_layers,
            "decoder_attention_heads": c.decoder_attention_heads, "decoder_ffn_dim": c.decoder_ffn_dim,
            "max_source_positions": c.max_source_positions, "max_target_positions": c.max_target_positions,
            "activation_function": "gelu", "scale_embedding": false, "tie_word_embeddings": true,
            "eos_token_id": eot, "bos_token_id": eot, "decoder_start_token_id": eot + 1,
            "torch_dtype": "float32"
        }),
    )?;
    write_json(
        &dir.join("generation_config.json"),
        &json!({"suppress_tokens": suppress, "begin_suppress_tokens": begin, "eos_token_id": eot,
            "decoder_start_token_id": eot + 1, "max_length": c.max_target_positions,
            "alignment_heads": [[0, 0]]}),
    )?;
    write_safetensors(&dir.join("model.safetensors"), &spec.hf_tensors())?;
    write_tokenizer(dir, spec)
}

fn encode(values: &[f32], dtype: Ct2Dtype) -> Vec<u8> {
    match dtype {
        Ct2Dtype::F16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        Ct2Dtype::BF16 => values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect(),
        _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// `(alias, target)` variable names of a `model.bin`.
pub type Ct2Aliases = Vec<(String, String)>;

/// The `model.bin` variables of `spec` in CTranslate2 naming (fused projections) and the
/// alias of the output projection. `dtype` is F32, F16, BF16 or I8 (int8 linear and
/// embedding weights with a per-row `weight_scale`, everything else f32).
pub fn ct2_variables(spec: &TinySpec, dtype: Ct2Dtype) -> Result<(Vec<Ct2WriteVar>, Ct2Aliases)> {
    if matches!(dtype, Ct2Dtype::I16 | Ct2Dtype::I32) {
        return Err(WhisperError::Weights(format!(
            "{dtype:?} model.bin files are not written"
        )));
    }
    let mut hf: HashMap<String, HostTensor> = spec.hf_tensors().into_iter().collect();
    let mut take = |name: &str| {
        hf.remove(name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
    };
    let mut vars = Vec::new();
    let float = if dtype == Ct2Dtype::I8 {
        Ct2Dtype::F32
    } else {
        dtype
    };
    let scalar = |vars: &mut Vec<Ct2WriteVar>, name: &str, dtype: Ct2Dtype, bytes: Vec<u8>| {
        vars.push(Ct2WriteVar {
            name: name.into(),
            shape: vec![],
            dtype,
            bytes,
        });
    };
    let plain = |vars: &mut Vec<Ct2WriteVar>, name: String, t: HostTensor| {
        vars.push(Ct2WriteVar {
            bytes: encode(&t.data, float),
            name,
            shape: t.shape,
            dtype: float,
        });
    };
    // Weights of linear layers and embeddings: quantized when int8.
    let weight = |vars: &mut Vec<Ct2WriteVar>, prefix: &str, t: HostTensor| {
        if dtype != Ct2Dtype::I8 || t.shape.len() != 2 {
            plain(vars, format!("{prefix}/weight"), t);
            return;
        }
        let cols = t.shape[1];
        let mut q = Vec::with_capacity(t.data.len());
        let mut scales = Vec::with_capacity(t.shape[0]);
        for row in t.data.chunks(cols) {
            let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if amax > 0.0 { 127.0 / amax } else { 1.0 };
            q.extend(
                row.iter()
                    .map(|v| (v * scale).round().clamp(-127.0, 127.0) as i8 as u8),
            );
            scales.push(scale);
        }
        let rows = t.shape[0];
        vars.push(Ct2WriteVar {
            name: format!("{prefix}/weight"),
            shape: t.shape,
            dtype: Ct2Dtype::I8,
            bytes: q,
        });
        vars.push(Ct2WriteVar {
            name: format!("{prefix}/weight_scale"),
            shape: vec![rows],
            dtype: Ct2Dtype::F32,
            bytes: encode(&scales, Ct2Dtype::F32),
        });
    };
    let fuse = |parts: Vec<HostTensor>| {
        let rows = parts.iter().map(|p| p.shape[0]).sum();
        let mut shape = parts[0].shape.clone();
        shape[0] = rows;
        HostTensor::new(shape, parts.into_iter().flat_map(|p| p.data).collect())
    };
    let zeros = |n: usize| HostTensor::new(vec![n], vec![0.0; n]);
    let d = spec.d_model;

    scalar(&mut vars, "decoder/activation", Ct2Dtype::I8, vec![1]);
    scalar(&mut vars, "decoder/alibi", Ct2Dtype::I8, vec![0]);
    scalar(
        &mut vars,
        "decoder/alignment_heads",
        Ct2Dtype::I16,
        1i16.to_le_bytes().to_vec(),
    );
    scalar(
        &mut vars,
        "decoder/alignment_layer",
        Ct2Dtype::I16,
        (-1i16).to_le_bytes().to_vec(),
    );
    weight(
        &mut vars,
        "decoder/embeddings",
        take("model.decoder.embed_tokens.weight"),
    );
    for i in 0..spec.decoder_layers {
        let (c, h) = (
            format!("decoder/layer_{i}"),
            format!("model.decoder.layers.{i}"),
        );
        for (ct2, hf) in [
            ("self_attention", "self_attn_layer_norm"),
            ("attention", "encoder_attn_layer_norm"),
            ("ffn", "final_layer_norm"),
        ] {
            plain(
                &mut vars,
                format!("{c}/{ct2}/layer_norm/gamma"),
                take(&format!("{h}.{hf}.weight")),
            );
            plain(
                &mut vars,
                format!("{c}/{ct2}/layer_norm/beta"),
                take(&format!("{h}.{hf}.bias")),
            );
        }
        let a = format!("{h}.self_attn");
        let qkv = fuse(vec![
            take(&format!("{a}.q_proj.weight")),
            take(&format!("{a}.k_proj.weight")),
            take(&format!("{a}.v_proj.weight")),
        ]);
        weight(&mut vars, &format!("{c}/self_attention/linear_0"), qkv);
        let qkv_b = fuse(vec![
            take(&format!("{a}.q_proj.bias")),
            zeros(d),
            take(&format!("{a}.v_proj.bias")),
        ]);
        plain(
            &mut vars,
            format!("{c}/self_attention/linear_0/bias"),
            qkv_b,
        );
        weight(
            &mut vars,
            &format!("{c}/self_attention/linear_1"),
            take(&format!("{a}.out_proj.weight")),
        );
        plain(
            &mut vars,
            format!("{c}/self_attention/linear_1/bias"),
            take(&format!("{a}.out_proj.bias")),
        );
        let a = format!("{h}.encoder_attn");
        weight(
            &mut vars,
            &format!("{c}/attention/linear_0"),
            take(&format!("{a}.q_proj.weight")),
        );
        plain(
            &mut vars,
            format!("{c}/attention/linear_0/bias"),
            take(&format!("{a}.q_proj.bias")),
        );
        let kv = fuse(vec![
            take(&format!("{a}.k_proj.weight")),
            take(&format!("{a}.v_proj.weight")),
        ]);
        weight(&mut vars, &format!("{c}/attention/linear_1"), kv);
        plain(
            &mut vars,
            format!("{c}/attention/linear_1/bias"),
            fuse(vec![zeros(d), take(&format!("{a}.v_proj.bias"))]),
        );
        weight(
            &mut vars,
            &format!("{c}/attention/linear_2"),
            take(&format!("{a}.out_proj.weight")),
        );
        plain(
            &mut vars,
            format!("{c}/attention/linear_2/bias"),
            take(&format!("{a}.out_proj.bias")),
        );
        ct2_ffn(&mut vars, &c, &h, &mut take, &weight, &plain);
    }
    plain(
        &mut vars,
        "decoder/layer_norm/gamma".into(),
        take("model.decoder.layer_norm.weight"),
    );
    plain(
        &mut vars,
        "decoder/layer_norm/beta".into(),
        take("model.decoder.layer_norm.bias"),
    );
    scalar(
        &mut vars,
        "decoder/num_heads",
        Ct2Dtype::I16,
        (spec.heads as i16).to_le_bytes().to_vec(),
    );
    plain(
        &mut vars,
        "decoder/position_encodings/encodings".into(),
        take("model.decoder.embed_positions.weight"),
    );
    scalar(&mut vars, "decoder/pre_norm", Ct2Dtype::I8, vec![1]);
    scalar(&mut vars, "decoder/scale_embeddings", Ct2Dtype::I8, vec![0]);
    scalar(
        &mut vars,
        "decoder/start_from_zero_embedding",
        Ct2Dtype::I8,
        vec![0],
    );
    plain(
        &mut vars,
        "encoder/conv1/bias".into(),
        take("model.encoder.conv1.bias"),
    );
    plain(
        &mut vars,
        "encoder/conv1/weight".into(),
        take("model.encoder.conv1.weight"),
    );
    plain(
        &mut vars,
        "encoder/conv2/bias".into(),
        take("model.encoder.conv2.bias"),
    );
    plain(
        &mut vars,
        "encoder/conv2/weight".into(),
        take("model.encoder.conv2.weight"),
    );
    for i in 0..spec.encoder_layers {
        let (c, h) = (
            format!("encoder/layer_{i}"),
            format!("model.encoder.layers.{i}"),
        );
        for (ct2, hf) in [
            ("self_attention", "self_attn_layer_norm"),
            ("ffn", "final_layer_norm"),
        ] {
            plain(
                &mut vars,
                format!("{c}/{ct2}/layer_norm/gamma"),
                take(&format!("{h}.{hf}.weight")),
            );
            plain(
                &mut vars,
                format!("{c}/{ct2}/layer_norm/beta"),
                take(&format!("{h}.{hf}.bias")),
            );
        }
        let a = format!("{h}.self_attn");
        let qkv = fuse(vec![
            take(&format!("{a}.q_proj.weight")),
            take(&format!("{a}.k_proj.weight")),
            take(&format!("{a}.v_proj.weight")),
        ]);
        weight(&mut vars, &format!("{c}/self_attention/linear_0"), qkv);
        let qkv_b = fuse(vec![
            take(&format!("{a}.q_proj.bias")),
            zeros(d),
            take(&format!("{a}.v_proj.bias")),
        ]);
        plain(
            &mut vars,
            format!("{c}/self_attention/linear_0/bias"),
            qkv_b,
        );
        weight(
            &mut vars,
            &format!("{c}/self_attention/linear_1"),
            take(&format!("{a}.out_proj.weight")),
        );
        plain(
            &mut vars,
            format!("{c}/self_attention/linear_1/bias"),
            take(&format!("{a}.out_proj.bias")),
        );
        ct2_ffn(&mut vars, &c, &h, &mut take, &weight, &plain);
    }
    plain(
        &mut vars,
        "encoder/layer_norm/gamma".into(),
        take("model.encoder.layer_norm.weight"),
    );
    plain(
        &mut vars,
        "encoder/layer_norm/beta".into(),
        take("model.encoder.layer_norm.bias"),
    );
    scalar(
        &mut vars,
        "encoder/num_heads",
        Ct2Dtype::I16,
        (spec.heads as i16).to_le_bytes().to_vec(),
    );
    plain(
        &mut vars,
        "encoder/position_encodings/encodings".into(),
        take("model.encoder.embed_positions.weight"),
    );
    debug_assert!(
        hf.is_empty(),
        "tensors left unwritten: {:?}",
        hf.keys().collect::<Vec<_>>()
    );
    let aliases = vec![(
        "decoder/projection/weight".to_string(),
        "decoder/embeddings/weight".to_string(),
    )];
    Ok((vars, aliases))
}

fn ct2_ffn(
    vars: &mut Vec<Ct2WriteVar>,
    c: &str,
    h: &str,
    take: &mut impl FnMut(&str) -> HostTensor,
    weight: &impl Fn(&mut Vec<Ct2WriteVar>, &str, HostTensor),
    plain: &impl Fn(&mut Vec<Ct2WriteVar>, String, HostTensor),
) {
    weight(
        vars,
        &format!("{c}/ffn/linear_0"),
        take(&format!("{h}.fc1.weight")),
    );
    plain(
        vars,
        format!("{c}/ffn/linear_0/bias"),
        take(&format!("{h}.fc1.bias")),
    );
    weight(
        vars,
        &format!("{c}/ffn/linear_1"),
        take(&format!("{h}.fc2.weight")),
    );
    plain(
        vars,
        format!("{c}/ffn/linear_1/bias"),
        take(&format!("{h}.fc2.bias")),
    );
}

/// Writes a CTranslate2 layout checkpoint into `dir` (created if missing).
pub fn write_ct2_checkpoint(dir: &Path, spec: &TinySpec, dtype: Ct2Dtype) -> Result<()> {
    io(dir, std::fs::create_dir_all(dir))?;
    let (vars, aliases) = ct2_variables(spec, dtype)?;
    write_model_bin(&dir.join("model.bin"), &vars, &aliases)?;
    let (suppress, begin) = suppress_ids(spec.vocab_size);
    let (n_text, n_lang) = vocab_layout(spec.vocab_size);
    let lang_ids: Vec<usize> = (n_text + 2..n_text + 2 + n_lang).collect();
    write_json(
        &dir.join("config.json"),
        &json!({"alignment_heads": [[0, 0]], "lang_ids": lang_ids, "suppress_ids": suppress,
            "suppress_ids_begin": begin}),
    )?;
    write_tokenizer(dir, spec)
}

/// A random log-mel window (`[n_mels][3000]`, values in Whisper's normalised range).
pub fn random_mel(seed: u64, n_mels: usize) -> Vec<f32> {
    let mut r = SplitMix::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x3e1);
    r.next_u64();
    (0..n_mels * crate::mel::N_FRAMES_PER_WINDOW)
        .map(|_| (0.5 * r.normal()).clamp(-1.5, 1.5))
        .collect()
}

/// Synthetic 16 kHz audio: a few tones with a slow envelope over noise, different per seed.
pub fn synthetic_audio(seed: u64, seconds: f32) -> Vec<f32> {
    let mut r = SplitMix::new(seed ^ 0xa0d1_0000);
    r.next_u64();
    let n = (seconds * 16_000.0) as usize;
    let tones: Vec<(f32, f32, f32)> = (0..4)
        .map(|_| {
            (
                100.0 + 3000.0 * r.uniform(),
                0.05 + 0.2 * r.uniform(),
                0.3 + 3.0 * r.uniform(),
            )
        })
        .collect();
    (0..n)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            let tone: f32 = tones
                .iter()
                .map(|(f, a, rate)| {
                    a * (std::f32::consts::TAU * f * t).sin() * (0.5 + 0.5 * (rate * t).sin())
                })
                .sum();
            tone + 0.02 * r.normal()
        })
        .collect()
}

/// Where a test runs: a backend's device and the kernels its models load in. The same
/// invariant tests run on every target ([`crate::on_every_target`]).
#[derive(Debug, Clone)]
pub struct Target<B: crate::backend::WhisperBackend> {
    pub device: B::Device,
    pub kernels: crate::backend::Kernels,
}

impl<B: crate::backend::WhisperBackend> Target<B> {
    pub fn new(kernels: crate::backend::Kernels) -> Self {
        Self {
            device: Default::default(),
            kernels,
        }
    }

    /// Loads a model directory on this target.
    pub fn load(&self, dir: &Path) -> crate::Pipeline<B> {
        crate::Pipeline::<B>::load_with(dir.to_str().unwrap_or(""), &self.device, self.kernels)
            .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
    }

    /// A short name for directories and messages.
    pub fn name(&self) -> String {
        let backend = std::any::type_name::<B>();
        let backend = if backend.contains("Wgpu") || backend.contains("wgpu") {
            "wgpu"
        } else if backend.contains("Cuda") || backend.contains("cuda") {
            "cuda"
        } else {
            "cpu"
        };
        format!("{backend}-{}", self.kernels.name())
    }
}

/// Generates one `#[test]` per (function, target) for generic test functions
/// `fn name<B: WhisperBackend>(t: &Target<B>)`: on the CPU backend with the host kernels
/// and with the generic ones, and, with the crate's `wgpu` feature, on wgpu (tests run
/// there through Mesa's software Vulkan in CI). Candle's per-device test macro, for burn.
#[macro_export]
macro_rules! on_every_target {
    ($($name:ident),* $(,)?) => {
        mod cpu_host {
            $(#[test]
            fn $name() {
                super::$name(&$crate::testing::Target::<$crate::backend::CpuBackend>::new(
                    $crate::backend::Kernels::Host,
                ))
            })*
        }
        mod cpu_generic {
            $(#[test]
            fn $name() {
                super::$name(&$crate::testing::Target::<$crate::backend::CpuBackend>::new(
                    $crate::backend::Kernels::Generic,
                ))
            })*
        }
        #[cfg(feature = "wgpu")]
        mod wgpu {
            $(#[test]
            fn $name() {
                super::$name(&$crate::testing::Target::<$crate::backend::WgpuBackend>::new(
                    $crate::backend::Kernels::Generic,
                ))
            })*
        }
    };
}
