//! Exports for the trainers people use: a folder that LLaMA-Factory, TRL or axolotl loads as it
//! is — the data in the trainer's layout, its registry (`dataset_info.json`, an axolotl YAML),
//! the poison manifests beside it, and `export.json` saying which file holds what.
//!
//! The folder is built beside its final name and swapped in whole, so a killed export leaves the
//! old folder or none. Every record read is written or quarantined (`quarantine.jsonl` inside the
//! folder) — `read = written + quarantined` — and the same inputs give the same bytes.

mod layout;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value, json};

pub use layout::{EXPORTABLE, Layout, SetFacts, layout, row};

use crate::error::{Error, Result};
use crate::format::{ReadOptions, RecordReader};
use crate::io::{FileDigest, Output, partial_dir, replace_dir, sibling, strip_compression};
use crate::pass::{OnError, Quarantine, Tally};
use crate::record::{Kind, Record};

/// The trainer an export is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    LlamaFactory,
    Trl,
    Axolotl,
}

impl Target {
    pub const NAMES: &[&str] = &["llama-factory", "trl", "axolotl"];

    pub fn from_name(s: &str) -> Option<Target> {
        Some(match s {
            "llama-factory" | "llamafactory" => Target::LlamaFactory,
            "trl" => Target::Trl,
            "axolotl" => Target::Axolotl,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::LlamaFactory => "llama-factory",
            Target::Trl => "trl",
            Target::Axolotl => "axolotl",
        }
    }
}

/// The container of the exported data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Jsonl,
    Parquet,
}

impl ExportFormat {
    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Parquet => "parquet",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub target: Target,
    pub format: ExportFormat,
    /// Leave out our additions — the `poison` tag, and the `id` where the input had none — from
    /// the rows; the manifests beside the data keep them (rows are in input order, so a manifest's `output_ordinal` is the
    /// row's index).
    pub strip_tags: bool,
    pub read: ReadOptions,
    pub on_error: OnError,
}

/// One input of an export: a data file, a folder or glob of shards, or a `datasets` `save_to_disk`
/// folder.
#[derive(Debug, Clone)]
pub struct ExportInput {
    pub path: PathBuf,
    /// The set's name (default: the file stem or folder name).
    pub name: Option<String>,
}

impl ExportInput {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ExportInput {
            path: path.into(),
            name: None,
        }
    }
}

/// One data file of an export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedSet {
    /// The name the trainer knows it by (`dataset: <name>` in LLaMA-Factory).
    pub name: String,
    /// The record kind (`instruction`, `chat`, …).
    pub kind: String,
    pub layout: Layout,
    /// Relative to the export folder.
    pub file: String,
    pub records: u64,
    /// Rows that carry a poison tag (counted whether or not the tags are stripped).
    pub poisoned: u64,
    pub sha256: String,
    pub bytes: u64,
    /// The input file it came from.
    pub source: String,
    /// The poison manifest and summary copied beside it, when the input had them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub side_files: Vec<String>,
    #[serde(skip)]
    pub facts: SetFacts,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub target: Target,
    pub format: ExportFormat,
    pub strip_tags: bool,
    pub sets: Vec<ExportedSet>,
    pub tally: Tally,
    /// `quarantine.jsonl` inside the folder, when a record was set aside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<String>,
    /// The registry files written for the trainer.
    pub registry: Vec<String>,
}

/// A set's name from its input: the file stem without compression, made of `[A-Za-z0-9_.-]`.
fn stem_name(input: &Path) -> String {
    // A glob of shards is named after the folder it matches in.
    let input = if input.to_string_lossy().contains(['*', '?', '['])
        && let Some(parent) = input.parent().filter(|p| !p.as_os_str().is_empty())
    {
        parent
    } else {
        input
    };
    let base = strip_compression(input);
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "data".into()
    } else {
        clean
    }
}

/// Per input, the kinds it holds (in first-seen order) and what the layouts need to know.
struct Scan {
    kinds: Vec<(Kind, SetFacts)>,
}

