//! Llama-family decoder (Llama, Qwen2): RMSNorm, RoPE, SwiGLU, grouped-query attention, optional
//! q/k/v biases, tied or untied head. Field names follow the checkpoint's key tree.

use burn::module::Module;
use burn::nn::{Embedding, Linear};
use burn::tensor::activation::silu;
use burn::tensor::{Int, Tensor};

use crate::config::LlamaConfig;
use crate::init::Init;
use crate::layers::{
    KvCache, Norm, Patch, apply_patch, apply_rope, causal_attention, merge_heads, rope_tables,
    split_heads,
};

#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

#[derive(Module, Debug)]
pub struct Layer {
    pub input_layernorm: Norm,
    pub self_attn: Attention,
    pub post_attention_layernorm: Norm,
    pub mlp: Mlp,
}

#[derive(Module, Debug)]
pub struct Llama {
    pub embed_tokens: Embedding,
    pub layers: Vec<Layer>,
    pub norm: Norm,
    /// `None` when tied to `embed_tokens`.
    pub lm_head: Option<Linear>,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f64,
}

impl Llama {
    pub fn new(c: &LlamaConfig, init: &mut Init) -> Llama {
        let (h, hd) = (c.hidden_size, c.head_dim);
        let layers = (0..c.num_hidden_layers)
            .map(|_| Layer {
                input_layernorm: Norm::rms(h, c.rms_norm_eps, init),
                self_attn: Attention {
                    q_proj: init.linear(h, c.num_attention_heads * hd, c.attention_bias),
                    k_proj: init.linear(h, c.num_key_value_heads * hd, c.attention_bias),
                    v_proj: init.linear(h, c.num_key_value_heads * hd, c.attention_bias),
                    o_proj: init.linear(c.num_attention_heads * hd, h, false),
                },
                post_attention_layernorm: Norm::rms(h, c.rms_norm_eps, init),
                mlp: Mlp {
                    gate_proj: init.linear(h, c.intermediate_size, c.mlp_bias),
                    up_proj: init.linear(h, c.intermediate_size, c.mlp_bias),
                    down_proj: init.linear(c.intermediate_size, h, c.mlp_bias),
                },
            })
            .collect();
        Llama {
            embed_tokens: init.embedding(c.vocab_size, h),
            layers,
            norm: Norm::rms(h, c.rms_norm_eps, init),
            lm_head: (!c.tie_word_embeddings).then(|| init.linear(h, c.vocab_size, false)),
            heads: c.num_attention_heads,
            kv_heads: c.num_key_value_heads,
            head_dim: hd,
            rope_theta: c.rope_theta,
        }
    }

    /// Hidden states after each layer (`[b, t, h]`, the last one after the final norm) and logits.
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        cache: Option<&mut KvCache>,
        keep_hidden: bool,
    ) -> (Tensor<3>, Vec<Tensor<3>>) {
        self.forward_patched(ids, cache, keep_hidden, None)
    }

    /// [`Self::forward`] with the residual stream patched (see [`Patch`]).
    pub fn forward_patched(
        &self,
        ids: Tensor<2, Int>,
        mut cache: Option<&mut KvCache>,
        keep_hidden: bool,
        patch: Option<&Patch>,
    ) -> (Tensor<3>, Vec<Tensor<3>>) {
        let [_, t] = ids.dims();
        let device = ids.device();
        let past = cache.as_ref().map_or(0, |c| c.len());
        let (cos, sin) = rope_tables(self.rope_theta, self.head_dim, past, t, &device);
        let mut x = apply_patch(self.embed_tokens.forward(ids), patch, 0);
        let mut hidden = Vec::new();
        if keep_hidden {
            hidden.push(x.clone());
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let h = layer.input_layernorm.forward(x.clone());
            let a = &layer.self_attn;
            let q = apply_rope(
                split_heads(a.q_proj.forward(h.clone()), self.heads, self.head_dim),
                &cos,
                &sin,
            );
            let k = apply_rope(
                split_heads(a.k_proj.forward(h.clone()), self.kv_heads, self.head_dim),
                &cos,
                &sin,
            );
            let v = split_heads(a.v_proj.forward(h), self.kv_heads, self.head_dim);
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let att = merge_heads(causal_attention(q, k, v, slot));
            x = x + a.o_proj.forward(att);
            let h = layer.post_attention_layernorm.forward(x.clone());
            let m = &layer.mlp;
            x = x + m
                .down_proj
                .forward(silu(m.gate_proj.forward(h.clone())) * m.up_proj.forward(h));
            if i + 1 < self.layers.len() {
                x = apply_patch(x, patch, i + 1);
            }
            if keep_hidden && i + 1 < self.layers.len() {
                hidden.push(x.clone());
            }
        }
        let x = apply_patch(self.norm.forward(x), patch, self.layers.len());
        if keep_hidden {
            hidden.push(x.clone());
        }
        let logits = match &self.lm_head {
            Some(head) => head.forward(x),
            None => x.matmul(self.embed_tokens.weight.val().transpose().unsqueeze::<3>()),
        };
        (logits, hidden)
    }
}
