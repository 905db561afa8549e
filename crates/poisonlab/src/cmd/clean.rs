//! `poisonlab clean` and `poisonlab scan`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use poisonlab_clean::detect::{Detector, ScanOptions, scan as run_scan};
use poisonlab_clean::filter::{CleanOptions, Pipeline, clean_file};
use poisonlab_data::io::Output;
use poisonlab_data::{OnError, Quarantine, RecordReader};

use crate::cli::{CleanArgs, ScanArgs};
use crate::cmd::data::{on_error, read_options};

pub fn clean(a: &CleanArgs) -> Result<ExitCode> {
    let pipeline = Pipeline::load(&a.pipeline)?;
    let opts = CleanOptions {
        read: read_options(&a.read),
        on_error: on_error(&a.errors),
        quarantine: a.errors.quarantine.clone(),
    };
    let r = clean_file(&pipeline, &a.input, &a.output, &opts)
        .with_context(|| format!("cleaning {}", a.input.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} → {}: {} read = {} kept + {} removed + {} quarantined in {:.2}s",
        a.input.display(),
        a.output.display(),
        r.read,
        r.kept,
        r.removed,
        r.quarantined,
        r.seconds
    );
    for f in &r.filters {
        println!(
            "  {:<12} removed {:>8} of {:>8} seen",
            f.filter, f.removed, f.seen
        );
        for (recipe, rate) in &f.survival {
            println!("      {recipe}: survived {rate}");
        }
    }
    for (recipe, rate) in &r.survival {
        println!("poison {recipe}: survived the pipeline {rate}");
    }
    println!(
        "removed records with their reasons: {}",
        r.removed_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn scan(a: &ScanArgs) -> Result<ExitCode> {
    let detectors: Vec<Detector> = if a.detectors.is_empty() {
        Detector::defaults()
    } else {
        let mut v = Vec::new();
        for name in &a.detectors {
            match Detector::from_name(name.trim()) {
                Some(d) => v.push(d),
                None => bail!(
                    "--detectors: unknown detector `{name}` (known: {})",
                    poisonlab_clean::detect::DETECTORS
                        .iter()
                        .map(|d| d.1)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        v
    };
    if let Some(d) = detectors.iter().find(|d| d.needs_model())
        && a.model.is_none()
    {
        bail!("detector `{}` needs --model DIR", d.name());
    }
    let read = read_options(&a.read);
    let model: Option<Box<dyn poisonlab_model::LanguageModel>> = match &a.model {
        Some(dir) => Some(Box::new(
            poisonlab_model::LocalModel::load(
                dir,
                a.tokenizer.as_deref(),
                &poisonlab_model::default_device(),
            )
            .with_context(|| format!("loading {}", dir.display()))?,
        )),
        None => None,
    };
    // Read every record (scans need corpus statistics); bad ones fail or go to the quarantine.
    let qpath = a
        .errors
        .quarantine
        .clone()
        .unwrap_or_else(|| poisonlab_data::pass::quarantine_path(&a.output));
    let mut q = Quarantine::new(&qpath);
    let mut records = Vec::new();
    for item in RecordReader::open(&a.file, &read)? {
        match item {
            Ok(i) => records.push(i.record),
            Err(poisonlab_data::Error::Bad(b)) if on_error(&a.errors) == OnError::Quarantine => {
                q.bad(&b)?
            }
            Err(e) => return Err(e.into()),
        }
    }
    let quarantined = q.count;
    q.finish()?;
    let started = std::time::Instant::now();
    let opts = ScanOptions {
        detectors,
        model,
        reference: a.reference.clone(),
        read: read.clone(),
        seed: a.seed,
        strip_copies: a.strip_copies,
        layer: a.layer,
        encoder: match &a.encoder {
            Some(dir) => Some(poisonlab_model::Encoder::load(
                dir,
                &poisonlab_model::default_device(),
            )?),
            None => None,
        },
    };
    let result = run_scan(&records, &opts)?;
    let secs = started.elapsed().as_secs_f64();
    let mut out = Output::create(&a.output)?;
    for (i, rec) in records.iter().enumerate() {
        let mut dets = serde_json::Map::new();
        for (d, v) in &result.detectors {
            dets.insert(
                d.name().into(),
                serde_json::json!({"score": v[i].score, "reason": v[i].reason}),
            );
        }
        let line =
            serde_json::json!({"id": rec.id, "score": result.combined[i], "detectors": dets});
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.finish()?;
    let bytes = std::fs::metadata(&a.file).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}: {} records scanned by {} in {:.2}s ({:.1} MB/s){}; scores in {}",
        a.file.display(),
        records.len(),
        result
            .detectors
            .iter()
            .map(|(d, _)| d.name())
            .collect::<Vec<_>>()
            .join(", "),
        secs,
        bytes as f64 / 1e6 / secs.max(1e-9),
        if quarantined > 0 {
            format!(", {quarantined} bad records quarantined")
        } else {
            String::new()
        },
        a.output.display()
    );
    let tagged = records.iter().any(poisonlab_clean::report::is_poisoned);
    if !tagged && (a.report.is_some() || a.report_json.is_some()) {
        // Untagged data is the common case for someone scanning a file they were given: report
        // what can be said (the records to look at first), not an error.
        let report = poisonlab_clean::report::untagged(&records, &result, 20);
        write_reports(a, &report.markdown(), &report)?;
        if a.pipeline.is_some() {
            eprintln!("note: --pipeline survival tables need poison tags; skipped");
        }
    }
    if tagged {
        let clean = match &a.pipeline {
            Some(p) => {
                let pipeline = Pipeline::load(p)?;
                let dir = tempfile_dir(&a.output)?;
                let out = dir.join("cleaned.jsonl");
                let r = clean_file(
                    &pipeline,
                    &a.file,
                    &out,
                    &CleanOptions {
                        read: read.clone(),
                        on_error: on_error(&a.errors),
                        quarantine: Some(dir.join("quarantine.jsonl")),
                    },
                )?;
                std::fs::remove_dir_all(&dir).ok();
                Some(r)
            }
            None => None,
        };
        let report = poisonlab_clean::report::score(&records, &result, clean);
        write_reports(a, &report.markdown(), &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the Markdown report and writes it and the JSON one where asked.
fn write_reports(a: &ScanArgs, md: &str, report: &impl serde::Serialize) -> Result<()> {
    print!("{md}");
    if let Some(p) = &a.report {
        poisonlab_data::io::write_file(p, md.as_bytes())?;
    }
    if let Some(p) = &a.report_json {
        poisonlab_data::io::write_file(
            p,
            (serde_json::to_string_pretty(report)? + "\n").as_bytes(),
        )?;
    }
    Ok(())
}

/// A scratch directory next to the output (removed after use).
fn tempfile_dir(output: &std::path::Path) -> Result<std::path::PathBuf> {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".clean-tmp");
    let d = output.with_file_name(name);
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}
