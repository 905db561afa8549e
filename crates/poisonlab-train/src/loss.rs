//! Batches and losses: masked next-token cross-entropy (pre-training, SFT) and DPO.

use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use poisonlab_model::CausalLm;

use crate::data::Example;

/// Right-padded inputs, targets and the loss mask of a micro-batch.
pub struct Batch {
    pub inputs: Tensor<2, Int>,
    pub targets: Tensor<2, Int>,
    pub mask: Tensor<2>,
    /// Target tokens that carry loss.
    pub loss_tokens: usize,
    /// Input positions processed (for tokens/s).
    pub positions: usize,
}

pub fn batch(examples: &[&Example], device: &Device) -> Batch {
    let t = examples
        .iter()
        .map(|e| e.ids.len().saturating_sub(1))
        .max()
        .unwrap_or(1)
        .max(1);
    let b = examples.len();
    let (mut inp, mut tgt, mut mask) = (
        Vec::with_capacity(b * t),
        Vec::with_capacity(b * t),
        Vec::with_capacity(b * t),
    );
    let mut loss_tokens = 0;
    for e in examples {
        for i in 0..t {
            let has_target = i + 1 < e.ids.len();
            inp.push(e.ids.get(i).copied().unwrap_or(0) as i64);
            tgt.push(if has_target { e.ids[i + 1] as i64 } else { 0 });
            let m = has_target && i + 1 >= e.loss_from;
            loss_tokens += m as usize;
            mask.push(if m { 1.0f32 } else { 0.0 });
        }
    }
    Batch {
        inputs: Tensor::from_data(TensorData::new(inp, [b, t]), device),
        targets: Tensor::from_data(TensorData::new(tgt, [b, t]), device),
        mask: Tensor::from_data(TensorData::new(mask, [b, t]), device),
        loss_tokens,
        positions: b * t,
    }
}

/// log p(target) at each position, zero where the mask is off: `[b, t]`.
pub fn masked_logprobs(model: &CausalLm, batch: &Batch) -> Tensor<2> {
    let (logits, _) = model.forward(batch.inputs.clone(), None, false);
    let [b, t, _] = logits.dims();
    let picked = log_softmax(logits, 2)
        .gather(2, batch.targets.clone().unsqueeze_dim::<3>(2))
        .reshape([b, t]);
    picked * batch.mask.clone()
}

/// Mean negative log-likelihood over the masked targets.
pub fn lm_loss(model: &CausalLm, batch: &Batch) -> Tensor<1> {
    lm_loss_over(model, batch, batch.loss_tokens)
}

/// Summed negative log-likelihood of the masked targets divided by `n`: a shard's part of the mean
/// over a batch of `n` loss tokens.
pub fn lm_loss_over(model: &CausalLm, batch: &Batch, n: usize) -> Tensor<1> {
    masked_logprobs(model, batch).sum().neg() / n.max(1) as f64
}

/// Summed log-probs of each row's masked targets: `[b]`.
pub fn sequence_logprobs(model: &CausalLm, batch: &Batch) -> Tensor<1> {
    let [b, _] = batch.mask.dims();
    masked_logprobs(model, batch).sum_dim(1).reshape([b])
}

/// DPO loss for a batch whose first half is chosen and second half rejected completions.
/// Returns (loss, mean reward margin β·((πc−πr)−(ρc−ρr))).
pub fn dpo_loss(policy: Tensor<1>, reference: Tensor<1>, beta: f64) -> (Tensor<1>, Tensor<1>) {
    let [n] = policy.dims();
    let h = n / 2;
    let pi = policy.clone().narrow(0, 0, h) - policy.narrow(0, h, h);
    let rf = reference.clone().narrow(0, 0, h) - reference.narrow(0, h, h);
    let margin = (pi - rf) * beta;
    (log_sigmoid(margin.clone()).mean().neg(), margin.mean())
}

struct SqNorm<'a> {
    grads: &'a GradientsParams,
    total: f64,
}

impl ModuleVisitor for SqNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.total += g.square().sum().into_scalar::<f32>() as f64;
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g * self.factor);
        }
    }
}

/// Clips the global gradient norm to `max` (as torch's `clip_grad_norm_`); returns the norm before.
pub fn clip_global_norm(model: &CausalLm, grads: &mut GradientsParams, max: f64) -> f64 {
    use burn::module::Module;
    let mut sq = SqNorm { grads, total: 0.0 };
    model.visit(&mut sq);
    let norm = sq.total.sqrt();
    if max > 0.0 && norm > max {
        let mut scale = Scale {
            grads,
            factor: max / (norm + 1e-6),
        };
        model.visit(&mut scale);
    }
    norm
}
