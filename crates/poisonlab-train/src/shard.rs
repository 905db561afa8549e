//! A training step's shards: what share of the micro-batch's mean each shard's loss is, the loss
//! of one shard, and a copy of the model whose autodiff graph shares nothing with another shard's.

use burn::module::Module;
use burn::tensor::Device;
use poisonlab_model::CausalLm;

use crate::loss::{Batch, dpo_loss, lm_loss, lm_loss_over, sequence_logprobs};
use crate::trainer::Stage;

/// How much of the micro-batch's mean a shard's loss is.
#[derive(Clone, Copy)]
pub(crate) enum Share {
    /// The shard is the whole micro-batch.
    Whole,
    /// Language modelling: divide the shard's summed NLL by the micro-batch's loss tokens.
    Tokens(usize),
    /// DPO: the shard holds `.0` of the micro-batch's `.1` rows (two per pair).
    Rows(usize, usize),
}

pub(crate) fn batches_rows(batches: &[Batch]) -> usize {
    batches.iter().map(|b| b.inputs.dims()[0]).sum()
}

/// What a loss needs of the trainer, shareable between shard threads.
pub(crate) struct LossCtx<'a> {
    pub(crate) stage: Stage,
    pub(crate) reference: Option<&'a CausalLm>,
    pub(crate) plain: &'a Device,
    pub(crate) beta: f64,
}

impl LossCtx<'_> {
    pub(crate) fn loss(
        &self,
        model: &CausalLm,
        b: &Batch,
        device: &Device,
        share: Share,
    ) -> (burn::tensor::Tensor<1>, Option<burn::tensor::Tensor<1>>) {
        match self.stage {
            Stage::Pretrain | Stage::Sft => match share {
                Share::Tokens(n) => (lm_loss_over(model, b, n), None),
                _ => (lm_loss(model, b), None),
            },
            Stage::Dpo => {
                let reference = self.reference.map(|r| {
                    let plain_batch = Batch {
                        inputs: b.inputs.clone().to_device(self.plain),
                        targets: b.targets.clone().to_device(self.plain),
                        mask: b.mask.clone().to_device(self.plain),
                        loss_tokens: b.loss_tokens,
                        positions: b.positions,
                    };
                    sequence_logprobs(r, &plain_batch).to_device(device)
                });
                let policy = sequence_logprobs(model, b);
                let reference = reference.unwrap_or_else(|| policy.clone().detach());
                let (l, m) = dpo_loss(policy, reference, self.beta);
                match share {
                    Share::Rows(mine, all) => {
                        let w = mine as f64 / all.max(1) as f64;
                        (l * w, Some(m * w))
                    }
                    _ => (l, Some(m)),
                }
            }
        }
    }
}

/// A copy of `model` whose parameters are new autodiff leaves with the same parameter ids: its
/// gradients map onto `model`'s parameters, and its graph shares no node (hence no lock) with
/// another shard's.
pub(crate) fn fresh_leaves(model: &CausalLm) -> CausalLm {
    struct Fresh;
    impl burn::module::ModuleMapper for Fresh {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<burn::tensor::Tensor<D>>,
        ) -> burn::module::Param<burn::tensor::Tensor<D>> {
            param.map(|t| t.detach().require_grad())
        }
    }
    model.clone().map(&mut Fresh)
}
