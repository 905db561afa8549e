//! The write pass: every good input record visited in order, its fate carried out through a
//! [`Sink`] — raw lines copied byte for byte on the JSONL path, records through the record writer
//! on every other.

use std::io::Write;
use std::path::{Path, PathBuf};

use poisonlab_data::convention::{from_object, to_object};
use poisonlab_data::format::{Format, parse_object};
use poisonlab_data::io::{FileDigest, Line, Lines, Output, open_input};
use poisonlab_data::{
    BadRecord, Body, Convention, Error as DataError, Pos, Record, RecordReader, RecordWriter,
    WriteOptions,
};

use super::scan::Scan;
use super::{PoisonOptions, WriteCtx};
use crate::error::{Error, Result};
use crate::sha256_hex;

/// Where one input record's outcome goes: `keep` writes the original as it was, `put` writes a new
/// or changed record (without its id field with `omit_id`) and returns the SHA-256 of what was
/// written, `before` is the original's hash, `own_id` whether the input record had an id field.
pub(super) trait Sink {
    fn keep(&mut self) -> Result<()>;
    fn put(&mut self, rec: &Record, omit_id: bool) -> Result<String>;
    fn before(&mut self) -> Result<String>;
    fn id(&mut self) -> Result<String>;
    fn own_id(&mut self) -> Result<bool>;
}

fn serialize(rec: &Record, conv: Convention, path: &Path) -> Result<Vec<u8>> {
    serialize_with(rec, conv, path, false)
}

fn serialize_with(rec: &Record, conv: Convention, path: &Path, omit_id: bool) -> Result<Vec<u8>> {
    let mut obj = to_object(rec, conv).map_err(|m| DataError::Write {
        path: path.to_path_buf(),
        id: rec.id.clone(),
        message: m,
    })?;
    if omit_id {
        obj.shift_remove(conv.id_key());
    }
    serde_json::to_vec(&obj).map_err(|e| Error::io(path, e.into()))
}

pub(super) fn write_jsonl(
    input: &Path,
    output: &Path,
    opts: &PoisonOptions,
    scan: &Scan,
    conv: Convention,
    ctx: &mut WriteCtx<'_>,
) -> Result<FileDigest> {
    let stem = poisonlab_data::io::strip_compression(input)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "record".into());
    let src = open_input(input)?;
    let mut lines = Lines::new(src.reader, opts.read.max_record_bytes);
    let mut file = BackgroundWriter::new(Output::create(output)?, output);
    // Lines are staged in a large buffer so that the file (and its hash) sees big writes.
    let mut out: Vec<u8> = Vec::with_capacity(STAGE_BYTES + (1 << 16));
    let mut bad = scan.bad.iter().peekable();
    let mut ordinal = 0u64;
    while let Some(l) = lines.next_line().map_err(|e| Error::io(input, e))? {
        if out.len() >= STAGE_BYTES {
            let full = std::mem::replace(&mut out, Vec::with_capacity(STAGE_BYTES + (1 << 16)));
            file.send(full)?;
        }
        let raw: &[u8] = &lines.buf;
        if matches!(l, Line::Ok) && raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let this = ordinal;
        ordinal += 1;
        if bad.peek() == Some(&&this) {
            bad.next();
            continue;
        }
        let line_no = lines.line;
        let parse = || -> Result<Record> {
            let obj = parse_object(raw).map_err(|r| {
                DataError::from(BadRecord::new(
                    input,
                    Pos::Line(line_no),
                    "(record)",
                    r,
                    raw,
                ))
            })?;
            from_object(obj, conv, || format!("{stem}-{this}")).map_err(|fe| {
                DataError::from(BadRecord::new(
                    input,
                    Pos::Line(line_no),
                    fe.field,
                    fe.reason,
                    raw,
                ))
                .into()
            })
        };
        let mut cached: Option<Record> = None;
        let mut rec = || -> Result<Record> {
            if cached.is_none() {
                cached = Some(parse()?);
            }
            Ok(cached.clone().unwrap_or_else(|| {
                Record::new(
                    "",
                    Body::Pretrain {
                        text: String::new(),
                    },
                )
            }))
        };
        let hash = || sha256_hex(raw);
        let action = ctx.decide(this, &hash, &mut rec)?;
        struct LineSink<'a> {
            raw: &'a [u8],
            out: &'a mut Vec<u8>,
            conv: Convention,
            output: &'a Path,
            rec: &'a mut dyn FnMut() -> Result<Record>,
        }
        impl Sink for LineSink<'_> {
            fn keep(&mut self) -> Result<()> {
                self.out.extend_from_slice(self.raw);
                self.out.push(b'\n');
                Ok(())
            }
            fn put(&mut self, r: &Record, omit_id: bool) -> Result<String> {
                let bytes = serialize_with(r, self.conv, self.output, omit_id)?;
                self.out.extend_from_slice(&bytes);
                self.out.push(b'\n');
                Ok(sha256_hex(&bytes))
            }
            fn before(&mut self) -> Result<String> {
                Ok(sha256_hex(self.raw))
            }
            fn id(&mut self) -> Result<String> {
                Ok((self.rec)()?.id)
            }
            fn own_id(&mut self) -> Result<bool> {
                Ok(parse_object(self.raw)
                    .map(|o| o.get(self.conv.id_key()).is_some_and(|v| !v.is_null()))
                    .unwrap_or(false))
            }
        }
        ctx.apply(
            this,
            action,
            &mut LineSink {
                raw,
                out: &mut out,
                conv,
                output,
                rec: &mut rec,
            },
        )?;
    }
    file.send(out)?;
    ctx.tally.written = ctx.out_ordinal;
    file.finish()
}

