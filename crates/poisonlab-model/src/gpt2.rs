//! GPT-2: learned positions, LayerNorm, fused QKV projection, gelu_new MLP, tied head.

use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear};
use burn::tensor::activation::gelu_approximate;
use burn::tensor::{Int, Tensor};

use crate::config::Gpt2Config;
use crate::init::Init;
use crate::layers::{
    KvCache, Norm, Patch, apply_patch, causal_attention, merge_heads, split_heads,
};

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
    pub fn new(c: &Gpt2Config, init: &mut Init) -> Gpt2 {
        let e = c.n_embd;
        Gpt2 {
            wte: init.embedding(c.vocab_size, e),
            wpe: Param::from_tensor(init.normal([c.n_positions, e])),
            h: (0..c.n_layer)
                .map(|_| Block {
                    ln_1: Norm::layer(e, c.layer_norm_epsilon, init),
                    attn: Attn {
                        c_attn: init.linear(e, 3 * e, true),
                        c_proj: init.linear(e, e, true),
                    },
                    ln_2: Norm::layer(e, c.layer_norm_epsilon, init),
                    mlp: Mlp {
                        c_fc: init.linear(e, c.n_inner, true),
                        c_proj: init.linear(c.n_inner, e, true),
                    },
                })
                .collect(),
            ln_f: Norm::layer(e, c.layer_norm_epsilon, init),
            heads: c.n_head,
        }
    }

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
        let past = cache.as_ref().map_or(0, |c| c.len());
        let pos = self.wpe.val().narrow(0, past, t).unsqueeze::<3>();
        let mut x = apply_patch(self.wte.forward(ids) + pos, patch, 0);
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
            if i + 1 < self.h.len() {
                x = apply_patch(x, patch, i + 1);
            }
            if keep_hidden && i + 1 < self.h.len() {
                hidden.push(x.clone());
            }
        }
        let x = apply_patch(self.ln_f.forward(x), patch, self.h.len());
        if keep_hidden {
            hidden.push(x.clone());
        }
        let logits = x.matmul(self.wte.weight.val().transpose().unsqueeze::<3>());
        (logits, hidden)
    }
}