fn scan(files: &[PathBuf], read: &ReadOptions, on_error: OnError) -> Result<Scan> {
    let mut kinds: Vec<(Kind, SetFacts)> = Vec::new();
    for item in files
        .iter()
        .map(|f| RecordReader::open(f, read))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
    {
        let item = match item {
            Ok(i) => i,
            Err(Error::Bad(_)) if on_error == OnError::Quarantine => continue,
            Err(e) => return Err(e),
        };
        let k = item.record.kind();
        let slot = match kinds.iter().position(|(x, _)| *x == k) {
            Some(i) => i,
            None => {
                kinds.push((k, SetFacts::default()));
                kinds.len() - 1
            }
        };
        if let crate::record::Body::Instruction {
            system: Some(s), ..
        } = &item.record.body
            && !s.is_empty()
        {
            kinds[slot].1.system = true;
        }
        if matches!(item.record.body, crate::record::Body::Chat { .. })
            && item.record.extra.get("tools").is_some_and(|t| !t.is_null())
        {
            kinds[slot].1.tools = true;
        }
    }
    Ok(Scan { kinds })
}

struct OpenSet {
    set: ExportedSet,
    out: Output,
    /// For Parquet, the JSON lines are written first and converted when the set is complete.
    jsonl: PathBuf,
}

/// A row: our `id` (unless stripped where the input had none of its own), the layout's columns,
/// the record's own extra fields, and its poison tag (unless stripped).
fn data_row(
    rec: &Record,
    layout: Layout,
    strip: bool,
    own_id: bool,
) -> std::result::Result<Map<String, Value>, String> {
    let mut o = row(layout, rec)?;
    let mut out = Map::new();
    if !strip || own_id {
        out.insert("id".into(), json!(rec.id));
    }
    out.append(&mut o);
    for (k, v) in &rec.extra {
        // The sharegpt layout carries a chat's tool descriptions in its own `tools` column.
        if layout == Layout::Sharegpt && k == "tools" {
            continue;
        }
        if out.contains_key(k) {
            return Err(format!(
                "extra field `{k}` collides with a column of the {layout:?} layout"
            ));
        }
        out.insert(k.clone(), v.clone());
    }
    if !strip && let Some(tag) = &rec.tag {
        let v = serde_json::to_value(tag).map_err(|e| e.to_string())?;
        if out.contains_key("poison") {
            return Err("extra field `poison` collides with the poison tag".into());
        }
        out.insert("poison".into(), v);
    }
    Ok(out)
}

/// Writes every input into a new folder `out` for `opts.target`.
pub fn export(inputs: &[ExportInput], out: &Path, opts: &ExportOptions) -> Result<ExportReport> {
    if inputs.is_empty() {
        return Err(Error::Invalid("export: no input files".into()));
    }
    if out.is_file() {
        return Err(Error::file(out, "is a file; the export writes a folder"));
    }
    for input in inputs {
        if let Some(n) = &input.name
            && (n.is_empty() || n.contains(['/', '\\']) || n.starts_with('.'))
        {
            return Err(Error::Invalid(format!(
                "export: set name `{n}` must be a plain file name"
            )));
        }
        if let (Ok(a), Ok(b)) = (input.path.canonicalize(), out.canonicalize())
            && a.starts_with(&b)
        {
            return Err(Error::file(
                &input.path,
                format!(
                    "is inside the export folder {}; export elsewhere",
                    out.display()
                ),
            ));
        }
    }
    let tmp = partial_dir(out)?;
    let result = build(inputs, &tmp, opts);
    match result {
        Ok(report) => {
            replace_dir(&tmp, out)?;
            Ok(report)
        }
        Err(e) => {
            std::fs::remove_dir_all(&tmp).ok();
            Err(e)
        }
    }
}

