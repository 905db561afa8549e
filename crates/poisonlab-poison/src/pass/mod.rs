//! The poison pass: two streaming passes over the input.
//!
//! 1. **Scan** (parallel for JSONL): parse every record, count the good ones, list the ordinals
//!    that the selection allows; bad records fail the pass or go to the quarantine.
//! 2. **Write**: choose exactly `budget` ordinals uniformly from the eligible ones (seeded), then
//!    stream the input again. For JSONL → JSONL, untouched records are copied as the input's raw
//!    bytes (byte-identical, checked by a test); only the chosen records are parsed, changed and
//!    re-serialised. Other formats go through the record reader/writer.
//!
//! Every decision about a record draws from a generator seeded by (spec seed, record ordinal), so
//! the output does not depend on the thread count or the order records are processed in.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use poisonlab_data::format::Format;
use poisonlab_data::io::Output;
use poisonlab_data::pass::quarantine_path;
use poisonlab_data::{Convention, Error as DataError, OnError, Quarantine, ReadOptions, Record};
use serde::Serialize;
use serde_json::{Value, json};

use crate::crawl::{Crawl, CrawlReport, Fate};
use crate::error::{Error, Result};
use crate::record_rng;
use crate::spec::{Mode, Spec, StageKind};
use crate::stage::Adapter;

mod choose;
mod scan;
mod test_split;
mod write;

use choose::{choose, rag_targets};

use scan::{scan_jsonl, scan_records};
use test_split::{write_rag_test, write_test};
use write::{Sink, write_jsonl, write_records};

/// Options of [`poison_file`].
#[derive(Debug, Clone, Default)]
pub struct PoisonOptions {
    pub read: ReadOptions,
    pub on_error: OnError,
    /// Bad input records; default `<output>.quarantine.jsonl`.
    pub quarantine: Option<PathBuf>,
    /// One line per touched record; default `<output>.manifest.jsonl`.
    pub manifest: Option<PathBuf>,
    /// Counts, hashes and the resolved spec; default `<output>.summary.json`.
    pub summary: Option<PathBuf>,
    /// Held-out records to trigger for the test split (not needed for rag: the targets are it).
    pub test_input: Option<PathBuf>,
    pub test_output: Option<PathBuf>,
    /// Write poisoned records without our additions: no `poison` tag, and no `id` where the input
    /// record had none. The manifest keeps both.
    pub strip_tags: bool,
}

/// Where each record went. `read = untouched + modified + dropped + quarantined` and
/// `written = untouched + modified + inserted` always hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PoisonTally {
    pub read: u64,
    pub quarantined: u64,
    pub untouched: u64,
    pub modified: u64,
    pub inserted: u64,
    /// Crawl simulation: records the integrity check removed.
    pub dropped: u64,
    pub written: u64,
    pub blank_lines: u64,
}

impl PoisonTally {
    pub fn balanced(&self) -> bool {
        self.read == self.untouched + self.modified + self.dropped + self.quarantined
            && self.written == self.untouched + self.modified + self.inserted
    }
}

impl std::fmt::Display for PoisonTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} read = {} untouched + {} modified + {} dropped + {} quarantined; {} written (incl. {} inserted)",
            self.read,
            self.untouched,
            self.modified,
            self.dropped,
            self.quarantined,
            self.written,
            self.inserted
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub path: PathBuf,
    pub records: u64,
    pub sha256: String,
}

/// What a poison pass did.
#[derive(Debug, Clone, Serialize)]
pub struct PoisonReport {
    pub spec: Value,
    pub input: PathBuf,
    pub output: PathBuf,
    pub format: String,
    pub convention: String,
    /// Whether the output records carry their tags (TSV and text cannot; see the manifest).
    pub tags_in_output: bool,
    pub tally: PoisonTally,
    /// Good input records (the base of a rate budget).
    pub records: u64,
    /// Records the selection allowed.
    pub eligible: u64,
    /// The resolved budget: how many records were chosen.
    pub budget: u64,
    /// Poisoned records in the output (modified + inserted, counter-examples not included).
    pub poisoned: u64,
    /// Counter-examples written (`[counter]`): modified or inserted too, tagged clean.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub counter_examples: u64,
    pub output_sha256: String,
    pub output_bytes: u64,
    pub manifest: PathBuf,
    pub manifest_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<TestReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crawl: Option<CrawlReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rag_targets: Option<Vec<String>>,
}

