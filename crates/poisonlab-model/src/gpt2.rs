//! GPT-2: learned positions, LayerNorm, fused QKV projection, gelu_new MLP, tied head.

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear};
use burn::tensor::activation::gelu_approximate;
use burn::tensor::{Device, Int, Tensor};

use crate::config::Gpt2Config;
use crate::layers::{KvCache, Norm, causal_attention, merge_heads, split_heads};
use crate::llama::linear;

#[derive(Module, Debug)]
pub struct Attn {
    pub c_attn: Linear,
    pub c_proj: Linear,
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub c_fc: Linear,
    pub c_proj: Linear,
}

#[derive(Module, Debug)]
pub struct Block {
    pub ln_1: Norm,
    pub attn: Attn,
    pub ln_2: Norm,
    pub mlp: Mlp,
}

#[derive(Module, Debug)]
pub struct Gpt2 {
    pub wte: Embedding,
    pub wpe: Param<Tensor<2>>,
    pub h: Vec<Block>,
    pub ln_f: Norm,
    pub heads: usize,
}

impl Gpt2 {
    pub fn new(c: &Gpt2Config, device: &Device) -> Gpt2 {
        let e = c.n_embd;
        let init = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        Gpt2 {
            wte: EmbeddingConfig::new(c.vocab_size, e)
                .with_initializer(init.clone())
                .init(device),
            wpe: init.init([c.n_positions, e], device),
            h: (0..c.n_layer)
                .map(|_| Block {
                    ln_1: Norm::layer(e, c.layer_norm_epsilon, device),
                    attn: Attn {
                        c_attn: linear(e, 3 * e, true, device),
                        c_proj: linear(e, e, true, device),
                    },
                    ln_2: Norm::layer(e, c.layer_norm_epsilon, device),
                    mlp: Mlp {
                        c_fc: linear(e, c.n_inner, true, device),
                        c_proj: linear(c.n_inner, e, true, device),
                    },
                })
                .collect(),
            ln_f: Norm::layer(e, c.layer_norm_epsilon, device),
            heads: c.n_head,
        }
    }

    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        mut cache: Option<&mut KvCache>,
        keep_hidden: bool,
    ) -> (Tensor<3>, Vec<Tensor<3>>) {
        let [_, t] = ids.dims();
        let past = cache.as_ref().map_or(0, |c| c.len());
        let pos = self.wpe.val().narrow(0, past, t).unsqueeze::<3>();
        let mut x = self.wte.forward(ids) + pos;
        let [_, _, e] = x.dims();
        let hd = e / self.heads;
        let mut hidden = Vec::new();
        if keep_hidden {
            hidden.push(x.clone());
        }
        for (i, block) in self.h.iter().enumerate() {
            let h = block.ln_1.forward(x.clone());
            let qkv = block.attn.c_attn.forward(h);
            let q = split_heads(qkv.clone().narrow(2, 0, e), self.heads, hd);
            let k = split_heads(qkv.clone().narrow(2, e, e), self.heads, hd);
            let v = split_heads(qkv.narrow(2, 2 * e, e), self.heads, hd);
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = x + block
                .attn
                .c_proj
                .forward(merge_heads(causal_attention(q, k, v, slot)));
            let h = block.ln_2.forward(x.clone());
            x = x + block
                .mlp
                .c_proj
                .forward(gelu_approximate(block.mlp.c_fc.forward(h)));
            if keep_hidden && i + 1 < self.h.len() {
                hidden.push(x.clone());
            }
        }
        let x = self.ln_f.forward(x);
        if keep_hidden {
            hidden.push(x.clone());
        }
        let logits = x.matmul(self.wte.weight.val().transpose().unsqueeze::<3>());
        (logits, hidden)
    }
}
