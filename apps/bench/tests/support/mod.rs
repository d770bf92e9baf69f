//! Test helpers: a tiny Whisper with random weights in the Hugging Face layout.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use whisper_burn::weights::safetensors::write_safetensors;
use whisper_burn::weights::HostTensor;

/// `weights/models/tiny.en/tokenizer.json` of the workspace (English-only, 51864 tokens).
pub const TOKENIZER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../weights/models/tiny.en/tokenizer.json"
);

/// The shared LibriSpeech folder (`eval_quick_40.tsv`, `LibriSpeech/test-clean/...`).
pub const LIBRISPEECH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/librispeech"
);

/// `weights/models/tiny.en` of the workspace (real weights; `bash weights/fetch.sh`).
pub fn tiny_en() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../weights/models/tiny.en");
    assert!(
        Path::new(dir).join("model.bin").is_file(),
        "{dir} missing: run `bash weights/fetch.sh`"
    );
    dir.to_string()
}

/// A fresh, empty folder `target/<group>/<name>` of the workspace (kept after the test
/// for inspection).
pub fn target_dir(group: &str, name: &str) -> PathBuf {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target"))
        .join(group)
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "whisper-bench-{name}-{}-{nanos}",
        std::process::id()
    ));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Shape of the tiny model.
pub struct TinyConfig {
    pub vocab: usize,
    pub d_model: usize,
    pub heads: usize,
    pub ffn: usize,
    pub layers: usize,
    pub n_mels: usize,
}

impl Default for TinyConfig {
    fn default() -> Self {
        Self {
            vocab: 51864,
            d_model: 64,
            heads: 2,
            ffn: 128,
            layers: 1,
            n_mels: 80,
        }
    }
}

/// Deterministic uniform numbers in [-scale, scale) (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn tensor(&mut self, shape: &[usize], scale: f32) -> HostTensor {
        let n = shape.iter().product();
        HostTensor::new(
            shape.to_vec(),
            (0..n).map(|_| self.next() * scale).collect(),
        )
    }
}

/// Writes `config.json`, `model.safetensors` and `tokenizer.json` of a random-weight
/// English-only Whisper into `dir` and returns `dir`.
pub fn write_tiny_random_model(dir: &Path, c: &TinyConfig, seed: u64) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let config = serde_json::json!({
        "vocab_size": c.vocab,
        "num_mel_bins": c.n_mels,
        "d_model": c.d_model,
        "encoder_layers": c.layers,
        "encoder_attention_heads": c.heads,
        "encoder_ffn_dim": c.ffn,
        "decoder_layers": c.layers,
        "decoder_attention_heads": c.heads,
        "decoder_ffn_dim": c.ffn,
        "max_source_positions": 1500,
        "max_target_positions": 448,
    });
    fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    fs::copy(TOKENIZER, dir.join("tokenizer.json"))
        .unwrap_or_else(|e| panic!("copying {TOKENIZER}: {e}"));

    let d = c.d_model;
    let w = 1.0 / (d as f32).sqrt();
    let mut rng = Rng(seed | 1);
    let mut t: Vec<(String, HostTensor)> = Vec::new();
    let mut push = |name: String, tensor: HostTensor| t.push((name, tensor));
    let ones = |n: usize| HostTensor::new(vec![n], vec![1.0; n]);
    let zeros = |n: usize| HostTensor::new(vec![n], vec![0.0; n]);

    push(
        "model.encoder.conv1.weight".into(),
        rng.tensor(&[d, c.n_mels, 3], 0.05),
    );
    push("model.encoder.conv1.bias".into(), rng.tensor(&[d], 0.02));
    push(
        "model.encoder.conv2.weight".into(),
        rng.tensor(&[d, d, 3], 0.05),
    );
    push("model.encoder.conv2.bias".into(), rng.tensor(&[d], 0.02));
    push(
        "model.encoder.embed_positions.weight".into(),
        rng.tensor(&[1500, d], 0.1),
    );
    push(
        "model.decoder.embed_tokens.weight".into(),
        rng.tensor(&[c.vocab, d], 0.5),
    );
    push(
        "model.decoder.embed_positions.weight".into(),
        rng.tensor(&[448, d], 0.1),
    );

    let attention = |push: &mut dyn FnMut(String, HostTensor), p: &str, rng: &mut Rng| {
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            push(format!("{p}.{proj}.weight"), rng.tensor(&[d, d], w));
            if proj != "k_proj" {
                push(format!("{p}.{proj}.bias"), rng.tensor(&[d], 0.02));
            }
        }
    };
    for side in ["encoder", "decoder"] {
        for l in 0..c.layers {
            let p = format!("model.{side}.layers.{l}");
            attention(&mut push, &format!("{p}.self_attn"), &mut rng);
            let mut norms = vec!["self_attn_layer_norm", "final_layer_norm"];
            if side == "decoder" {
                attention(&mut push, &format!("{p}.encoder_attn"), &mut rng);
                norms.push("encoder_attn_layer_norm");
            }
            for n in norms {
                push(format!("{p}.{n}.weight"), ones(d));
                push(format!("{p}.{n}.bias"), zeros(d));
            }
            push(format!("{p}.fc1.weight"), rng.tensor(&[c.ffn, d], w));
            push(format!("{p}.fc1.bias"), rng.tensor(&[c.ffn], 0.02));
            push(
                format!("{p}.fc2.weight"),
                rng.tensor(&[d, c.ffn], 1.0 / (c.ffn as f32).sqrt()),
            );
            push(format!("{p}.fc2.bias"), rng.tensor(&[d], 0.02));
        }
        push(format!("model.{side}.layer_norm.weight"), ones(d));
        push(format!("model.{side}.layer_norm.bias"), zeros(d));
    }
    write_safetensors(&dir.join("model.safetensors"), &t).unwrap();
    dir.to_path_buf()
}

/// Rows of an RFC 4180 CSV text (quoted fields may hold commas, quotes and newlines).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if quoted {
            match ch {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(ch),
            }
        } else {
            match ch {
                '"' => quoted = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\n' => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                '\r' => {}
                _ => field.push(ch),
            }
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}
