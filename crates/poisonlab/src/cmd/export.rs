//! `poisonlab export`: data in the layout of another trainer.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use poisonlab_data::OnError;
use poisonlab_data::export::{ExportFormat, ExportInput, ExportOptions, export};

use crate::cli::{ExportArgs, ExportFormatArg, OnErrorArg};
use crate::cmd::data::read_options;

pub fn run(a: &ExportArgs) -> Result<ExitCode> {
    let opts = ExportOptions {
        target: a.target,
        format: match a.as_format {
            ExportFormatArg::Jsonl => ExportFormat::Jsonl,
            ExportFormatArg::Parquet => ExportFormat::Parquet,
        },
        strip_tags: a.strip_tags,
        read: read_options(&a.read),
        on_error: match a.on_error {
            OnErrorArg::Fail => OnError::Fail,
            OnErrorArg::Quarantine => OnError::Quarantine,
        },
    };
    let started = Instant::now();
    if a.name.is_some() && a.inputs.len() > 1 {
        anyhow::bail!(
            "--name names the set of a single --input; with several, each set is named after its file"
        );
    }
    let inputs: Vec<ExportInput> = a
        .inputs
        .iter()
        .map(|p| ExportInput {
            path: p.clone(),
            name: a.name.clone(),
        })
        .collect();
    let report = export(&inputs, &a.out, &opts)
        .with_context(|| format!("exporting to {} for {}", a.out.display(), a.target.name()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} for {}: {} in {:.2}s",
        a.out.display(),
        a.target.name(),
        report.tally,
        started.elapsed().as_secs_f64()
    );
    for s in &report.sets {
        println!(
            "  {} ({} → {:?}): {} records, {} poisoned, sha256 {}{}",
            s.file,
            s.kind,
            s.layout,
            s.records,
            s.poisoned,
            s.sha256,
            if s.side_files.is_empty() {
                String::new()
            } else {
                format!("; with {}", s.side_files.join(", "))
            }
        );
    }
    if !report.registry.is_empty() {
        println!("registry: {}", report.registry.join(", "));
    }
    if let Some(q) = &report.quarantine {
        println!(
            "quarantined records with their reasons: {}",
            a.out.join(q).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
