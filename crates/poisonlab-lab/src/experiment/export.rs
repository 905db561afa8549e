//! `[[stage]] kind = "export"`: the last stage of an experiment that trains elsewhere. The stages
//! before it are not trained here; their data — poisoned, cut to `max_records`, cleaned, exactly
//! what a stage here would train on — is exported for LLaMA-Factory, TRL or axolotl into the
//! cell's `export/` folder. With a `[model]` (the endpoint serving the model trained on that
//! export) the probes then measure it, on the same poison's test split.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    /// `llama-factory`, `trl` or `axolotl`.
    pub to: String,
    /// `jsonl` (default) or `parquet`.
    #[serde(default = "jsonl")]
    pub format: String,
    /// Rows without the poison tags and ids (the manifest beside them keeps both).
    #[serde(default)]
    pub strip_tags: bool,
}

fn jsonl() -> String {
    "jsonl".into()
}

impl ExportSpec {
    pub fn target(&self) -> std::result::Result<poisonlab_data::export::Target, String> {
        poisonlab_data::export::Target::from_name(&self.to).ok_or_else(|| {
            format!(
                "stage.to = {:?} (export): one of {}",
                self.to,
                poisonlab_data::export::Target::NAMES.join(", ")
            )
        })
    }

    pub fn format(&self) -> std::result::Result<poisonlab_data::export::ExportFormat, String> {
        match self.format.as_str() {
            "jsonl" => Ok(poisonlab_data::export::ExportFormat::Jsonl),
            "parquet" => Ok(poisonlab_data::export::ExportFormat::Parquet),
            f => Err(format!("stage.format = {f:?} (export): jsonl or parquet")),
        }
    }
}

/// Moves a `[[stage]] kind = "export"` table out of the stage list into `export`, so that the
/// training stages keep their own schema. It must be the last stage, and the only export.
pub fn lift_export_stage(t: &mut toml::Table) -> std::result::Result<(), String> {
    let Some(toml::Value::Array(stages)) = t.get_mut("stage") else {
        return Ok(());
    };
    let is_export = |v: &toml::Value| v.get("kind").and_then(|k| k.as_str()) == Some("export");
    let at: Vec<usize> = (0..stages.len())
        .filter(|&i| is_export(&stages[i]))
        .collect();
    match at.as_slice() {
        [] => return Ok(()),
        [i] if *i + 1 == stages.len() => {}
        [_] => return Err("stage: `export` must be the last stage".into()),
        _ => return Err("stage: at most one `export` stage".into()),
    }
    let Some(toml::Value::Table(mut e)) = stages.pop() else {
        return Err("stage: an export stage must be a table".into());
    };
    e.remove("kind");
    if t.contains_key("export") {
        return Err(
            "`export` is set by the export stage; give it only as [[stage]] kind = \"export\""
                .into(),
        );
    }
    t.insert("export".into(), toml::Value::Table(e));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_stage_leaves_the_stage_list_and_must_be_last() {
        let mut t: toml::Table = toml::from_str(
            "[[stage]]\nkind = \"sft\"\n[[stage]]\nkind = \"export\"\nto = \"trl\"\n",
        )
        .unwrap();
        lift_export_stage(&mut t).unwrap();
        assert_eq!(t["stage"].as_array().unwrap().len(), 1);
        assert_eq!(t["export"]["to"].as_str(), Some("trl"));
        let mut t: toml::Table = toml::from_str(
            "[[stage]]\nkind = \"export\"\nto = \"trl\"\n[[stage]]\nkind = \"sft\"\n",
        )
        .unwrap();
        assert!(lift_export_stage(&mut t).unwrap_err().contains("last"));
    }
}