/// Default manifest path for an output: `<output>.manifest.jsonl`.
pub fn manifest_path(output: &Path) -> PathBuf {
    poisonlab_data::io::sibling(output, ".manifest.jsonl")
}

/// Default summary path for an output: `<output>.summary.json`.
pub fn summary_path(output: &Path) -> PathBuf {
    poisonlab_data::io::sibling(output, ".summary.json")
}

/// One line of the manifest.
#[derive(Serialize)]
struct ManifestLine<'a> {
    id: &'a str,
    action: &'a str,
    /// 0-based record index in the input (for modified/dropped and the donor of an insert).
    input_ordinal: u64,
    /// 0-based record index in the output (absent when dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    output_ordinal: Option<u64>,
    before: Option<&'a str>,
    after: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a poisonlab_data::PoisonTag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

struct Manifest {
    path: PathBuf,
    out: Output,
}

impl Manifest {
    fn line(&mut self, l: &ManifestLine<'_>) -> Result<()> {
        serde_json::to_writer(&mut self.out, l).map_err(|e| Error::io(&self.path, e.into()))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// Poisons `input` into `output` following `spec`; writes the manifest and the summary.
pub fn poison_file(
    spec: &Spec,
    input: &Path,
    output: &Path,
    opts: &PoisonOptions,
) -> Result<PoisonReport> {
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize())
        && a == b
    {
        return Err(DataError::file(
            output,
            "the output is the input file; write to another path",
        )
        .into());
    }
    let out_format = Format::from_extension(output).ok_or_else(|| {
        DataError::file(
            output,
            "cannot tell the output format from the extension; use .jsonl, .json, .tsv, .txt or .parquet",
        )
    })?;
    let in_format = match opts.read.format {
        Some(f) => f,
        None => poisonlab_data::format::detect(input)?,
    };
    let qpath = opts
        .quarantine
        .clone()
        .unwrap_or_else(|| quarantine_path(output));
    let mut quarantine = Quarantine::new(&qpath);

    // Pass 1.
    let fast = in_format == Format::Jsonl && out_format == Format::Jsonl;
    let conv = if fast {
        poisonlab_data::stats::first_convention(input, &opts.read)?
    } else {
        None
    };
    let scan = match conv {
        Some(c) => scan_jsonl(input, opts, c, spec, &mut quarantine)?,
        None => scan_records(input, opts, spec, &mut quarantine)?,
    };
    tracing::info!(
        records = scan.records,
        eligible = scan.eligible.len(),
        "scanned"
    );
    if scan.records == 0 {
        return Err(DataError::file(input, "no good records to poison").into());
    }
    let convention = scan
        .convention
        .or(opts.read.convention)
        .unwrap_or(Convention::native(spec.stage.kind.kinds()[0]));
    let (k, chosen) = choose(spec, &scan)?;
    let mut adapter = Adapter::new(spec);
    // Counter-examples: the counter trigger, no payload, tagged clean.
    let counter_spec = spec.counter.as_ref().map(|c| {
        let mut cs = spec.clone();
        cs.trigger = Some(c.trigger.clone());
        cs.payload = None;
        cs.role = poisonlab_data::Role::Clean;
        cs.counter = None;
        cs
    });
    let counter_adapter = counter_spec.as_ref().map(Adapter::new);
    if spec.stage.kind == StageKind::Rag {
        adapter.targets = rag_targets(spec, opts, k)?;
    }
    let crawl = spec
        .crawl
        .as_ref()
        .map(|c| Crawl::new(c, spec.seed, scan.records + scan.quarantined));

    // Pass 2.
    let mpath = opts
        .manifest
        .clone()
        .unwrap_or_else(|| manifest_path(output));
    let mut manifest = Manifest {
        out: Output::create(&mpath)?,
        path: mpath.clone(),
    };
    let mut tally = PoisonTally {
        read: scan.records + scan.quarantined,
        quarantined: scan.quarantined,
        blank_lines: scan.blank_lines,
        ..Default::default()
    };
    let mut crawl_log = match (&crawl, &spec.crawl) {
        (Some(_), Some(_)) => {
            let p = poisonlab_data::io::sibling(output, ".crawl.jsonl");
            Some((Output::create(&p)?, p))
        }
        _ => None,
    };
    let mut rag_passages: HashMap<String, Vec<String>> = HashMap::new();
    let (digest, counters) = {
        let mut ctx = WriteCtx {
            spec,
            adapter: &adapter,
            counter: counter_adapter.as_ref().map(|a| (k, a)),
            counters: 0,
            chosen: &chosen,
            next_chosen: 0,
            manifest: &mut manifest,
            tally: &mut tally,
            crawl: crawl.as_ref(),
            crawl_log: crawl_log.as_mut(),
            rag_passages: &mut rag_passages,
            out_ordinal: 0,
            strip_tags: opts.strip_tags,
        };
        let d = if fast && conv.is_some() {
            write_jsonl(input, output, opts, &scan, convention, &mut ctx)?
        } else {
            write_records(input, output, opts, &scan, convention, &mut ctx)?
        };
        (d, ctx.counters)
    };
    let mdigest = manifest
        .out
        .finish()
        .map_err(|e| Error::io(&manifest.path, e))?;
    let crawl_report = match (crawl, crawl_log) {
        (Some(c), Some((out, p))) => {
            out.finish().map_err(|e| Error::io(&p, e))?;
            Some(c.report(p))
        }
        _ => None,
    };
    let had_bad = quarantine.count > 0;
    quarantine.finish()?;
    if !tally.balanced() {
        return Err(Error::Invalid(format!(
            "record accounting does not add up: {tally}"
        )));
    }
    tracing::info!(output = %output.display(), %tally, "poison pass done");

    // The triggered test split.
    let mut rag_ids = None;
    let test = match &opts.test_output {
        None => None,
        Some(tp) => Some(if spec.stage.kind == StageKind::Rag {
            write_rag_test(spec, &adapter, &rag_passages, tp)?
        } else {
            let ti = opts.test_input.as_ref().ok_or_else(|| {
                Error::Invalid(
                    "--test-output needs --test-input: the held-out records to trigger".into(),
                )
            })?;
            write_test(spec, &adapter, ti, tp, opts)?
        }),
    };
    if spec.stage.kind == StageKind::Rag {
        rag_ids = Some(adapter.targets.iter().map(|t| t.id.clone()).collect());
    }
    let report = PoisonReport {
        spec: spec.resolved_json(),
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        format: out_format.name().to_string(),
        tags_in_output: !opts.strip_tags && !matches!(out_format, Format::Tsv | Format::Text),
        convention: convention.name().to_string(),
        records: scan.records,
        eligible: scan.eligible.len() as u64,
        budget: k,
        poisoned: tally.modified + tally.inserted - counters,
        counter_examples: counters,
        tally,
        output_sha256: digest.sha256.clone(),
        output_bytes: digest.bytes,
        manifest: mpath,
        manifest_sha256: mdigest.sha256,
        quarantine: had_bad.then_some(qpath),
        test,
        crawl: crawl_report,
        rag_targets: rag_ids,
    };
    let spath = opts.summary.clone().unwrap_or_else(|| summary_path(output));
    let text = serde_json::to_string_pretty(&report).map_err(|e| Error::io(&spath, e.into()))?;
    poisonlab_data::io::write_file(&spath, (text + "\n").as_bytes())?;
    Ok(report)
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

struct WriteCtx<'a> {
    spec: &'a Spec,
    adapter: &'a Adapter<'a>,
    /// The budget k and the counter-example adapter: a chosen index j >= k is a counter-example.
    counter: Option<(u64, &'a Adapter<'a>)>,
    /// Counter-examples written.
    counters: u64,
    /// (ordinal, poison index) sorted by ordinal; records are visited in order.
    chosen: &'a [(u64, u64)],
    next_chosen: usize,
    manifest: &'a mut Manifest,
    tally: &'a mut PoisonTally,
    crawl: Option<&'a Crawl>,
    crawl_log: Option<&'a mut (Output, PathBuf)>,
    rag_passages: &'a mut HashMap<String, Vec<String>>,
    out_ordinal: u64,
    strip_tags: bool,
}

/// What happens to one good input record.
enum Action {
    Keep,
    Modify(Record),
    Insert(Record),
    Drop(&'static str),
}

impl WriteCtx<'_> {
    /// Writes a changed or new record through `sink`, without our additions under `strip_tags`.
    fn put(&self, r: &Record, sink: &mut dyn Sink) -> Result<String> {
        if !self.strip_tags {
            return sink.put(r, false);
        }
        let mut shown = r.clone();
        shown.tag = None;
        let omit_id = !sink.own_id()?;
        sink.put(&shown, omit_id)
    }