/// Compresses, hashes and writes staged buffers on its own thread, so that splitting lines and
/// SHA-256 of the output overlap.
struct BackgroundWriter {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    handle: Option<std::thread::JoinHandle<std::io::Result<FileDigest>>>,
    path: PathBuf,
}

impl BackgroundWriter {
    fn new(mut out: Output, path: &Path) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let handle = std::thread::spawn(move || {
            for buf in rx {
                out.write_all(&buf)?;
            }
            out.finish()
        });
        BackgroundWriter {
            tx: Some(tx),
            handle: Some(handle),
            path: path.to_path_buf(),
        }
    }

    fn send(&mut self, buf: Vec<u8>) -> Result<()> {
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(buf).is_ok())
            .unwrap_or(false);
        if sent {
            Ok(())
        } else {
            // The writer thread stopped: its error says why.
            self.join().map(|_| ())
        }
    }

    fn join(&mut self) -> Result<FileDigest> {
        self.tx = None;
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(Ok(d))) => Ok(d),
            Some(Ok(Err(e))) => Err(Error::io(&self.path, e)),
            Some(Err(_)) => Err(Error::Invalid(format!(
                "{}: the writer thread panicked",
                self.path.display()
            ))),
            None => Err(Error::Invalid(format!(
                "{}: the writer already stopped",
                self.path.display()
            ))),
        }
    }

    fn finish(mut self) -> Result<FileDigest> {
        self.join()
    }
}

const STAGE_BYTES: usize = 8 << 20;

fn canonical(rec: &Record, conv: Convention, path: &Path) -> Result<String> {
    Ok(sha256_hex(&serialize(rec, conv, path)?))
}

pub(super) fn write_records(
    input: &Path,
    output: &Path,
    opts: &PoisonOptions,
    scan: &Scan,
    conv: Convention,
    ctx: &mut WriteCtx<'_>,
) -> Result<FileDigest> {
    let reader = RecordReader::open(input, &opts.read)?;
    let mut writer = RecordWriter::create(
        output,
        &WriteOptions {
            format: None,
            convention: Some(conv),
        },
    )?;
    let strip = matches!(writer.format(), Format::Tsv | Format::Text);
    let mut bad = scan.bad.iter().peekable();
    for (this, item) in reader.enumerate() {
        let this = this as u64;
        let item = match item {
            Ok(item) => item,
            Err(DataError::Bad(_)) if bad.peek() == Some(&&this) => {
                bad.next();
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let own_id = item.own_id;
        let record = item.record;
        let hash = || canonical(&record, conv, input).unwrap_or_default();
        let mut rec = || -> Result<Record> { Ok(record.clone()) };
        let action = ctx.decide(this, &hash, &mut rec)?;
        struct RecordSink<'a> {
            record: &'a Record,
            own_id: bool,
            /// `--strip-tags`: ids the reader assigned stay out of the output.
            omit_assigned: bool,
            writer: &'a mut RecordWriter,
            strip: bool,
            conv: Convention,
            input: &'a Path,
            output: &'a Path,
        }
        impl Sink for RecordSink<'_> {
            fn keep(&mut self) -> Result<()> {
                let omit = self.omit_assigned && !self.own_id;
                Ok(self.writer.write_with(self.record, omit)?)
            }
            fn put(&mut self, r: &Record, omit_id: bool) -> Result<String> {
                // TSV and plain text have no place for a tag: the manifest is the provenance there.
                let mut r = r.clone();
                if self.strip {
                    r.tag = None;
                }
                self.writer.write_with(&r, omit_id)?;
                canonical(&r, self.conv, self.output)
            }
            fn before(&mut self) -> Result<String> {
                canonical(self.record, self.conv, self.input)
            }
            fn id(&mut self) -> Result<String> {
                Ok(self.record.id.clone())
            }
            fn own_id(&mut self) -> Result<bool> {
                Ok(self.own_id)
            }
        }
        ctx.apply(
            this,
            action,
            &mut RecordSink {
                record: &record,
                own_id,
                omit_assigned: ctx.strip_tags,
                writer: &mut writer,
                strip,
                conv,
                input,
                output,
            },
        )?;
    }
    ctx.tally.written = ctx.out_ordinal;
    Ok(writer.finish()?)
}
