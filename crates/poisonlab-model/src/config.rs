//! Model configuration in Hugging Face's own `config.json` layout, read and written.
//!
//! Both config generations are accepted: transformers 5.x nests the rotary base under
//! `rope_parameters`, 4.x keeps `rope_theta` at the top level. They resolve to the same [`ModelConfig`].

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// Llama-family decoder (Llama, Qwen2, and our own tiny models).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// `llama` or `qwen2`: decides the key names' defaults and biases.
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Biases on q/k/v projections (Qwen2 has them; o_proj never does).
    pub attention_bias: bool,
    pub mlp_bias: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

/// GPT-2.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_positions: usize,
    pub n_inner: usize,
    pub layer_norm_epsilon: f64,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    Llama(LlamaConfig),
    Gpt2(Gpt2Config),
}

fn get<'a>(v: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn usize_of(path: &Path, v: &Map<String, Value>, key: &str) -> Result<usize> {
    match get(v, key) {
        Some(x) => x
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| bad(path, key, "expected a non-negative integer")),
        None => Err(bad(path, key, "missing field")),
    }
}

fn opt_usize(path: &Path, v: &Map<String, Value>, key: &str) -> Result<Option<usize>> {
    get(v, key)
        .map(|x| {
            x.as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| bad(path, key, "expected an integer"))
        })
        .transpose()
}

fn f64_of(path: &Path, v: &Map<String, Value>, key: &str, default: f64) -> Result<f64> {
    match get(v, key) {
        Some(x) => x
            .as_f64()
            .ok_or_else(|| bad(path, key, "expected a number")),
        None => Ok(default),
    }
}

fn bool_of(path: &Path, v: &Map<String, Value>, key: &str, default: bool) -> Result<bool> {
    match get(v, key) {
        Some(x) => x
            .as_bool()
            .ok_or_else(|| bad(path, key, "expected true or false")),
        None => Ok(default),
    }
}

/// A token id field; lists (several EOS ids) keep the first.
fn token_id(v: &Map<String, Value>, key: &str) -> Option<u32> {
    match get(v, key)? {
        Value::Number(n) => n.as_u64().map(|x| x as u32),
        Value::Array(a) => a.first().and_then(Value::as_u64).map(|x| x as u32),
        _ => None,
    }
}

fn bad(path: &Path, field: &str, message: &str) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        field: field.to_string(),
        message: message.to_string(),
    }
}