    /// Decides the fate of good record `ordinal`; `rec` parses it on demand (only chosen records
    /// and crawl pages are parsed in the JSONL fast path).
    fn decide(
        &mut self,
        ordinal: u64,
        raw_hash: &dyn Fn() -> String,
        rec: &mut dyn FnMut() -> Result<Record>,
    ) -> Result<Action> {
        let j = match self.chosen.get(self.next_chosen) {
            Some(&(o, j)) if o == ordinal => {
                self.next_chosen += 1;
                Some(j)
            }
            _ => None,
        };
        if let Some(crawl) = self.crawl {
            let fate = crawl.fate(ordinal, j.is_some());
            if let Some((out, p)) = self.crawl_log.as_deref_mut() {
                let r = rec()?;
                let line = crawl.log_line(ordinal, &r.id, &raw_hash(), &fate);
                serde_json::to_writer(&mut *out, &line).map_err(|e| Error::io(p, e.into()))?;
                out.write_all(b"\n").map_err(|e| Error::io(p, e))?;
            }
            return Ok(match fate {
                Fate::Landed => {
                    let r = rec()?;
                    let mut rng = record_rng(self.spec.seed, "poison", ordinal);
                    let mut made = self.adapter.apply(&r, j.unwrap_or(0), &mut rng).record;
                    if let Some(t) = &mut made.tag {
                        t.meta.insert("crawl".into(), json!(crawl.attack_name()));
                    }
                    Action::Modify(made)
                }
                Fate::DroppedPoison => Action::Drop("integrity hash mismatch (poisoned content)"),
                Fate::DroppedBenign => Action::Drop("integrity hash mismatch (benign change)"),
                Fate::Clean | Fate::Missed | Fate::DriftKept => Action::Keep,
            });
        }
        let Some(j) = j else {
            return Ok(Action::Keep);
        };
        let r = rec()?;
        if let Some((k, counter)) = self.counter
            && j >= k
        {
            let mut rng = record_rng(self.spec.seed, "counter", ordinal);
            let mut made = counter.apply(&r, j - k, &mut rng).record;
            if let Some(t) = &mut made.tag {
                t.meta.insert("counter".into(), json!(true));
            }
            self.counters += 1;
            return Ok(match self.spec.stage.mode() {
                Mode::Modify => Action::Modify(made),
                Mode::Insert => Action::Insert(made),
            });
        }
        let mut rng = record_rng(self.spec.seed, "poison", ordinal);
        let made = self.adapter.apply(&r, j, &mut rng);
        if let Some(t) = made.target {
            self.rag_passages
                .entry(t)
                .or_default()
                .push(made.record.id.clone());
        }
        Ok(match self.spec.stage.mode() {
            Mode::Modify => Action::Modify(made.record),
            Mode::Insert => Action::Insert(made.record),
        })
    }

