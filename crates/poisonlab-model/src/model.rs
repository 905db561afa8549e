//! The causal language model of either architecture, and its Hugging Face checkpoint I/O:
//! `config.json` + `model.safetensors` with HF tensor names, in both directions.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear};
use burn::tensor::{Device, Int, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::gpt2::Gpt2;
use crate::layers::{KvCache, Norm};
use crate::llama::Llama;

#[derive(Module, Debug)]
pub enum CausalLm {
    Llama(Llama),
    Gpt2(Gpt2),
}

impl CausalLm {
    /// A freshly initialised model (normal(0, 0.02) weights, unit norms, zero biases) drawn from
    /// `seed`, as for pre-training.
    pub fn init(config: &ModelConfig, seed: u64, device: &Device) -> CausalLm {
        let mut init = crate::init::Init::new(seed, device);
        match config {
            ModelConfig::Llama(c) => CausalLm::Llama(Llama::new(c, &mut init)),
            ModelConfig::Gpt2(c) => CausalLm::Gpt2(Gpt2::new(c, &mut init)),
        }
    }

    /// Logits `[b, t, vocab]` and, when asked, the hidden states after the embeddings and each layer.
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        cache: Option<&mut KvCache>,
        keep_hidden: bool,
    ) -> (Tensor<3>, Vec<Tensor<3>>) {
        self.forward_patched(ids, cache, keep_hidden, None)
    }

    /// [`CausalLm::forward`] with the residual stream patched (activation patching).
    pub fn forward_patched(
        &self,
        ids: Tensor<2, Int>,
        cache: Option<&mut KvCache>,
        keep_hidden: bool,
        patch: Option<&crate::layers::Patch>,
    ) -> (Tensor<3>, Vec<Tensor<3>>) {
        match self {
            CausalLm::Llama(m) => m.forward_patched(ids, cache, keep_hidden, patch),
            CausalLm::Gpt2(m) => m.forward_patched(ids, cache, keep_hidden, patch),
        }
    }

    pub fn num_layers(&self) -> usize {
        match self {
            CausalLm::Llama(m) => m.layers.len(),
            CausalLm::Gpt2(m) => m.h.len(),
        }
    }

    /// Loads HF safetensors weights for `config`. Every expected tensor must be there with its
    /// shape, and every tensor in the file must be used (a few known buffers excepted).
    pub fn load_safetensors(
        config: &ModelConfig,
        path: &Path,
        device: &Device,
    ) -> Result<CausalLm> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::weights(path, "(file)", e.to_string()))?;
        let mut w = Weights::new(path, &st, device)?;
        let model = match config {
            ModelConfig::Llama(c) => {
                let hd = c.head_dim;
                let (h, i) = (c.hidden_size, c.intermediate_size);
                let (qo, kvo) = (c.num_attention_heads * hd, c.num_key_value_heads * hd);
                let layers = (0..c.num_hidden_layers)
                    .map(|l| {
                        let p = format!("model.layers.{l}");
                        Ok(crate::llama::Layer {
                            input_layernorm: w.rms(
                                &format!("{p}.input_layernorm"),
                                h,
                                c.rms_norm_eps,
                            )?,
                            self_attn: crate::llama::Attention {
                                q_proj: w.linear(
                                    &format!("{p}.self_attn.q_proj"),
                                    h,
                                    qo,
                                    c.attention_bias,
                                )?,
                                k_proj: w.linear(
                                    &format!("{p}.self_attn.k_proj"),
                                    h,
                                    kvo,
                                    c.attention_bias,
                                )?,
                                v_proj: w.linear(
                                    &format!("{p}.self_attn.v_proj"),
                                    h,
                                    kvo,
                                    c.attention_bias,
                                )?,
                                o_proj: w.linear(&format!("{p}.self_attn.o_proj"), qo, h, false)?,
                            },
                            post_attention_layernorm: w.rms(
                                &format!("{p}.post_attention_layernorm"),
                                h,
                                c.rms_norm_eps,
                            )?,
                            mlp: crate::llama::Mlp {
                                gate_proj: w.linear(
                                    &format!("{p}.mlp.gate_proj"),
                                    h,
                                    i,
                                    c.mlp_bias,
                                )?,
                                up_proj: w.linear(&format!("{p}.mlp.up_proj"), h, i, c.mlp_bias)?,
                                down_proj: w.linear(
                                    &format!("{p}.mlp.down_proj"),
                                    i,
                                    h,
                                    c.mlp_bias,
                                )?,
                            },
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let embed = w.take::<2>("model.embed_tokens.weight", [c.vocab_size, h])?;
                let lm_head = if c.tie_word_embeddings {
                    w.skip("lm_head.weight");
                    None
                } else {
                    Some(w.linear("lm_head", h, c.vocab_size, false)?)
                };
                CausalLm::Llama(Llama {
                    embed_tokens: Embedding {
                        weight: Param::from_tensor(embed),
                    },
                    layers,
                    norm: w.rms("model.norm", h, c.rms_norm_eps)?,
                    lm_head,
                    heads: c.num_attention_heads,
                    kv_heads: c.num_key_value_heads,
                    head_dim: hd,
                    rope_theta: c.rope_theta,
                })
            }
            ModelConfig::Gpt2(c) => {
                let pre = if st.names().iter().any(|n| n.starts_with("transformer.")) {
                    "transformer."
                } else {
                    ""
                };
                let e = c.n_embd;
                let h = (0..c.n_layer)
                    .map(|l| {
                        let p = format!("{pre}h.{l}");
                        Ok(crate::gpt2::Block {
                            ln_1: w.layer_norm(&format!("{p}.ln_1"), e, c.layer_norm_epsilon)?,
                            attn: crate::gpt2::Attn {
                                c_attn: w.conv1d(&format!("{p}.attn.c_attn"), e, 3 * e)?,
                                c_proj: w.conv1d(&format!("{p}.attn.c_proj"), e, e)?,
                            },
                            ln_2: w.layer_norm(&format!("{p}.ln_2"), e, c.layer_norm_epsilon)?,
                            mlp: crate::gpt2::Mlp {
                                c_fc: w.conv1d(&format!("{p}.mlp.c_fc"), e, c.n_inner)?,
                                c_proj: w.conv1d(&format!("{p}.mlp.c_proj"), c.n_inner, e)?,
                            },
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                w.skip("lm_head.weight");
                CausalLm::Gpt2(Gpt2 {
                    wte: Embedding {
                        weight: Param::from_tensor(
                            w.take::<2>(&format!("{pre}wte.weight"), [c.vocab_size, e])?,
                        ),
                    },
                    wpe: Param::from_tensor(
                        w.take::<2>(&format!("{pre}wpe.weight"), [c.n_positions, e])?,
                    ),
                    h,
                    ln_f: w.layer_norm(&format!("{pre}ln_f"), e, c.layer_norm_epsilon)?,
                    heads: c.n_head,
                })
            }
        };
        w.finish()?;
        Ok(model)
    }

    /// Writes `model.safetensors` with HF names and layouts (Linear as `[out, in]`, GPT-2 Conv1D as
    /// `[in, out]`), so transformers loads it.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let mut out = Collect::default();
        match self {
            CausalLm::Llama(m) => {
                out.mat("model.embed_tokens.weight", m.embed_tokens.weight.val());
                for (l, layer) in m.layers.iter().enumerate() {
                    let p = format!("model.layers.{l}");
                    out.norm(&format!("{p}.input_layernorm"), &layer.input_layernorm);
                    out.norm(
                        &format!("{p}.post_attention_layernorm"),
                        &layer.post_attention_layernorm,
                    );
                    let a = &layer.self_attn;
                    for (n, lin) in [
                        ("q_proj", &a.q_proj),
                        ("k_proj", &a.k_proj),
                        ("v_proj", &a.v_proj),
                        ("o_proj", &a.o_proj),
                    ] {
                        out.linear(&format!("{p}.self_attn.{n}"), lin, true);
                    }
                    let f = &layer.mlp;
                    for (n, lin) in [
                        ("gate_proj", &f.gate_proj),
                        ("up_proj", &f.up_proj),
                        ("down_proj", &f.down_proj),
                    ] {
                        out.linear(&format!("{p}.mlp.{n}"), lin, true);
                    }
                }
                out.norm("model.norm", &m.norm);
                if let Some(head) = &m.lm_head {
                    out.linear("lm_head", head, true);
                }
            }
            CausalLm::Gpt2(m) => {
                out.mat("transformer.wte.weight", m.wte.weight.val());
                out.mat("transformer.wpe.weight", m.wpe.val());
                for (l, b) in m.h.iter().enumerate() {
                    let p = format!("transformer.h.{l}");
                    out.norm(&format!("{p}.ln_1"), &b.ln_1);
                    out.norm(&format!("{p}.ln_2"), &b.ln_2);
                    out.linear(&format!("{p}.attn.c_attn"), &b.attn.c_attn, false);
                    out.linear(&format!("{p}.attn.c_proj"), &b.attn.c_proj, false);
                    out.linear(&format!("{p}.mlp.c_fc"), &b.mlp.c_fc, false);
                    out.linear(&format!("{p}.mlp.c_proj"), &b.mlp.c_proj, false);
                }
                out.norm("transformer.ln_f", &m.ln_f);
            }
        }
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = out
            .map
            .into_iter()
            .map(|(k, (shape, v))| (k, shape, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect();
        let views = bytes
            .iter()
            .map(|(k, shape, b)| {
                safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), b)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| Error::weights(path, k, e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut info = HashMap::new();
        info.insert("format".to_string(), "pt".to_string());
        safetensors::serialize_to_file(views, Some(info), path)
            .map_err(|e| Error::weights(path, "(file)", e.to_string()))
    }
}

/// Named tensors on their way to a safetensors file, sorted by name.
#[derive(Default)]
struct Collect {
    map: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Collect {
    fn put<const D: usize>(&mut self, name: &str, t: Tensor<D>) {
        let dims = t.dims().to_vec();
        self.map
            .insert(name.to_string(), (dims, floats(t.into_data())));
    }

    fn mat(&mut self, name: &str, t: Tensor<2>) {
        self.put(name, t);
    }

    fn norm(&mut self, name: &str, n: &Norm) {
        self.put(&format!("{name}.weight"), n.weight.val());
        if let Some(b) = &n.bias {
            self.put(&format!("{name}.bias"), b.val());
        }
    }

    /// `transpose`: HF Linear `[out, in]` (true) or GPT-2 Conv1D `[in, out]` (false).
    fn linear(&mut self, name: &str, l: &Linear, transpose: bool) {
        let w = l.weight.val();
        self.put(
            &format!("{name}.weight"),
            if transpose { w.transpose() } else { w },
        );
        if let Some(b) = &l.bias {
            self.put(&format!("{name}.bias"), b.val());
        }
    }
}

pub(crate) fn floats(data: TensorData) -> Vec<f32> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// Tensors of a safetensors file, taken by name; what is left at the end is an error.
pub(crate) struct Weights<'a> {
    path: &'a Path,
    device: &'a Device,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

/// Buffers some exporters save that carry no learned weights.
fn ignorable(name: &str) -> bool {
    name.ends_with("rotary_emb.inv_freq")
        || name.ends_with("embeddings.position_ids")
        || name.ends_with(".attn.bias")
        || name.ends_with(".attn.masked_bias")
}

impl<'a> Weights<'a> {
    pub(crate) fn new(path: &'a Path, st: &SafeTensors<'_>, device: &'a Device) -> Result<Self> {
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            if ignorable(&name) {
                continue;
            }
            let data = view.data();
            let vals: Vec<f32> = match view.dtype() {
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                Dtype::F16 => data
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                Dtype::BF16 => data
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                other => {
                    return Err(Error::weights(
                        path,
                        &name,
                        format!("dtype {other:?} is not supported (f32, f16, bf16)"),
                    ));
                }
            };
            tensors.insert(name, (view.shape().to_vec(), vals));
        }
        Ok(Weights {
            path,
            device,
            tensors,
        })
    }

    pub(crate) fn take<const D: usize>(
        &mut self,
        key: &str,
        shape: [usize; D],
    ) -> Result<Tensor<D>> {
        let (got, vals) = self
            .tensors
            .remove(key)
            .ok_or_else(|| Error::weights(self.path, key, "missing from the checkpoint"))?;
        if got != shape {
            return Err(Error::weights(
                self.path,
                key,
                format!("shape {got:?}, expected {shape:?}"),
            ));
        }
        Ok(Tensor::from_data(TensorData::new(vals, shape), self.device))
    }

    pub(crate) fn skip(&mut self, key: &str) {
        self.tensors.remove(key);
    }

    /// HF `nn.Linear` stores `[out, in]`; burn's Linear holds `[in, out]`.
    pub(crate) fn linear(
        &mut self,
        prefix: &str,
        i: usize,
        o: usize,
        bias: bool,
    ) -> Result<Linear> {
        let w = self
            .take::<2>(&format!("{prefix}.weight"), [o, i])?
            .transpose();
        let b = if bias {
            Some(Param::from_tensor(
                self.take::<1>(&format!("{prefix}.bias"), [o])?,
            ))
        } else {
            None
        };
        Ok(Linear {
            weight: Param::from_tensor(w),
            bias: b,
        })
    }

    /// GPT-2's Conv1D already stores `[in, out]`.
    fn conv1d(&mut self, prefix: &str, i: usize, o: usize) -> Result<Linear> {
        let w = self.take::<2>(&format!("{prefix}.weight"), [i, o])?;
        let b = self.take::<1>(&format!("{prefix}.bias"), [o])?;
        Ok(Linear {
            weight: Param::from_tensor(w),
            bias: Some(Param::from_tensor(b)),
        })
    }

    fn rms(&mut self, prefix: &str, d: usize, eps: f64) -> Result<Norm> {
        Ok(Norm {
            weight: Param::from_tensor(self.take::<1>(&format!("{prefix}.weight"), [d])?),
            bias: None,
            eps,
        })
    }

    pub(crate) fn layer_norm(&mut self, prefix: &str, d: usize, eps: f64) -> Result<Norm> {
        Ok(Norm {
            weight: Param::from_tensor(self.take::<1>(&format!("{prefix}.weight"), [d])?),
            bias: Some(Param::from_tensor(
                self.take::<1>(&format!("{prefix}.bias"), [d])?,
            )),
            eps,
        })
    }

    pub(crate) fn finish(self) -> Result<()> {
        let mut left: Vec<&String> = self.tensors.keys().collect();
        left.sort();
        match left.first() {
            None => Ok(()),
            Some(first) => Err(Error::weights(
                self.path,
                first,
                format!(
                    "{} tensor(s) in the file are not used by the config: {left:?}",
                    left.len()
                ),
            )),
        }
    }
}
