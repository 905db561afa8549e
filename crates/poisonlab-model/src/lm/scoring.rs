//! Scoring with a local model: per-position log-probs of token sequences, and their calibration
//! statistics under the whole next-token distribution.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use super::{LocalModel, int_tensor};
use crate::error::{Error, Result};
use crate::layers::{KvCache, Patch};
use crate::model::floats;

impl LocalModel {
    /// For each sequence, `log p(ids[i+1] | ids[..=i])` (length `len - 1`). Batched with right padding,
    /// which a causal model never attends to.
    pub fn token_logprobs(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        self.per_position(seqs, |logp, targets| {
            vec![floats(logp.gather(2, targets).into_data())]
        })
        .map(|v| {
            v.into_iter()
                .map(|row| row.into_iter().map(|x| x[0]).collect())
                .collect()
        })
    }

    /// `log p(ids[i+1] | ids[..=i])` with `patch` applied to the residual stream. The patch must
    /// name a hidden index of the model, positions inside `ids` and vectors of the model's width.
    pub fn token_logprobs_patched(&self, ids: &[u32], patch: &Patch) -> Result<Vec<f32>> {
        let layers = self.model.num_layers();
        let width = self.config.hidden_size();
        if patch.index > layers {
            return Err(Error::Invalid(format!(
                "patch index {} is past the last hidden state ({layers})",
                patch.index
            )));
        }
        if patch.positions.len() != patch.values.len() {
            return Err(Error::Invalid(format!(
                "patch: {} positions but {} vectors",
                patch.positions.len(),
                patch.values.len()
            )));
        }
        if let Some(p) = patch.positions.iter().find(|&&p| p >= ids.len()) {
            return Err(Error::Invalid(format!(
                "patch position {p} is outside the {} tokens",
                ids.len()
            )));
        }
        if let Some(v) = patch.values.iter().find(|v| v.len() != width) {
            return Err(Error::Invalid(format!(
                "patch vector of width {}, the model's is {width}",
                v.len()
            )));
        }
        if ids.len() < 2 {
            return Ok(Vec::new());
        }
        self.check_len(ids.len())?;
        let (t_ids, t) = int_tensor(&[ids.to_vec()], 0, &self.device);
        let (logits, _) = self
            .model
            .forward_patched(t_ids.clone(), None, false, Some(patch));
        let logp = log_softmax(logits.slice([0..1, 0..t - 1]), 2);
        let targets = t_ids.slice([0..1, 1..t]).unsqueeze_dim::<3>(2);
        Ok(floats(logp.gather(2, targets).into_data()))
    }

    /// For each continuation, `log p(cont[i] | prefix, cont[..i])` (length `cont.len()`): the
    /// prefix runs once and its keys and values are shared by every continuation (batched with
    /// right padding, `BATCH` at a time) — what ranking many candidates after one prompt costs.
    pub fn continuation_logprobs(
        &self,
        prefix: &[u32],
        conts: &[Vec<u32>],
    ) -> Result<Vec<Vec<f32>>> {
        const BATCH: usize = 256;
        if prefix.is_empty() {
            return Err(Error::Invalid(
                "scoring continuations needs at least one prefix token".into(),
            ));
        }
        let longest = conts.iter().map(Vec::len).max().unwrap_or(0);
        self.check_len(prefix.len() + longest)?;
        let (p, n) = int_tensor(&[prefix.to_vec()], 0, &self.device);
        let mut cache = KvCache::new(self.model.num_layers());
        let (logits, _) = self.model.forward(p, Some(&mut cache), false);
        let first = log_softmax(logits.slice([0..1, n - 1..n]), 2);
        let v = self.config.vocab_size();
        let first = floats(first.reshape([v]).into_data());
        let mut out = Vec::with_capacity(conts.len());
        for chunk in conts.chunks(BATCH) {
            let b = chunk.len();
            let t = chunk.iter().map(Vec::len).max().unwrap_or(0);
            let lp_first: Vec<f32> = chunk
                .iter()
                .map(|c| c.first().map_or(0.0, |&id| first[id as usize]))
                .collect();
            if t < 2 {
                out.extend(
                    chunk.iter().zip(lp_first).map(
                        |(c, l)| {
                            if c.is_empty() { Vec::new() } else { vec![l] }
                        },
                    ),
                );
                continue;
            }
            // The prefix's cache, repeated for every row of the batch.
            let mut batch_cache = KvCache {
                layers: cache
                    .layers
                    .iter()
                    .map(|l| {
                        l.as_ref().map(|(k, val)| {
                            let [_, h, past, d] = k.dims();
                            (
                                k.clone().expand([b, h, past, d]),
                                val.clone().expand([b, h, past, d]),
                            )
                        })
                    })
                    .collect(),
            };
            let (ids, _) = int_tensor(chunk, 0, &self.device);
            let (logits, _) = self
                .model
                .forward(ids.clone(), Some(&mut batch_cache), false);
            let logp = log_softmax(logits.slice([0..b, 0..t - 1]), 2);
            let targets = ids.slice([0..b, 1..t]).unsqueeze_dim::<3>(2);
            let rest = floats(logp.gather(2, targets).into_data());
            for (r, c) in chunk.iter().enumerate() {
                let mut row = Vec::with_capacity(c.len());
                if !c.is_empty() {
                    row.push(lp_first[r]);
                    row.extend_from_slice(&rest[r * (t - 1)..r * (t - 1) + c.len() - 1]);
                }
                out.push(row);
            }
        }
        Ok(out)
    }