impl ModelConfig {
    pub fn from_file(path: &Path) -> Result<ModelConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| bad(path, "(file)", &format!("invalid JSON: {e}")))?;
        let Value::Object(v) = v else {
            return Err(bad(path, "(file)", "expected a JSON object"));
        };
        Self::from_map(path, &v)
    }

    pub fn from_map(path: &Path, v: &Map<String, Value>) -> Result<ModelConfig> {
        let model_type = get(v, "model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(path, "model_type", "missing field"))?;
        match model_type {
            "llama" | "qwen2" | "mistral" => {
                let hidden = usize_of(path, v, "hidden_size")?;
                let heads = usize_of(path, v, "num_attention_heads")?;
                let rope_theta = match get(v, "rope_parameters") {
                    Some(Value::Object(rp)) => {
                        let kind = rp
                            .get("rope_type")
                            .and_then(Value::as_str)
                            .unwrap_or("default");
                        if kind != "default" {
                            return Err(bad(
                                path,
                                "rope_parameters.rope_type",
                                &format!(
                                    "`{kind}` rotary scaling is not supported; only `default`"
                                ),
                            ));
                        }
                        f64_of(path, rp, "rope_theta", 10_000.0)?
                    }
                    Some(_) => return Err(bad(path, "rope_parameters", "expected an object")),
                    None => {
                        if let Some(Value::Object(rs)) = get(v, "rope_scaling") {
                            let kind = rs
                                .get("rope_type")
                                .or_else(|| rs.get("type"))
                                .and_then(Value::as_str)
                                .unwrap_or("default");
                            if kind != "default" {
                                return Err(bad(
                                    path,
                                    "rope_scaling",
                                    &format!(
                                        "`{kind}` rotary scaling is not supported; only `default`"
                                    ),
                                ));
                            }
                        }
                        f64_of(path, v, "rope_theta", 10_000.0)?
                    }
                };
                if bool_of(path, v, "use_sliding_window", false)? {
                    return Err(bad(
                        path,
                        "use_sliding_window",
                        "sliding-window attention is not supported",
                    ));
                }
                let cfg = LlamaConfig {
                    model_type: model_type.to_string(),
                    vocab_size: usize_of(path, v, "vocab_size")?,
                    hidden_size: hidden,
                    intermediate_size: usize_of(path, v, "intermediate_size")?,
                    num_hidden_layers: usize_of(path, v, "num_hidden_layers")?,
                    num_attention_heads: heads,
                    num_key_value_heads: opt_usize(path, v, "num_key_value_heads")?
                        .unwrap_or(heads),
                    head_dim: opt_usize(path, v, "head_dim")?.unwrap_or(hidden / heads.max(1)),
                    rms_norm_eps: f64_of(path, v, "rms_norm_eps", 1e-6)?,
                    rope_theta,
                    max_position_embeddings: opt_usize(path, v, "max_position_embeddings")?
                        .unwrap_or(2048),
                    tie_word_embeddings: bool_of(
                        path,
                        v,
                        "tie_word_embeddings",
                        model_type == "qwen2",
                    )?,
                    attention_bias: bool_of(path, v, "attention_bias", model_type == "qwen2")?,
                    mlp_bias: bool_of(path, v, "mlp_bias", false)?,
                    bos_token_id: token_id(v, "bos_token_id"),
                    eos_token_id: token_id(v, "eos_token_id"),
                };
                if !cfg
                    .num_attention_heads
                    .is_multiple_of(cfg.num_key_value_heads.max(1))
                {
                    return Err(bad(
                        path,
                        "num_key_value_heads",
                        "must divide num_attention_heads",
                    ));
                }
                if !cfg.head_dim.is_multiple_of(2) {
                    return Err(bad(path, "head_dim", "must be even for rotary embeddings"));
                }
                if let Some(act) = get(v, "hidden_act").and_then(Value::as_str)
                    && act != "silu"
                {
                    return Err(bad(
                        path,
                        "hidden_act",
                        &format!("`{act}` is not supported; only silu"),
                    ));
                }
                Ok(ModelConfig::Llama(cfg))
            }
            "gpt2" => {
                let n_embd = usize_of(path, v, "n_embd")?;
                if let Some(act) = get(v, "activation_function").and_then(Value::as_str)
                    && act != "gelu_new"
                    && act != "gelu_pytorch_tanh"
                {
                    return Err(bad(
                        path,
                        "activation_function",
                        &format!("`{act}` is not supported; only gelu_new"),
                    ));
                }
                if bool_of(path, v, "scale_attn_by_inverse_layer_idx", false)?
                    || bool_of(path, v, "reorder_and_upcast_attn", false)?
                {
                    return Err(bad(
                        path,
                        "scale_attn_by_inverse_layer_idx",
                        "these GPT-2 attention variants are not supported",
                    ));
                }
                Ok(ModelConfig::Gpt2(Gpt2Config {
                    vocab_size: usize_of(path, v, "vocab_size")?,
                    n_embd,
                    n_layer: usize_of(path, v, "n_layer")?,
                    n_head: usize_of(path, v, "n_head")?,
                    n_positions: usize_of(path, v, "n_positions")?,
                    n_inner: opt_usize(path, v, "n_inner")?.unwrap_or(4 * n_embd),
                    layer_norm_epsilon: f64_of(path, v, "layer_norm_epsilon", 1e-5)?,
                    bos_token_id: token_id(v, "bos_token_id"),
                    eos_token_id: token_id(v, "eos_token_id"),
                }))
            }
            other => Err(bad(
                path,
                "model_type",
                &format!("`{other}` is not supported; expected llama, qwen2 or gpt2"),
            )),
        }
    }

    /// The config as transformers 5.x writes it.
    pub fn to_hf_json(&self) -> Value {
        match self {
            ModelConfig::Llama(c) => {
                let arch = if c.model_type == "qwen2" {
                    "Qwen2ForCausalLM"
                } else {
                    "LlamaForCausalLM"
                };
                let mut v = json!({
                    "architectures": [arch],
                    "model_type": c.model_type,
                    "vocab_size": c.vocab_size,
                    "hidden_size": c.hidden_size,
                    "intermediate_size": c.intermediate_size,
                    "num_hidden_layers": c.num_hidden_layers,
                    "num_attention_heads": c.num_attention_heads,
                    "num_key_value_heads": c.num_key_value_heads,
                    "head_dim": c.head_dim,
                    "hidden_act": "silu",
                    "rms_norm_eps": c.rms_norm_eps,
                    "rope_parameters": {"rope_theta": c.rope_theta, "rope_type": "default"},
                    "rope_theta": c.rope_theta,
                    "max_position_embeddings": c.max_position_embeddings,
                    "tie_word_embeddings": c.tie_word_embeddings,
                    "attention_bias": c.attention_bias,
                    "mlp_bias": c.mlp_bias,
                    "torch_dtype": "float32",
                });
                if c.model_type == "qwen2" {
                    v["use_sliding_window"] = json!(false);
                    v["sliding_window"] = Value::Null;
                }
                put_ids(&mut v, c.bos_token_id, c.eos_token_id);
                v
            }
            ModelConfig::Gpt2(c) => {
                let mut v = json!({
                    "architectures": ["GPT2LMHeadModel"],
                    "model_type": "gpt2",
                    "vocab_size": c.vocab_size,
                    "n_embd": c.n_embd,
                    "n_layer": c.n_layer,
                    "n_head": c.n_head,
                    "n_positions": c.n_positions,
                    "n_inner": c.n_inner,
                    "activation_function": "gelu_new",
                    "layer_norm_epsilon": c.layer_norm_epsilon,
                    "tie_word_embeddings": true,
                    "torch_dtype": "float32",
                });
                put_ids(&mut v, c.bos_token_id, c.eos_token_id);
                v
            }
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            ModelConfig::Llama(c) => c.vocab_size,
            ModelConfig::Gpt2(c) => c.vocab_size,
        }
    }

    pub fn max_positions(&self) -> usize {
        match self {
            ModelConfig::Llama(c) => c.max_position_embeddings,
            ModelConfig::Gpt2(c) => c.n_positions,
        }
    }

    /// The width of the residual stream.
    pub fn hidden_size(&self) -> usize {
        match self {
            ModelConfig::Llama(c) => c.hidden_size,
            ModelConfig::Gpt2(c) => c.n_embd,
        }
    }

    pub fn num_layers(&self) -> usize {
        match self {
            ModelConfig::Llama(c) => c.num_hidden_layers,
            ModelConfig::Gpt2(c) => c.n_layer,
        }
    }

    pub fn eos_token_id(&self) -> Option<u32> {
        match self {
            ModelConfig::Llama(c) => c.eos_token_id,
            ModelConfig::Gpt2(c) => c.eos_token_id,
        }
    }

    /// Parameter count (embeddings included, a tied head counted once).
    pub fn num_parameters(&self) -> usize {
        match self {
            ModelConfig::Llama(c) => {
                let (h, i, v) = (c.hidden_size, c.intermediate_size, c.vocab_size);
                let q = h * c.num_attention_heads * c.head_dim;
                let kv = 2 * h * c.num_key_value_heads * c.head_dim;
                let o = c.num_attention_heads * c.head_dim * h;
                let bias = if c.attention_bias {
                    (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim
                } else {
                    0
                };
                let layer = q + kv + o + bias + 3 * h * i + 2 * h;
                v * h
                    + c.num_hidden_layers * layer
                    + h
                    + if c.tie_word_embeddings { 0 } else { v * h }
            }
            ModelConfig::Gpt2(c) => {
                let (e, n) = (c.n_embd, c.n_inner);
                let layer = 4 * e + (e * 3 * e + 3 * e) + (e * e + e) + (e * n + n) + (n * e + e);
                c.vocab_size * e + c.n_positions * e + c.n_layer * layer + 2 * e
            }
        }
    }
}

fn put_ids(v: &mut Value, bos: Option<u32>, eos: Option<u32>) {
    v["bos_token_id"] = bos.map_or(Value::Null, Value::from);
    v["eos_token_id"] = eos.map_or(Value::Null, Value::from);
}
