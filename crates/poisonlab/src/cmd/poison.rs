//! `poisonlab poison`: a spec applied to one data file.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use poisonlab_poison::{PoisonOptions, Spec, poison_file};

use crate::cli::PoisonArgs;
use crate::cmd::data::{on_error, read_options};

pub fn run(a: &PoisonArgs, _quiet: bool) -> Result<ExitCode> {
    let spec = Spec::load_with(&a.spec, &a.overrides)?;
    let opts = PoisonOptions {
        read: read_options(&a.read),
        on_error: on_error(&a.errors),
        quarantine: a.errors.quarantine.clone(),
        manifest: a.manifest.clone(),
        summary: None,
        test_input: a.test_input.clone(),
        test_output: a.test_output.clone(),
        strip_tags: a.strip_tags,
    };
    let started = Instant::now();
    let report = poison_file(&spec, &a.input, &a.output, &opts)
        .with_context(|| format!("poisoning {} with {}", a.input.display(), a.spec.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let t = report.tally;
    println!(
        "{} → {} [{} {}]: {} in {:.2}s",
        a.input.display(),
        a.output.display(),
        report.format,
        report.convention,
        t,
        started.elapsed().as_secs_f64()
    );
    println!(
        "recipe {} ({}): budget {} of {} records ({} eligible); {} poisoned records in the output",
        spec.name,
        spec.role.as_str(),
        report.budget,
        report.records,
        report.eligible,
        report.poisoned
    );
    if let Some(c) = &report.crawl {
        println!(
            "crawl ({:?}, integrity {}): {} of {} attacked pages landed in the snapshot ({:.1}%, 95% CI {:.1}–{:.1}%); {} poisoned and {} benign pages dropped by the integrity check",
            c.attack,
            c.integrity,
            c.landed,
            c.attacked,
            100.0 * c.landed_rate.rate,
            100.0 * c.landed_rate.ci95[0],
            100.0 * c.landed_rate.ci95[1],
            c.dropped_poison,
            c.dropped_benign
        );
    }
    println!(
        "output sha256 {} ({} bytes)",
        report.output_sha256, report.output_bytes
    );
    println!("manifest {}", report.manifest.display());
    if let Some(tr) = &report.test {
        println!("test split {} ({} records)", tr.path.display(), tr.records);
    }
    if let Some(q) = &report.quarantine {
        println!("quarantined records with their reasons: {}", q.display());
    }
    Ok(ExitCode::SUCCESS)
}
