//! The training stages of the lifecycle — one type for the trainer, the experiment runner, the
//! poison specs (which stage trains on the data they rewrite) and the command line.

use serde::{Deserialize, Serialize};

/// A training stage, in lifecycle order (`Pretrain < Sft < Dpo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Next-token prediction on documents.
    Pretrain,
    /// Supervised fine-tuning on instructions (or chain-of-thought problems).
    Sft,
    /// Direct preference optimisation on preference pairs.
    Dpo,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Pretrain, Stage::Sft, Stage::Dpo];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pretrain => "pretrain",
            Stage::Sft => "sft",
            Stage::Dpo => "dpo",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Stage {
    type Err = String;

    fn from_str(s: &str) -> Result<Stage, String> {
        Stage::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown stage `{s}`: expected pretrain, sft or dpo"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_is_the_lifecycle() {
        for s in Stage::ALL {
            assert_eq!(s.as_str().parse::<Stage>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!(Stage::Pretrain < Stage::Sft && Stage::Sft < Stage::Dpo);
        assert!(
            "rlhf"
                .parse::<Stage>()
                .unwrap_err()
                .contains("pretrain, sft or dpo")
        );
    }
}
