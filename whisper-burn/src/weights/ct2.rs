//! CTranslate2 / faster-whisper model directories: `model.bin`, `config.json`, `tokenizer.json`.
//!
//! `model.bin` (binary version 6 for Whisper) is: version u32, spec name, spec revision u32,
//! variable count u32, then per variable: name, rank u8, dims u32 x rank, dtype u8,
//! byte count u32, raw data; then alias count u32 and (alias, target) name pairs.
//! Strings are a u16 length (including a trailing NUL) and the bytes.
//! Weights are renamed to Hugging Face names here (fused projections split).
use super::{
    json_u32_list, read_json, tokenizer_path, CheckpointFormat, HostTensor, LoadedCheckpoint,
    TensorStore,
};
use crate::config::{json_alignment_heads, GenerationConfig, WhisperConfig};
use crate::{Result, WhisperError};
use std::collections::HashMap;
use std::path::Path;

/// CTranslate2 `DataType` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct2Dtype {
    F32 = 0,
    I8 = 1,
    I16 = 2,
    I32 = 3,
    F16 = 4,
    BF16 = 5,
}

impl Ct2Dtype {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }
    fn size_bytes(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// A raw CTranslate2 variable, converted to f32 values.
#[derive(Debug, Clone)]
pub struct Ct2Variable {
    pub shape: Vec<usize>,
    pub dtype: Ct2Dtype,
    pub values: Vec<f32>,
}

/// Reads a CTranslate2 Whisper directory.
pub fn load_ct2_dir(dir: &Path) -> Result<LoadedCheckpoint> {
    let bytes = std::fs::read(dir.join("model.bin"))
        .map_err(|e| WhisperError::io(dir.join("model.bin"), e))?;
    let vars = parse_model_bin(&bytes)?;
    let cfg_path = dir.join("config.json");
    let cfg = if cfg_path.is_file() {
        read_json(&cfg_path)?
    } else {
        serde_json::Value::Null
    };
    let generation = GenerationConfig {
        suppress_tokens: json_u32_list(cfg.get("suppress_ids")),
        begin_suppress_tokens: json_u32_list(cfg.get("suppress_ids_begin")),
        alignment_heads: json_alignment_heads(cfg.get("alignment_heads")),
    };
    let (config, tensors) = to_hf_layout(vars)?;
    let tokenizer_path = tokenizer_path(dir)?;
    Ok(LoadedCheckpoint {
        config,
        generation,
        tensors,
        tokenizer_path,
        format: CheckpointFormat::CTranslate2,
        dir: dir.to_path_buf(),
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| {
                WhisperError::Weights(format!(
                    "model.bin truncated at byte {} (wanted {n} more)",
                    self.pos
                ))
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec())
            .map_err(|_| WhisperError::Weights("model.bin: bad variable name".into()))
    }
}

/// Parses `model.bin` into named variables (aliases resolved to copies).
pub fn parse_model_bin(bytes: &[u8]) -> Result<HashMap<String, Ct2Variable>> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u32()?;
    if !(4..=6).contains(&version) {
        return Err(WhisperError::Weights(format!(
            "model.bin binary version {version} is not supported (4 to 6)"
        )));
    }
    let spec = r.string()?;
    if spec != "WhisperSpec" {
        return Err(WhisperError::Weights(format!(
            "model.bin holds a `{spec}`, not a WhisperSpec"
        )));
    }
    let _revision = r.u32()?;
    let n_vars = r.u32()? as usize;
    let mut vars = HashMap::with_capacity(n_vars);
    for _ in 0..n_vars {
        let name = r.string()?;
        let rank = r.u8()? as usize;
        let shape = (0..rank)
            .map(|_| r.u32().map(|d| d as usize))
            .collect::<Result<Vec<_>>>()?;
        let dtype_id = r.u8()?;
        let dtype = Ct2Dtype::from_id(dtype_id)
            .ok_or_else(|| WhisperError::Weights(format!("{name}: unknown dtype id {dtype_id}")))?;
        let n_bytes = r.u32()? as usize;
        let expected = shape.iter().product::<usize>() * dtype.size_bytes();
        if n_bytes != expected {
            return Err(WhisperError::Weights(format!(
                "{name}: {n_bytes} bytes for shape {shape:?}"
            )));
        }
        let values = decode_values(dtype, r.take(n_bytes)?);
        vars.insert(
            name,
            Ct2Variable {
                shape,
                dtype,
                values,
            },
        );
    }
    let n_aliases = r.u32()? as usize;
    for _ in 0..n_aliases {
        let alias = r.string()?;
        let target = r.string()?;
        if let Some(v) = vars.get(&target).cloned() {
            vars.insert(alias, v);
        }
    }
    Ok(vars)
}

fn decode_values(dtype: Ct2Dtype, b: &[u8]) -> Vec<f32> {
    match dtype {
        Ct2Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Ct2Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Ct2Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Ct2Dtype::I8 => b.iter().map(|v| *v as i8 as f32).collect(),
        Ct2Dtype::I16 => b
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
            .collect(),
        Ct2Dtype::I32 => b
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
    }
}

struct Ct2Weights {
    vars: HashMap<String, Ct2Variable>,
}

impl Ct2Weights {
    fn var(&mut self, name: &str) -> Result<Ct2Variable> {
        self.vars
            .remove(name)
            .ok_or_else(|| WhisperError::Weights(format!("model.bin: missing variable `{name}`")))
    }

    /// A weight, dequantized when stored as int8 with a `weight_scale` (w = q / scale per row).
    fn weight(&mut self, prefix: &str) -> Result<HostTensor> {
        let w = self.var(&format!("{prefix}/weight"))?;
        let mut values = w.values;
        if w.dtype == Ct2Dtype::I8 || w.dtype == Ct2Dtype::I16 {
            let scale = self.var(&format!("{prefix}/weight_scale"))?;
            let cols = w.shape[1..].iter().product::<usize>();
            for (row, s) in scale.values.iter().enumerate() {
                values[row * cols..(row + 1) * cols]
                    .iter_mut()
                    .for_each(|v| *v /= s);
            }
        }
        Ok(HostTensor::new(w.shape, values))
    }

    fn tensor(&mut self, name: &str) -> Result<HostTensor> {
        let v = self.var(name)?;
        Ok(HostTensor::new(v.shape, v.values))
    }

    fn scalar(&self, name: &str) -> Result<usize> {
        self.vars
            .get(name)
            .and_then(|v| v.values.first())
            .map(|v| *v as usize)
            .ok_or_else(|| WhisperError::Weights(format!("model.bin: missing scalar `{name}`")))
    }

    fn count_layers(&self, stack: &str) -> usize {
        (0..)
            .take_while(|i| {
                self.vars
                    .contains_key(&format!("{stack}/layer_{i}/ffn/linear_0/bias"))
            })
            .count()
    }
}

/// Splits a fused `[n * d, ...]` weight (or bias) into `n` equal parts along the first dim.
fn split_rows(t: HostTensor, n: usize) -> Vec<HostTensor> {
    let rows = t.shape[0] / n;
    let cols = t.shape[1..].iter().product::<usize>();
    let mut shape = t.shape.clone();
    shape[0] = rows;
    t.data
        .chunks(rows * cols)
        .map(|c| HostTensor::new(shape.clone(), c.to_vec()))
        .collect()
}

fn to_hf_layout(vars: HashMap<String, Ct2Variable>) -> Result<(WhisperConfig, TensorStore)> {
    let mut w = Ct2Weights { vars };
    let emb = w.weight("decoder/embeddings")?;
    let conv1 = w.weight("encoder/conv1")?;
    let config = WhisperConfig {
        vocab_size: emb.shape[0],
        num_mel_bins: conv1.shape[1],
        d_model: emb.shape[1],
        encoder_layers: w.count_layers("encoder"),
        encoder_attention_heads: w.scalar("encoder/num_heads")?,
        encoder_ffn_dim: w
            .vars
            .get("encoder/layer_0/ffn/linear_0/bias")
            .map(|v| v.shape[0])
            .unwrap_or(0),
        decoder_layers: w.count_layers("decoder"),
        decoder_attention_heads: w.scalar("decoder/num_heads")?,
        decoder_ffn_dim: w
            .vars
            .get("decoder/layer_0/ffn/linear_0/bias")
            .map(|v| v.shape[0])
            .unwrap_or(0),
        max_source_positions: w
            .vars
            .get("encoder/position_encodings/encodings")
            .map(|v| v.shape[0])
            .unwrap_or(1500),
        max_target_positions: w
            .vars
            .get("decoder/position_encodings/encodings")
            .map(|v| v.shape[0])
            .unwrap_or(448),
    };
    let mut s = TensorStore::default();
    s.insert("model.decoder.embed_tokens.weight", emb);
    s.insert("model.encoder.conv1.weight", conv1);
    s.insert("model.encoder.conv1.bias", w.tensor("encoder/conv1/bias")?);
    s.insert("model.encoder.conv2.weight", w.weight("encoder/conv2")?);
    s.insert("model.encoder.conv2.bias", w.tensor("encoder/conv2/bias")?);
    s.insert(
        "model.encoder.embed_positions.weight",
        w.tensor("encoder/position_encodings/encodings")?,
    );
    s.insert(
        "model.decoder.embed_positions.weight",
        w.tensor("decoder/position_encodings/encodings")?,
    );
    norm(
        &mut w,
        &mut s,
        "encoder/layer_norm",
        "model.encoder.layer_norm",
    )?;
    norm(
        &mut w,
        &mut s,
        "decoder/layer_norm",
        "model.decoder.layer_norm",
    )?;
    for i in 0..config.encoder_layers {
        let (c, h) = (
            format!("encoder/layer_{i}"),
            format!("model.encoder.layers.{i}"),
        );
        self_attention(&mut w, &mut s, &c, &h)?;
        ffn(&mut w, &mut s, &c, &h)?;
    }
    for i in 0..config.decoder_layers {
        let (c, h) = (
            format!("decoder/layer_{i}"),
            format!("model.decoder.layers.{i}"),
        );
        self_attention(&mut w, &mut s, &c, &h)?;
        cross_attention(&mut w, &mut s, &c, &h)?;
        ffn(&mut w, &mut s, &c, &h)?;
    }
    Ok((config, s))
}

fn norm(w: &mut Ct2Weights, s: &mut TensorStore, ct2: &str, hf: &str) -> Result<()> {
    s.insert(format!("{hf}.weight"), w.tensor(&format!("{ct2}/gamma"))?);
    s.insert(format!("{hf}.bias"), w.tensor(&format!("{ct2}/beta"))?);
    Ok(())
}

fn linear(w: &mut Ct2Weights, s: &mut TensorStore, ct2: &str, hf: &str) -> Result<()> {
    s.insert(format!("{hf}.weight"), w.weight(ct2)?);
    s.insert(format!("{hf}.bias"), w.tensor(&format!("{ct2}/bias"))?);
    Ok(())
}

/// Inserts `hf_names[i]` for each part of a fused projection (the key projection has no bias).
fn fused(w: &mut Ct2Weights, s: &mut TensorStore, ct2: &str, hf_names: &[String]) -> Result<()> {
    let weights = split_rows(w.weight(ct2)?, hf_names.len());
    let biases = split_rows(w.tensor(&format!("{ct2}/bias"))?, hf_names.len());
    for ((name, wt), b) in hf_names.iter().zip(weights).zip(biases) {
        s.insert(format!("{name}.weight"), wt);
        if !name.ends_with("k_proj") {
            s.insert(format!("{name}.bias"), b);
        }
    }
    Ok(())
}

fn self_attention(w: &mut Ct2Weights, s: &mut TensorStore, c: &str, h: &str) -> Result<()> {
    norm(
        w,
        s,
        &format!("{c}/self_attention/layer_norm"),
        &format!("{h}.self_attn_layer_norm"),
    )?;
    let names: Vec<String> = ["q_proj", "k_proj", "v_proj"]
        .iter()
        .map(|p| format!("{h}.self_attn.{p}"))
        .collect();
    fused(w, s, &format!("{c}/self_attention/linear_0"), &names)?;
    linear(
        w,
        s,
        &format!("{c}/self_attention/linear_1"),
        &format!("{h}.self_attn.out_proj"),
    )
}

fn cross_attention(w: &mut Ct2Weights, s: &mut TensorStore, c: &str, h: &str) -> Result<()> {
    norm(
        w,
        s,
        &format!("{c}/attention/layer_norm"),
        &format!("{h}.encoder_attn_layer_norm"),
    )?;
    linear(
        w,
        s,
        &format!("{c}/attention/linear_0"),
        &format!("{h}.encoder_attn.q_proj"),
    )?;
    let names: Vec<String> = ["k_proj", "v_proj"]
        .iter()
        .map(|p| format!("{h}.encoder_attn.{p}"))
        .collect();
    fused(w, s, &format!("{c}/attention/linear_1"), &names)?;
    linear(
        w,
        s,
        &format!("{c}/attention/linear_2"),
        &format!("{h}.encoder_attn.out_proj"),
    )
}

fn ffn(w: &mut Ct2Weights, s: &mut TensorStore, c: &str, h: &str) -> Result<()> {
    norm(
        w,
        s,
        &format!("{c}/ffn/layer_norm"),
        &format!("{h}.final_layer_norm"),
    )?;
    linear(w, s, &format!("{c}/ffn/linear_0"), &format!("{h}.fc1"))?;
    linear(w, s, &format!("{c}/ffn/linear_1"), &format!("{h}.fc2"))
}

/// One variable to write into a `model.bin` (used by tests that make CTranslate2 checkpoints).
pub struct Ct2WriteVar {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: Ct2Dtype,
    /// Raw little-endian bytes in `dtype`.
    pub bytes: Vec<u8>,
}

/// Writes a version-6 `model.bin` with the given variables and aliases.
pub fn write_model_bin(
    path: &Path,
    vars: &[Ct2WriteVar],
    aliases: &[(String, String)],
) -> Result<()> {
    let mut out = Vec::new();
    let put_str = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    };
    out.extend_from_slice(&6u32.to_le_bytes());
    put_str(&mut out, "WhisperSpec");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
    for v in vars {
        put_str(&mut out, &v.name);
        out.push(v.shape.len() as u8);
        v.shape
            .iter()
            .for_each(|d| out.extend_from_slice(&(*d as u32).to_le_bytes()));
        out.push(v.dtype as u8);
        out.extend_from_slice(&(v.bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&v.bytes);
    }
    out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
    for (a, t) in aliases {
        put_str(&mut out, a);
        put_str(&mut out, t);
    }
    std::fs::write(path, out).map_err(|e| WhisperError::io(path, e))
}
