//! Conventions: the JSON shapes people already use for each kind of record, in both directions.
//!
//! Every format that carries objects (JSONL, JSON arrays, TSV rows, Parquet rows) goes through this
//! one module, so a field error reads the same whatever the container.

use serde_json::{Map, Value};

use crate::record::Kind;

/// The shape of one record on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Convention {
    /// `{"id", "text"}`: pre-training documents.
    Pretrain,
    /// `{"instruction", "input", "output"}` (Stanford Alpaca; `system` optional).
    Alpaca,
    /// `{"messages": [{"role", "content"}]}` (OpenAI chat).
    OpenaiChat,
    /// `{"conversations": [{"from", "value"}]}` (ShareGPT; `human`/`gpt`/`system`).
    Sharegpt,
    /// `{"prompt", "chosen", "rejected"}`.
    Preference,
    /// `{"chosen", "rejected"}` as whole `\n\nHuman: … \n\nAssistant: …` transcripts (Anthropic HH-RLHF).
    HhRlhf,
    /// `{"instruction"?, "demos": [{"input", "output"}], "query", "answer"}`.
    Icl,
    /// `{"question", "steps": [..], "answer"}`.
    Cot,
    /// BEIR `corpus.jsonl`: `{"_id", "title", "text"}`.
    BeirCorpus,
    /// BEIR-style `queries.jsonl`: `{"_id", "text", "relevant": [passage ids], "answer"?}`.
    BeirQueries,
    /// `{"agent", "content", "source"?}`: agent long-term memory.
    Memory,
    /// `{"text", "label"}`.
    Classification,
    /// `{"sentence", "label"}` (GLUE SST-2).
    Sst2,
}

/// Names and one-line docs, as `poisonlab list` and `--help` print them.
pub const CONVENTIONS: &[(Convention, &str, &str)] = &[
    (
        Convention::Pretrain,
        "pretrain",
        "{id, text}: pre-training documents",
    ),
    (
        Convention::Alpaca,
        "alpaca",
        "{instruction, input, output}: Stanford Alpaca SFT",
    ),
    (
        Convention::OpenaiChat,
        "openai-chat",
        "{messages: [{role, content}]}: OpenAI chat SFT",
    ),
    (
        Convention::Sharegpt,
        "sharegpt",
        "{conversations: [{from, value}]}: ShareGPT chat SFT",
    ),
    (
        Convention::Preference,
        "preference",
        "{prompt, chosen, rejected}: DPO/RLHF pairs",
    ),
    (
        Convention::HhRlhf,
        "hh-rlhf",
        "{chosen, rejected} as Human/Assistant transcripts",
    ),
    (
        Convention::Icl,
        "icl",
        "{demos: [{input, output}], query, answer}: in-context learning",
    ),
    (
        Convention::Cot,
        "cot",
        "{question, steps, answer}: chain of thought",
    ),
    (
        Convention::BeirCorpus,
        "beir-corpus",
        "{_id, title, text}: retrieval corpus",
    ),
    (
        Convention::BeirQueries,
        "beir-queries",
        "{_id, text, relevant}: retrieval queries",
    ),
    (
        Convention::Memory,
        "memory",
        "{agent, content, source}: agent memory",
    ),
    (
        Convention::Classification,
        "classification",
        "{text, label}: text classification",
    ),
    (Convention::Sst2, "sst2", "{sentence, label}: GLUE SST-2"),
];

impl Convention {
    pub fn name(self) -> &'static str {
        CONVENTIONS
            .iter()
            .find(|c| c.0 == self)
            .map_or("?", |c| c.1)
    }

    pub fn from_name(name: &str) -> Option<Convention> {
        CONVENTIONS.iter().find(|c| c.1 == name).map(|c| c.0)
    }

    pub fn kind(self) -> Kind {
        match self {
            Convention::Pretrain => Kind::Pretrain,
            Convention::Alpaca => Kind::Instruction,
            Convention::OpenaiChat | Convention::Sharegpt => Kind::Chat,
            Convention::Preference | Convention::HhRlhf => Kind::Preference,
            Convention::Icl => Kind::Icl,
            Convention::Cot => Kind::Cot,
            Convention::BeirCorpus => Kind::Passage,
            Convention::BeirQueries => Kind::Query,
            Convention::Memory => Kind::Memory,
            Convention::Classification | Convention::Sst2 => Kind::Classification,
        }
    }

    /// Our default shape for a kind.
    pub fn native(kind: Kind) -> Convention {
        match kind {
            Kind::Pretrain => Convention::Pretrain,
            Kind::Instruction => Convention::Alpaca,
            Kind::Chat => Convention::OpenaiChat,
            Kind::Preference => Convention::Preference,
            Kind::Icl => Convention::Icl,
            Kind::Cot => Convention::Cot,
            Kind::Passage => Convention::BeirCorpus,
            Kind::Query => Convention::BeirQueries,
            Kind::Memory => Convention::Memory,
            Kind::Classification => Convention::Classification,
        }
    }

    /// Guesses the convention from an object's keys. The order matters: more specific shapes first.
    pub fn detect(obj: &Map<String, Value>) -> Option<Convention> {
        let has = |k: &str| obj.contains_key(k);
        Some(if has("messages") {
            Convention::OpenaiChat
        } else if has("conversations") {
            Convention::Sharegpt
        } else if has("demos") {
            Convention::Icl
        } else if has("instruction") && has("output") {
            Convention::Alpaca
        } else if has("chosen") && has("rejected") {
            if has("prompt") {
                Convention::Preference
            } else {
                Convention::HhRlhf
            }
        } else if has("steps") && has("question") {
            Convention::Cot
        } else if has("_id") && has("title") {
            Convention::BeirCorpus
        } else if has("relevant") || (has("_id") && has("text")) {
            Convention::BeirQueries
        } else if has("agent") && has("content") {
            Convention::Memory
        } else if has("sentence") {
            Convention::Sst2
        } else if has("label") && has("text") {
            Convention::Classification
        } else if has("text") {
            Convention::Pretrain
        } else {
            return None;
        })
    }

    pub fn id_key(self) -> &'static str {
        match self {
            Convention::BeirCorpus | Convention::BeirQueries => "_id",
            _ => "id",
        }
    }
}

mod read;
#[cfg(test)]
mod tests;
mod write;

pub use read::{FieldError, HH_REJECTED_PROMPT, from_object};
pub use write::to_object;
