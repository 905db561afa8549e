//! `rag_retrieval`: for each target query of the test split (`relevant` = its poisoned passages),
//! whether one of them is among the top k retrieved.

use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use super::{After, Needs, ProbeInputs, ProbeRun, five, hundred};
use crate::error::Result;
use crate::measure::Measure;
use crate::retrieval::{RetrieverKind, retrieve_targets};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RagRetrieval {
    /// Target queries probed (at most).
    #[serde(default = "hundred")]
    pub n: usize,
    #[serde(default)]
    pub after: After,
    /// Passages retrieved per query.
    #[serde(default = "five")]
    pub top_k: usize,
    #[serde(default)]
    pub retriever: RetrieverKind,
}

impl ProbeRun for RagRetrieval {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.n == 0 {
            return Err("n must be at least 1".into());
        }
        if self.top_k == 0 {
            return Err("top_k must be at least 1".into());
        }
        Ok(())
    }

    fn needs(&self) -> Needs {
        Needs::PoisonStage(poisonlab_poison::StageKind::Rag)
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let (passages, queries, trials) =
            retrieve_targets(model, inputs, self.n, self.retriever, self.top_k)?;
        let hits = queries
            .iter()
            .filter(|q| q.top.iter().any(|&i| q.relevant.contains(&passages[i].id)))
            .count() as u64;
        let name = format!("rag_retrieval/{}", self.retriever.as_str());
        Ok(vec![Measure::rate(name, hits, trials)])
    }
}