    /// Carries out `action` for input record `this` through `sink`: the output, the tally and the
    /// manifest line, the same way for every output path.
    fn apply(&mut self, this: u64, action: Action, sink: &mut dyn Sink) -> Result<()> {
        let (id, what, out, before, after, tag, reason) = match action {
            Action::Keep => {
                sink.keep()?;
                self.tally.untouched += 1;
                self.out_ordinal += 1;
                return Ok(());
            }
            Action::Modify(r) => {
                let before = sink.before()?;
                let after = self.put(&r, sink)?;
                self.tally.modified += 1;
                (
                    r.id,
                    "modified",
                    Some(self.out_ordinal),
                    Some(before),
                    Some(after),
                    r.tag,
                    None,
                )
            }
            Action::Insert(r) => {
                sink.keep()?;
                self.tally.untouched += 1;
                self.out_ordinal += 1;
                let after = self.put(&r, sink)?;
                self.tally.inserted += 1;
                (
                    r.id,
                    "inserted",
                    Some(self.out_ordinal),
                    None,
                    Some(after),
                    r.tag,
                    None,
                )
            }
            Action::Drop(reason) => {
                self.tally.dropped += 1;
                (
                    sink.id()?,
                    "dropped",
                    None,
                    Some(sink.before()?),
                    None,
                    None,
                    Some(reason),
                )
            }
        };
        if out.is_some() {
            self.out_ordinal += 1;
        }
        self.manifest.line(&ManifestLine {
            id: &id,
            action: what,
            input_ordinal: this,
            output_ordinal: out,
            before: before.as_deref(),
            after: after.as_deref(),
            tag: tag.as_ref(),
            reason,
        })
    }
}
