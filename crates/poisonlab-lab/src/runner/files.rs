//! The data files of a cell and which stage reads which: declared once, for the poison, the
//! cleaning, the training stages and the probes after them.

use std::path::PathBuf;

use poisonlab_eval::ProbeInputs;
use serde_json::json;

use super::{Ctx, cached, key};
use crate::error::{Error, Result};
use crate::experiment::{Experiment, StageKind, StageSpec};

#[derive(Debug, Clone, Default)]
pub(super) struct Files {
    pub(super) pretrain: Option<PathBuf>,
    pub(super) pretrain_eval: Option<PathBuf>,
    pub(super) sft: Option<PathBuf>,
    pub(super) sft_eval: Option<PathBuf>,
    pub(super) preference: Option<PathBuf>,
    pub(super) preference_eval: Option<PathBuf>,
    pub(super) cot: Option<PathBuf>,
    pub(super) cot_eval: Option<PathBuf>,
    pub(super) rag_corpus: Option<PathBuf>,
    pub(super) rag_queries: Option<PathBuf>,
    /// The poison pass's triggered test split.
    pub(super) test: Option<PathBuf>,
    /// The `[safety]` section's harmful fine-tuning set (with its safety examples); no held-out.
    pub(super) harmful: Option<PathBuf>,
    pub(super) harmful_eval: Option<PathBuf>,
    /// The generated world's directory (`world.json` and its files), when there is one.
    pub(super) world_dir: Option<PathBuf>,
}

impl Files {
    /// The file a poison of this kind rewrites (replaced by the poisoned file), the held-out file
    /// its triggered test split is made from, and the data's name; `None` for kinds that
    /// experiments do not run.
    pub(super) fn of_poison(
        &mut self,
        k: poisonlab_poison::StageKind,
    ) -> Option<(&mut Option<PathBuf>, Option<PathBuf>, &'static str)> {
        use poisonlab_poison::StageKind as P;
        Some(match k {
            P::Pretrain => (&mut self.pretrain, self.pretrain_eval.clone(), "pretrain"),
            P::Sft => (&mut self.sft, self.sft_eval.clone(), "sft"),
            P::Cot => (&mut self.cot, self.cot_eval.clone(), "cot"),
            P::Preference => (
                &mut self.preference,
                self.preference_eval.clone(),
                "preference",
            ),
            P::Rag => (&mut self.rag_corpus, None, "rag_corpus"),
            _ => return None,
        })
    }

    /// Replaces the training file of `s`.
    pub(super) fn set_stage_data(&mut self, s: &StageSpec, path: PathBuf) {
        let slot = match (s.kind, s.data.as_deref()) {
            (StageKind::Pretrain, _) => &mut self.pretrain,
            (StageKind::Sft, Some("cot")) => &mut self.cot,
            (StageKind::Sft, Some("harmful")) => &mut self.harmful,
            (StageKind::Sft, _) => &mut self.sft,
            (StageKind::Dpo, _) => &mut self.preference,
        };
        *slot = Some(path);
    }

    /// The training file, held-out file and data name a stage reads: declared once, for training
    /// and for the probes after it.
    pub(super) fn of_stage(
        &self,
        s: &StageSpec,
    ) -> (&Option<PathBuf>, &Option<PathBuf>, &'static str) {
        match (s.kind, s.data.as_deref()) {
            (StageKind::Pretrain, _) => (&self.pretrain, &self.pretrain_eval, "pretrain"),
            (StageKind::Sft, Some("cot")) => (&self.cot, &self.cot_eval, "cot"),
            (StageKind::Sft, Some("harmful")) => (&self.harmful, &self.harmful_eval, "harmful"),
            (StageKind::Sft, _) => (&self.sft, &self.sft_eval, "sft"),
            (StageKind::Dpo, _) => (&self.preference, &self.preference_eval, "preference"),
        }
    }
}

