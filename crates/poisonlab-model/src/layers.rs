//! The pieces both architectures share: norms, rotary embeddings, causal attention with a KV cache.
//! Written once here so that the model files only wire them together.

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Tensor, TensorData};

use crate::init::Init;

/// RMSNorm (Llama) or LayerNorm (GPT-2, with bias), over the last dimension.
#[derive(Module, Debug)]
pub struct Norm {
    pub weight: Param<Tensor<1>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub eps: f64,
}

impl Norm {
    pub fn rms(dim: usize, eps: f64, init: &Init) -> Norm {
        Norm {
            weight: Param::from_tensor(init.ones([dim])),
            bias: None,
            eps,
        }
    }

    pub fn layer(dim: usize, eps: f64, init: &Init) -> Norm {
        Norm {
            weight: Param::from_tensor(init.ones([dim])),
            bias: Some(Param::from_tensor(init.zeros([dim]))),
            eps,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let w = self.weight.val().unsqueeze::<D>();
        match &self.bias {
            None => {
                let rms = (x.clone().square().mean_dim(D - 1) + self.eps).sqrt();
                (x / rms) * w
            }
            Some(b) => {
                let mean = x.clone().mean_dim(D - 1);
                let centered = x - mean;
                let var = centered.clone().square().mean_dim(D - 1);
                centered / (var + self.eps).sqrt() * w + b.val().unsqueeze::<D>()
            }
        }
    }
}

/// cos and sin tables `[len, head_dim]` for positions `start..start+len`, HF's "rotate half" layout.
pub fn rope_tables(
    theta: f64,
    head_dim: usize,
    start: usize,
    len: usize,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let half = head_dim / 2;
    // Computed the way transformers does: inverse frequencies in f32, then products in f32.
    let inv: Vec<f32> = (0..half)
        .map(|i| (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32)
        .collect();
    let mut cos = Vec::with_capacity(len * head_dim);
    let mut sin = Vec::with_capacity(len * head_dim);
    for p in start..start + len {
        for _half in 0..2 {
            for f in &inv {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
    }
    (
        Tensor::from_data(TensorData::new(cos, [len, head_dim]), device),
        Tensor::from_data(TensorData::new(sin, [len, head_dim]), device),
    )
}

/// Applies rotary embeddings to `x: [batch, heads, time, head_dim]`.
pub fn apply_rope(x: Tensor<4>, cos: &Tensor<2>, sin: &Tensor<2>) -> Tensor<4> {
    let [_, _, _, hd] = x.dims();
    let half = hd / 2;
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.clone().narrow(3, half, half);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone().unsqueeze::<4>() + rotated * sin.clone().unsqueeze::<4>()
}

/// Keys and values of earlier positions, per layer: `[batch, kv_heads, time, head_dim]`.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    pub layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
}

impl KvCache {
    pub fn new(layers: usize) -> KvCache {
        KvCache {
            layers: vec![None; layers],
        }
    }

    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |(k, _)| k.dims()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Causal attention. `q: [b, heads, t, hd]`; `k`, `v`: `[b, kv_heads, t, hd]` for the new positions.
/// With a cache slot, earlier keys/values are prepended and the slot is updated.
pub fn causal_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    slot: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
) -> Tensor<4> {
    let [b, heads, t, hd] = q.dims();
    let (k, v) = match slot {
        Some(slot) => {
            let (k, v) = match slot.take() {
                Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
                None => (k, v),
            };
            *slot = Some((k.clone(), v.clone()));
            (k, v)
        }
        None => (k, v),
    };
    let [_, kv_heads, total, _] = k.dims();
    let past = total - t;
    let rep = heads / kv_heads;
    let (k, v) = if rep > 1 {
        let expand = |x: Tensor<4>| {
            x.unsqueeze_dim::<5>(2)
                .expand([b, kv_heads, rep, total, hd])
                .reshape([b, heads, total, hd])
        };
        (expand(k), expand(v))
    } else {
        (k, v)
    };
    let scores = q.matmul(k.swap_dims(2, 3)) / (hd as f64).sqrt();
    let mask = Tensor::<2, Bool>::tril_mask([t, total], past as i64, &scores.device());
    let scores = scores.mask_fill(mask.unsqueeze::<4>(), f32::MIN);
    softmax(scores, 3).matmul(v)
}

/// `[b, t, heads*hd]` → `[b, heads, t, hd]`.
pub fn split_heads(x: Tensor<3>, heads: usize, hd: usize) -> Tensor<4> {
    let [b, t, _] = x.dims();
    x.reshape([b, t, heads, hd]).swap_dims(1, 2)
}

/// `[b, heads, t, hd]` → `[b, t, heads*hd]`.
pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, heads, t, hd] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, heads * hd])
}

/// An intervention on the residual stream (activation patching): at hidden index `index` (0 = after
/// the embeddings, i = after layer i, the last = after the final norm, as in
/// [`crate::lm::HiddenStates`]), the states of batch row 0 at `positions` are replaced by `values`
/// (one vector of the model's width per position).
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub index: usize,
    pub positions: Vec<usize>,
    pub values: Vec<Vec<f32>>,
}

/// `x` with `patch` applied when it is for hidden index `index`.
pub fn apply_patch(x: Tensor<3>, patch: Option<&Patch>, index: usize) -> Tensor<3> {
    let Some(p) = patch.filter(|p| p.index == index) else {
        return x;
    };
    let [_, t, d] = x.dims();
    let device = x.device();
    let mut x = x;
    for (&pos, v) in p.positions.iter().zip(&p.values) {
        if pos >= t || v.len() != d {
            continue;
        }
        let value = Tensor::<3>::from_data(TensorData::new(v.clone(), [1, 1, d]), &device);
        x = x.slice_assign([0..1, pos..pos + 1, 0..d], value);
    }
    x
}