    /// [`LanguageModel::score_ids_calibrated`] on this model: per position the next token's
    /// log-prob, and μ and σ of the log-prob under the whole next-token distribution.
    pub fn token_logprob_stats(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<[f32; 3]>>> {
        let out = self.per_position(seqs, |logp, targets| {
            let p = logp.clone().exp();
            let mu = (p.clone() * logp.clone()).sum_dim(2);
            let e2 = (p * logp.clone().powi_scalar(2)).sum_dim(2);
            vec![
                floats(logp.gather(2, targets).into_data()),
                floats(mu.into_data()),
                floats(e2.into_data()),
            ]
        })?;
        Ok(out
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|[l, m, e]| [l, m, (e - m * m).max(0.0).sqrt()])
                    .collect()
            })
            .collect())
    }

    /// The forward pass behind the scoring functions: the rows of `seqs` with at least two tokens,
    /// batched with right padding; `f` gets the log-softmax at every position but the last
    /// (`[b, t - 1, vocab]`) and the next-token targets (`[b, t - 1, 1]`) and returns up to three
    /// values per position (`[b × (t - 1)]` each). Per sequence, its `len - 1` positions; a sequence
    /// shorter than two tokens gets none.
    fn per_position(
        &self,
        seqs: &[Vec<u32>],
        f: impl FnOnce(Tensor<3>, Tensor<3, Int>) -> Vec<Vec<f32>>,
    ) -> Result<Vec<Vec<[f32; 3]>>> {
        let rows: Vec<Vec<u32>> = seqs.iter().filter(|s| s.len() >= 2).cloned().collect();
        if rows.is_empty() {
            return Ok(seqs.iter().map(|_| Vec::new()).collect());
        }
        for r in &rows {
            self.check_len(r.len())?;
        }
        let (ids, t) = int_tensor(&rows, 0, &self.device);
        let (logits, _) = self.model.forward(ids.clone(), None, false);
        let b = rows.len();
        let logp = log_softmax(logits.slice([0..b, 0..t - 1]), 2);
        let targets = ids.slice([0..b, 1..t]).unsqueeze_dim::<3>(2);
        let values = f(logp, targets);
        let at = |j: usize, i: usize| values.get(j).map_or(0.0, |v| v[i]);
        let mut out = Vec::with_capacity(seqs.len());
        let mut k = 0;
        for s in seqs {
            if s.len() < 2 {
                out.push(Vec::new());
                continue;
            }
            let base = k * (t - 1);
            out.push(
                (base..base + s.len() - 1)
                    .map(|i| [at(0, i), at(1, i), at(2, i)])
                    .collect(),
            );
            k += 1;
        }
        Ok(out)
    }
}