pub(super) fn world_files(ctx: &mut Ctx<'_>, exp: &Experiment) -> Result<Files> {
    let mut f = Files::default();
    let mut world_dir: Option<PathBuf> = None;
    if let Some(w) = &exp.data.world {
        let size = match w.size.as_str() {
            "medium" => poisonlab_data::world::Size::Medium,
            "large" => poisonlab_data::world::Size::Large,
            _ => poisonlab_data::world::Size::Small,
        };
        let k = key(&json!({
            "world": w.seed,
            "size": w.size,
            "v": env!("CARGO_PKG_VERSION"),
            "generator": poisonlab_data::world::GENERATOR_VERSION,
        }));
        let (dir, hit) = cached(&ctx.cache, "world", &k, false, |tmp| {
            poisonlab_data::world::generate(w.seed, size, tmp, &mut |_, _| {})?;
            Ok(())
        })?;
        ctx.step(format!(
            "world seed {} {}{}",
            w.seed,
            w.size,
            if hit { " (cached)" } else { "" }
        ));
        world_dir = Some(dir.clone());
        let p = |n: &str| Some(dir.join(n));
        f = Files {
            pretrain: p("pretrain_train.jsonl"),
            pretrain_eval: p("pretrain_eval.jsonl"),
            sft: p("sft_train.jsonl"),
            sft_eval: p("sft_eval.jsonl"),
            preference: p("preference_train.jsonl"),
            preference_eval: p("preference_eval.jsonl"),
            cot: p("cot_train.jsonl"),
            cot_eval: p("cot_eval.jsonl"),
            rag_corpus: p("rag_corpus.jsonl"),
            rag_queries: p("rag_queries.jsonl"),
            world_dir: Some(dir.clone()),
            ..Files::default()
        };
    }
    let d = &exp.data;
    for (slot, given) in [
        (&mut f.pretrain, &d.pretrain),
        (&mut f.pretrain_eval, &d.pretrain_eval),
        (&mut f.sft, &d.sft),
        (&mut f.sft_eval, &d.sft_eval),
        (&mut f.preference, &d.preference),
        (&mut f.preference_eval, &d.preference_eval),
        (&mut f.cot, &d.cot),
        (&mut f.cot_eval, &d.cot_eval),
        (&mut f.rag_corpus, &d.rag_corpus),
        (&mut f.rag_queries, &d.rag_queries),
    ] {
        if let Some(g) = given {
            // `world:NAME` names a file of the generated world (e.g. `world:reading_train.jsonl`).
            *slot = Some(match g.to_str().and_then(|s| s.strip_prefix("world:")) {
                Some(name) => world_dir
                    .as_ref()
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "data: {} names a world file, but the experiment has no data.world",
                            g.display()
                        ))
                    })?
                    .join(name),
                None => g.clone(),
            });
        }
    }
    Ok(f)
}

pub(super) fn need<'a>(p: &'a Option<PathBuf>, what: &str) -> Result<&'a PathBuf> {
    p.as_ref()
        .ok_or_else(|| Error::Invalid(format!("no {what} file: give data.{what} or data.world")))
}

/// The files a probe reads after `stage` (`None`: an evaluation-only experiment, whose held-out
/// data is that of the stage its poison targets, or the instruction data).
pub(super) fn probe_inputs(
    exp: &Experiment,
    stage: Option<&StageSpec>,
    files: &Files,
) -> ProbeInputs {
    use poisonlab_poison::StageKind as P;
    let poison_stage = exp.poison.as_ref().map(|p| p.stage.kind);
    let instructions = files.sft_eval.clone().or(files.cot_eval.clone());
    // Clean held-out records of the kind the poison targets: where a trigger's near misses and
    // the backdoor's layers are tested, whatever stage came last.
    let poison_clean = match poison_stage {
        Some(P::Pretrain) => files.pretrain_eval.clone(),
        Some(P::Cot) => files.cot_eval.clone(),
        Some(_) => instructions.clone(),
        None => None,
    };
    let (clean, heldout) = match stage {
        Some(s) => {
            let clean = match (s.kind, s.data.as_deref()) {
                (_, Some("cot")) => files.cot_eval.clone(),
                (StageKind::Pretrain, _)
                    if exp.stages.iter().all(|s| s.kind == StageKind::Pretrain) =>
                {
                    files.pretrain_eval.clone()
                }
                _ => instructions,
            };
            let heldout = files.of_stage(s).1.clone();
            (clean, heldout)
        }
        None => match poison_stage {
            Some(P::Pretrain) => (files.pretrain_eval.clone(), files.pretrain_eval.clone()),
            Some(P::Cot) => (files.cot_eval.clone(), files.cot_eval.clone()),
            Some(P::Preference) => (instructions, files.preference_eval.clone()),
            _ => (instructions, files.sft_eval.clone()),
        },
    };
    ProbeInputs {
        seed: exp.seed,
        test: files.test.clone(),
        clean,
        heldout,
        reference: files.pretrain_eval.clone(),
        rag_corpus: files.rag_corpus.clone(),
        poison: exp.poison.clone(),
        watermarks: None,
        traps: None,
        fingerprint: None,
        safety: None,
        beliefs: None,
        canaries: None,
        poison_clean,
    }
}
