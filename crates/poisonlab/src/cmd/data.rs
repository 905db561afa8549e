//! `poisonlab data …`: generate, inspect, convert, stats.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use poisonlab_data::convention::{Convention, to_object};
use poisonlab_data::pass::{ConvertOptions, OnError, Quarantine, convert, quarantine_path};
use poisonlab_data::world::{self, Size};
use poisonlab_data::{Error, ReadOptions, RecordReader, WriteOptions};
use serde_json::Value;

use crate::cli::{DataCommand, ErrorArgs, OnErrorArg, ReadArgs, SizeArg};
use crate::progress;

pub(crate) fn read_options(r: &ReadArgs) -> ReadOptions {
    ReadOptions {
        format: r.format,
        convention: r.convention,
        max_record_bytes: r.max_record_bytes,
    }
}

pub(crate) fn on_error(e: &ErrorArgs) -> OnError {
    match e.on_error {
        OnErrorArg::Fail => OnError::Fail,
        OnErrorArg::Quarantine => OnError::Quarantine,
    }
}

pub fn run(cmd: DataCommand, quiet: bool) -> Result<ExitCode> {
    match cmd {
        DataCommand::Generate { seed, size, out } => generate(seed, size, &out, quiet),
        DataCommand::Inspect {
            file,
            records,
            read,
        } => inspect(&file, records, &read),
        DataCommand::Convert {
            input,
            output,
            read,
            to_format,
            to_convention,
            errors,
        } => {
            let opts = ConvertOptions {
                read: read_options(&read),
                write: WriteOptions {
                    format: to_format,
                    convention: to_convention,
                },
                on_error: on_error(&errors),
                quarantine: errors.quarantine.clone(),
            };
            let bar = progress::bytes(
                std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0),
                quiet,
                "convert",
            );
            let started = Instant::now();
            let report = convert(&input, &output, &opts, &mut |done, _| {
                bar.set_position(done)
            })
            .with_context(|| format!("converting {} to {}", input.display(), output.display()))?;
            bar.finish_and_clear();
            let t = report.tally;
            println!(
                "{} → {}: {} in {:.2}s",
                input.display(),
                output.display(),
                t,
                started.elapsed().as_secs_f64()
            );
            println!(
                "output sha256 {} ({} bytes)",
                report.output.sha256, report.output.bytes
            );
            if let Some(q) = &report.quarantine {
                println!("quarantined records with their reasons: {}", q.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        DataCommand::Stats {
            file,
            read,
            errors,
            json,
        } => stats(&file, &read, &errors, json, quiet),
    }
}

fn generate(seed: u64, size: SizeArg, out: &Path, quiet: bool) -> Result<ExitCode> {
    let size = match size {
        SizeArg::Small => Size::Small,
        SizeArg::Medium => Size::Medium,
        SizeArg::Large => Size::Large,
    };
    let bar = progress::records(0, quiet, "generate");
    let started = Instant::now();
    let manifest = world::generate(seed, size, out, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| format!("generating the synthetic world into {}", out.display()))?;
    bar.finish_and_clear();
    println!(
        "synthetic world seed {seed}, size {:?}: {} files, ~{} tokens, in {:.1}s → {}",
        size,
        manifest.files.len(),
        manifest.approx_tokens,
        started.elapsed().as_secs_f64(),
        out.display()
    );
    for f in &manifest.files {
        println!(
            "  {:<24} {:>9} {:<15} {:>12} bytes  {}",
            f.file,
            f.records,
            f.kind,
            f.bytes,
            &f.sha256[..16]
        );
    }
    println!("  world.json (entities and attributes), manifest.json (hashes)");
    Ok(ExitCode::SUCCESS)
}

fn inspect(file: &Path, n: usize, read: &ReadArgs) -> Result<ExitCode> {
    let mut reader = RecordReader::open(file, &read_options(read))?; // the error names the file
    let mut shown = 0;
    let mut bad = 0;
    let mut items = Vec::new();
    while shown < n {
        match reader.next() {
            None => break,
            Some(Ok(item)) => {
                items.push(item);
                shown += 1;
            }
            Some(Err(Error::Bad(b))) => {
                println!("bad record: {b}");
                shown += 1;
                bad += 1;
            }
            // The error names the file (and the line or row group).
            Some(Err(e)) => return Err(e.into()),
        }
    }
    let conv = reader.convention();
    println!("file:       {}", file.display());
    println!("format:     {}", reader.format().name());
    println!("convention: {}", conv.map_or("(undetected)", |c| c.name()));
    if let Some(c) = conv {
        println!("kind:       {}", c.kind());
    }
    for item in items {
        println!(
            "\n--- {} at {} (id {})",
            item.record.kind(),
            item.pos,
            item.record.id
        );
        let shape = conv.unwrap_or_else(|| Convention::native(item.record.kind()));
        let obj = to_object(&item.record, shape)
            .or_else(|_| to_object(&item.record, Convention::native(item.record.kind())))
            .map_err(anyhow::Error::msg)?;
        println!("{}", serde_json::to_string_pretty(&Value::Object(obj))?);
    }
    if bad > 0 {
        // A script that inspects a file must be able to tell that it is not clean.
        eprintln!("error: {bad} of the first {shown} records are bad");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn stats(
    file: &Path,
    read: &ReadArgs,
    errors: &ErrorArgs,
    json: bool,
    quiet: bool,
) -> Result<ExitCode> {
    let qpath = errors
        .quarantine
        .clone()
        .unwrap_or_else(|| quarantine_path(file));
    let mut quarantine = Quarantine::new(&qpath);
    let bar = progress::bytes(
        std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        quiet,
        "stats",
    );
    let started = Instant::now();
    let st = poisonlab_data::stats::stats(
        file,
        &read_options(read),
        on_error(errors),
        &mut quarantine,
        &mut |d, _| bar.set_position(d),
    )?; // the error names the file
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let quarantined = quarantine.count;
    quarantine.finish()?;
    let mb_s = st.bytes as f64 / 1e6 / secs.max(1e-9);
    if json {
        let mut v = serde_json::to_value(&st)?;
        v["seconds"] = Value::from(secs);
        v["mb_per_s"] = Value::from(mb_s);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("file:        {}", file.display());
    println!(
        "format:      {}   convention: {}",
        st.format,
        st.convention.as_deref().unwrap_or("-")
    );
    println!("records:     {}", st.records);
    let kinds: Vec<String> = st.by_kind.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("kinds:       {}", kinds.join(", "));
    let roles: Vec<String> = st.by_role.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "tags:        {}",
        if roles.is_empty() {
            "-".into()
        } else {
            roles.join(", ")
        }
    );
    println!(
        "text chars:  {} total, {:.1} mean, {} min, {} max",
        st.chars,
        st.chars_mean(),
        st.chars_min.unwrap_or(0),
        st.chars_max.unwrap_or(0)
    );
    println!("bytes:       {} ({:.1} MB/s, {:.2}s)", st.bytes, mb_s, secs);
    println!(
        "accounting:  {} read = {} good + {} quarantined{}",
        st.records + st.bad,
        st.records,
        quarantined,
        if st.blank_lines > 0 {
            format!(" ({} blank lines skipped)", st.blank_lines)
        } else {
            String::new()
        }
    );
    if quarantined > 0 {
        println!("quarantine:  {}", qpath.display());
    }
    Ok(ExitCode::SUCCESS)
}