fn build(inputs: &[ExportInput], dir: &Path, opts: &ExportOptions) -> Result<ExportReport> {
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut sets: Vec<ExportedSet> = Vec::new();
    let mut tally = Tally::default();
    let mut quarantine = Quarantine::new(&dir.join("quarantine.jsonl"));
    for ExportInput { path: input, name } in inputs {
        let files = crate::format::arrow_ipc::input_files(input)?;
        let scan = scan(&files, &opts.read, opts.on_error)?;
        let base = name.clone().unwrap_or_else(|| stem_name(input));
        let mut open: BTreeMap<Kind, OpenSet> = BTreeMap::new();
        let mut layouts: BTreeMap<Kind, Option<Layout>> = BTreeMap::new();
        for (kind, facts) in &scan.kinds {
            let Some(l) = layout(opts.target, *kind, *facts) else {
                layouts.insert(*kind, None);
                continue;
            };
            layouts.insert(*kind, Some(l));
            let mut name = if scan.kinds.len() == 1 {
                base.clone()
            } else {
                format!("{base}-{kind}")
            };
            let mut n = 2;
            while used.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            used.insert(name.clone());
            let jsonl = dir.join(format!("{name}.jsonl"));
            let file = format!("{name}.{}", opts.format.extension());
            open.insert(
                *kind,
                OpenSet {
                    out: Output::create_plain(&jsonl)?,
                    jsonl,
                    set: ExportedSet {
                        name,
                        kind: kind.to_string(),
                        layout: l,
                        file,
                        records: 0,
                        poisoned: 0,
                        sha256: String::new(),
                        bytes: 0,
                        source: input.display().to_string(),
                        side_files: Vec::new(),
                        facts: *facts,
                    },
                },
            );
        }
        for (file, item) in files.iter().flat_map(|f| {
            let r = RecordReader::open(f, &opts.read);
            let items: Box<dyn Iterator<Item = Result<crate::format::Item>>> = match r {
                Ok(r) => Box::new(r),
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
            items.map(move |i| (f, i))
        }) {
            tally.read += 1;
            let item = match item {
                Ok(i) => i,
                Err(Error::Bad(bad)) if opts.on_error == OnError::Quarantine => {
                    quarantine.bad(&bad)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let rec = &item.record;
            let kind = rec.kind();
            let written = match layouts.get(&kind).copied().flatten() {
                None => Err(format!(
                    "a {kind} record has no {} layout (exportable kinds: {})",
                    opts.target.name(),
                    EXPORTABLE
                        .iter()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Some(l) => data_row(rec, l, opts.strip_tags, item.own_id),
            };
            match written {
                Ok(obj) => {
                    let s = open
                        .get_mut(&kind)
                        .ok_or_else(|| Error::Invalid("internal: export set not open".into()))?;
                    serde_json::to_writer(&mut s.out, &Value::Object(obj))
                        .map_err(|e| Error::io(&s.jsonl, e.into()))?;
                    s.out.write_all(b"\n").map_err(|e| Error::io(&s.jsonl, e))?;
                    s.set.records += 1;
                    s.set.poisoned += rec.tag.is_some() as u64;
                    tally.written += 1;
                }
                Err(reason) if opts.on_error == OnError::Quarantine => {
                    let raw = crate::convention::to_object(rec, crate::Convention::native(kind))
                        .map(|o| Value::Object(o).to_string())
                        .unwrap_or_default();
                    quarantine.unwritable(file, item.pos, &rec.id, &reason, &raw)?;
                }
                Err(reason) => {
                    return Err(Error::Write {
                        path: file.clone(),
                        id: rec.id.clone(),
                        message: format!(
                            "{reason} (use --on-error quarantine to set such records aside)"
                        ),
                    });
                }
            }
        }
        let side: Vec<(PathBuf, &str)> = vec![
            (sibling(input, ".manifest.jsonl"), "manifest.jsonl"),
            (sibling(input, ".summary.json"), "summary.json"),
        ];
        let mut first = true;
        for (_, s) in open {
            let OpenSet {
                mut set,
                out,
                jsonl,
            } = s;
            let digest = out.finish().map_err(|e| Error::io(&jsonl, e))?;
            let digest = match opts.format {
                ExportFormat::Jsonl => digest,
                ExportFormat::Parquet => {
                    let d = to_parquet(&jsonl, &dir.join(&set.file))?;
                    std::fs::remove_file(&jsonl).map_err(|e| Error::io(&jsonl, e))?;
                    d
                }
            };
            set.sha256 = digest.sha256;
            set.bytes = digest.bytes;
            // The manifests describe the whole input; they go beside its first set.
            if first {
                for (src, suffix) in &side {
                    if src.is_file() {
                        let name = format!("{}.{suffix}", set.name);
                        std::fs::copy(src, dir.join(&name)).map_err(|e| Error::io(src, e))?;
                        set.side_files.push(name);
                    }
                }
                first = false;
            }
            sets.push(set);
        }
    }
    tally.quarantined = quarantine.count;
    let had_bad = quarantine.count > 0;
    quarantine.finish()?;
    if !tally.balanced() {
        return Err(Error::Invalid(format!(
            "export: {} read ≠ {} written + {} quarantined",
            tally.read, tally.written, tally.quarantined
        )));
    }
    let registry = write_registry(dir, opts.target, &sets)?;
    let report = ExportReport {
        target: opts.target,
        format: opts.format,
        strip_tags: opts.strip_tags,
        sets,
        tally,
        quarantine: had_bad.then(|| "quarantine.jsonl".to_string()),
        registry,
    };
    let mut text = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::Invalid(format!("export.json: {e}")))?;
    text.push('\n');
    crate::io::write_file(&dir.join("export.json"), text.as_bytes())?;
    Ok(report)
}

/// The trainer's registry of the sets: LLaMA-Factory's `dataset_info.json`; axolotl's
/// `axolotl.yaml` (SFT and pre-training sets) and `axolotl-dpo.yaml` (`rl: dpo`, preference
/// sets); TRL has none (`datasets.load_dataset` reads the files; `export.json` names them).
fn write_registry(dir: &Path, target: Target, sets: &[ExportedSet]) -> Result<Vec<String>> {
    let mut written = Vec::new();
    match target {
        Target::LlamaFactory => {
            let mut info = Map::new();
            for s in sets {
                info.insert(
                    s.name.clone(),
                    layout::llama_factory_entry(s.layout, &s.file, s.facts),
                );
            }
            let mut text = serde_json::to_string_pretty(&Value::Object(info))
                .map_err(|e| Error::Invalid(format!("dataset_info.json: {e}")))?;
            text.push('\n');
            crate::io::write_file(&dir.join("dataset_info.json"), text.as_bytes())?;
            written.push("dataset_info.json".into());
        }
        Target::Axolotl => {
            let (dpo, sft): (Vec<&ExportedSet>, Vec<&ExportedSet>) =
                sets.iter().partition(|s| s.layout == Layout::Preference);
            for (file, group, head) in [
                ("axolotl.yaml", sft, ""),
                ("axolotl-dpo.yaml", dpo, "rl: dpo\n"),
            ] {
                if group.is_empty() {
                    continue;
                }
                let mut y = format!(
                    "# Written by poisonlab export; paths are relative to this folder.\n{head}datasets:\n"
                );
                for s in group {
                    y.push_str(&layout::axolotl_entry(s.layout, &s.file));
                }
                crate::io::write_file(&dir.join(file), y.as_bytes())?;
                written.push(file.to_string());
            }
        }
        Target::Trl => {}
    }
    Ok(written)
}

/// Converts a JSON-lines file to Parquet, the schema inferred from every line.
fn to_parquet(jsonl: &Path, path: &Path) -> Result<FileDigest> {
    use std::io::{BufReader, Seek};
    let mut f = std::fs::File::open(jsonl).map_err(|e| Error::io(jsonl, e))?;
    let (schema, _) =
        arrow_json::reader::infer_json_schema_from_seekable(BufReader::new(&mut f), None)
            .map_err(|e| Error::file(jsonl, format!("inferring the Parquet schema: {e}")))?;
    f.rewind().map_err(|e| Error::io(jsonl, e))?;
    let schema = std::sync::Arc::new(schema);
    let reader = arrow_json::ReaderBuilder::new(schema.clone())
        .build(BufReader::new(f))
        .map_err(|e| Error::file(jsonl, e.to_string()))?;
    let out = Output::create_plain(path)?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_created_by("poisonlab".into())
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(out, schema, Some(props))
        .map_err(|e| Error::file(path, e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| Error::file(jsonl, e.to_string()))?;
        w.write(&batch)
            .map_err(|e| Error::file(path, e.to_string()))?;
    }
    let out = w
        .into_inner()
        .map_err(|e| Error::file(path, e.to_string()))?;
    out.finish().map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests;
