//! `poisonlab export`'s arguments.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{OnErrorArg, ReadArgs};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The trainer: llama-factory, trl or axolotl.
    #[arg(long = "to", value_parser = parse_target, value_name = "TRAINER")]
    pub target: poisonlab_data::export::Target,
    /// Data to export (any format and convention `data` reads; a folder or a quoted glob of
    /// shards; a `datasets` save_to_disk folder); repeat for several sets. A
    /// sibling `<input>.manifest.jsonl` / `.summary.json` (from `poisonlab poison`) travels with it.
    #[arg(long = "input", value_name = "FILE", required = true)]
    pub inputs: Vec<PathBuf>,
    /// The export folder (replaced whole when it exists).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Data files as JSON Lines or Parquet.
    #[arg(long = "as", value_enum, default_value_t = ExportFormatArg::Jsonl, value_name = "FORMAT")]
    pub as_format: ExportFormatArg,
    /// The set's name for a single input (default: the input's file stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Leave the `poison` tags (and the `id`s we added where the input had none) out of the rows;
    /// the manifests keep them.
    #[arg(long)]
    pub strip_tags: bool,
    #[command(flatten)]
    pub read: ReadArgs,
    /// What to do with a bad or unexportable record: stop (fail) or set it aside in
    /// `<out>/quarantine.jsonl` with its reason (quarantine).
    #[arg(long, value_enum, default_value_t = OnErrorArg::Fail)]
    pub on_error: OnErrorArg,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormatArg {
    Jsonl,
    Parquet,
}

fn parse_target(s: &str) -> Result<poisonlab_data::export::Target, String> {
    poisonlab_data::export::Target::from_name(s).ok_or_else(|| {
        format!(
            "unknown trainer `{s}`; one of {}",
            poisonlab_data::export::Target::NAMES.join(", ")
        )
    })
}
