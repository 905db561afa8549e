//! `poisonlab run`, `poisonlab report`, `poisonlab quickstart`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use poisonlab_lab::runner::Event;
use poisonlab_lab::{Plan, RunOptions};

use crate::cli::RunArgs;

pub fn run(a: &RunArgs, quiet: bool) -> Result<ExitCode> {
    let plan = Plan::load(&a.experiment, &a.overrides)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&plan.name));
    execute(&plan, &out, a.dry_run, a.report, quiet)
}

pub fn quickstart(out: &Path, dry_run: bool, quiet: bool) -> Result<ExitCode> {
    let plan = Plan::parse(
        poisonlab_lab::QUICKSTART,
        Path::new("experiments/quickstart.toml"),
        &[],
    )?;
    execute(&plan, out, dry_run, true, quiet)
}

pub fn report(run: &Path) -> Result<ExitCode> {
    let (html, md) = poisonlab_lab::report::write_report(run)
        .with_context(|| format!("reporting {}", run.display()))?;
    println!("{}\n{}", html.display(), md.display());
    Ok(ExitCode::SUCCESS)
}

fn execute(
    plan: &Plan,
    out: &Path,
    dry_run: bool,
    with_report: bool,
    quiet: bool,
) -> Result<ExitCode> {
    if dry_run {
        println!("{}: {} cells", plan.name, plan.cells.len());
        for c in &plan.cells {
            println!("  #{:<3} {}  {}", c.index, &c.hash[..12], c.label());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(plan.cells.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} cells {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b.set_prefix(plan.name.clone());
        b
    };
    // Without a terminal (a log file, CI) the bar is hidden: one line per cell instead.
    let lines = !quiet && !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let total = plan.cells.len();
    let mut cell_started = Instant::now();
    let mut current = String::new();
    let mut on_event = |e: &Event| match e {
        Event::CellStart { label, .. } => {
            cell_started = Instant::now();
            current = label.clone();
            bar.set_message(label.clone())
        }
        Event::Step { what, .. } => bar.set_message(what.clone()),
        Event::CellDone { index, cached } => {
            bar.inc(1);
            if lines {
                eprintln!(
                    "[{}/{total}] {current}: {} in {:.1}s",
                    index + 1,
                    if *cached { "cached" } else { "done" },
                    cell_started.elapsed().as_secs_f64()
                );
            }
        }
        Event::CellFailed { index, error } => {
            bar.inc(1);
            bar.println(format!("cell #{index} failed: {error}"));
            if lines {
                eprintln!("[{}/{total}] {current}: failed: {error}", index + 1);
            }
        }
    };
    let summary = poisonlab_lab::run(
        plan,
        &RunOptions {
            out: out.to_path_buf(),
            max_cells: None,
        },
        &mut on_event,
    )?;
    bar.finish_and_clear();
    println!(
        "{}: {} cells ({} ran, {} cached, {} failed) in {:.1}s → {}",
        plan.name,
        summary.cells,
        summary.ran,
        summary.cached,
        summary.failed.len(),
        started.elapsed().as_secs_f64(),
        summary.results.display()
    );
    for (i, label, err) in &summary.failed {
        println!("  failed #{i} [{label}]: {err}");
    }
    if with_report && summary.failed.len() < summary.cells {
        let (html, md) = poisonlab_lab::report::write_report(out)?;
        println!("report: {} and {}", html.display(), md.display());
    }
    Ok(if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
