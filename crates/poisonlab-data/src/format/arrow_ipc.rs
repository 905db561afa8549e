//! Arrow IPC files (`.arrow`): what Hugging Face `datasets` writes in a `save_to_disk` folder (the
//! streaming format) and what Arrow's file format holds (`ARROW1` magic). Each record batch becomes
//! JSON objects, one per row, read through the conventions like every other container.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;

use super::contain::contain;
use super::{Item, Objects, parse_object};
use crate::error::{Error, Pos, Result};

type Batches = Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send>;

pub(crate) struct ArrowReader {
    path: PathBuf,
    pub len: u64,
    batches: Option<Batches>,
    batch: usize,
    row: usize,
    pending: VecDeque<Vec<u8>>,
}

impl ArrowReader {
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Err(Error::file(path, "file is empty: no records to read"));
        }
        let mut magic = [0u8; 6];
        let is_file_format = file.read_exact(&mut magic).is_ok() && &magic == b"ARROW1";
        file.rewind().map_err(|e| Error::io(path, e))?;
        let opened: std::result::Result<std::result::Result<Batches, ArrowError>, String> =
            contain(|| {
                if is_file_format {
                    arrow_ipc::reader::FileReader::try_new(file, None)
                        .map(|r| Box::new(r) as Batches)
                } else {
                    arrow_ipc::reader::StreamReader::try_new(BufReader::new(file), None)
                        .map(|r| Box::new(r) as Batches)
                }
            });
        let batches = match opened {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                return Err(Error::file(
                    path,
                    format!("not a readable Arrow IPC file: {e}"),
                ));
            }
            Err(p) => {
                return Err(Error::file(
                    path,
                    format!("not a readable Arrow IPC file: the decoder failed ({p})"),
                ));
            }
        };
        Ok(ArrowReader {
            path: path.to_path_buf(),
            len,
            batches: Some(batches),
            batch: 0,
            row: 0,
            pending: VecDeque::new(),
        })
    }

    fn queue(&mut self, batch: &RecordBatch) -> Result<()> {
        super::parquet::batch_lines(batch, &mut self.pending)
            .map_err(|e| Error::file(&self.path, format!("record batch {}: {e}", self.batch)))
    }

    pub fn next(&mut self, objects: &mut Objects) -> Option<Result<Item>> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                let pos = Pos::Row {
                    group: self.batch.saturating_sub(1),
                    row: self.row,
                };
                self.row += 1;
                return Some(match parse_object(&line) {
                    Ok(obj) => objects.record(obj, pos, &line),
                    Err(reason) => Err(objects.bad(pos, "(record)", reason, &line)),
                });
            }
            let batches = self.batches.as_mut()?;
            let next = match contain(|| batches.next()) {
                Ok(n) => n.map(|r| r.map_err(|e| e.to_string())),
                Err(p) => Some(Err(format!("the decoder failed ({p})"))),
            };
            match next {
                None => {
                    self.batches = None;
                    return None;
                }
                Some(Ok(batch)) => {
                    self.batch += 1;
                    self.row = 0;
                    if let Err(e) = self.queue(&batch) {
                        self.batches = None;
                        return Some(Err(e));
                    }
                }
                Some(Err(e)) => {
                    // What follows a corrupt batch cannot be trusted to line up.
                    self.batches = None;
                    return Some(Err(Error::file(
                        &self.path,
                        format!("record batch {}: {e}", self.batch),
                    )));
                }
            }
        }
    }
}

/// The data files of an input: the file itself, the files a glob pattern matches (in name order),
/// or for a folder the files inside — a `datasets`
/// `save_to_disk` folder's Arrow files in the order its `state.json` lists them, otherwise every
/// data file in name order (shards). Names `dataset_dict.json` folders' splits, which must be
/// chosen.
pub fn input_files(path: &Path) -> Result<Vec<PathBuf>> {
    let text = path.to_string_lossy();
    if !path.exists() && text.contains(['*', '?', '[']) {
        // A quoted glob of shards (`'shards/*.jsonl.zst'`), expanded in name order.
        let paths = glob::glob(&text)
            .map_err(|e| Error::file(path, format!("not a valid glob pattern: {e}")))?;
        let mut out = Vec::new();
        for p in paths {
            out.push(p.map_err(|e| Error::io(e.path(), std::io::Error::other(e.to_string())))?);
        }
        out.retain(|p| p.is_file());
        out.sort();
        if out.is_empty() {
            return Err(Error::file(path, "the pattern matches no file"));
        }
        return Ok(out);
    }
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let state = path.join("state.json");
    if state.is_file() {
        let text = std::fs::read_to_string(&state).map_err(|e| Error::io(&state, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::file(&state, format!("line {}: {e}", e.line())))?;
        let files = v
            .get("_data_files")
            .and_then(|f| f.as_array())
            .ok_or_else(|| Error::file(&state, "field `_data_files`: missing or not a list"))?;
        let mut out = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let name = f.get("filename").and_then(|n| n.as_str()).ok_or_else(|| {
                Error::file(
                    &state,
                    format!("field `_data_files[{i}].filename`: missing or not a string"),
                )
            })?;
            if name.contains('/') || name.contains('\\') || name == ".." {
                return Err(Error::file(
                    &state,
                    format!(
                        "field `_data_files[{i}].filename`: `{name}` is not a file name in the folder"
                    ),
                ));
            }
            out.push(path.join(name));
        }
        if out.is_empty() {
            return Err(Error::file(&state, "field `_data_files`: lists no files"));
        }
        return Ok(out);
    }
    let dict = path.join("dataset_dict.json");
    if dict.is_file() {
        let text = std::fs::read_to_string(&dict).map_err(|e| Error::io(&dict, e))?;
        let splits: Vec<String> = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("splits").cloned())
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default();
        return Err(Error::file(
            path,
            format!(
                "is a DatasetDict with splits {}; give one split's folder (e.g. {})",
                splits.join(", "),
                path.join(splits.first().map_or("train", String::as_str))
                    .display()
            ),
        ));
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                && (super::Format::from_extension(p).is_some()
                    || crate::io::strip_compression(p)
                        .extension()
                        .is_some_and(|e| e == "arrow"))
                && !p.to_string_lossy().ends_with(".manifest.jsonl")
                && !p.to_string_lossy().ends_with(".quarantine.jsonl")
                && !p.to_string_lossy().ends_with(".summary.json")
                && !p.file_name().is_some_and(|n| {
                    [
                        "dataset_info.json",
                        "state.json",
                        "export.json",
                        "dataset_dict.json",
                    ]
                    .contains(&n.to_string_lossy().as_ref())
                })
        })
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(Error::file(
            path,
            "holds no data files (.jsonl, .json, .tsv, .txt, .parquet, .arrow)",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, RecordBatch, StringArray};

    use super::*;
    use crate::format::{ReadOptions, RecordReader};
    use crate::record::Body;

    fn batch(rows: &[(&str, &str, &str)]) -> RecordBatch {
        let col = |i: usize| -> ArrayRef {
            let v: Vec<&str> = rows.iter().map(|r| [r.0, r.1, r.2][i]).collect();
            Arc::new(StringArray::from(v))
        };
        RecordBatch::try_from_iter([
            ("instruction", col(0)),
            ("input", col(1)),
            ("output", col(2)),
        ])
        .unwrap()
    }

    /// A `save_to_disk` folder as `datasets` writes it: stream-format shards and a state.json.
    fn save_to_disk(dir: &Path, shards: &[&[(&str, &str, &str)]]) {
        std::fs::create_dir_all(dir).unwrap();
        let mut files = Vec::new();
        for (i, rows) in shards.iter().enumerate() {
            let name = format!("data-{i:05}-of-{:05}.arrow", shards.len());
            let b = batch(rows);
            let f = File::create(dir.join(&name)).unwrap();
            let mut w = arrow_ipc::writer::StreamWriter::try_new(f, &b.schema()).unwrap();
            w.write(&b).unwrap();
            w.finish().unwrap();
            files.push(serde_json::json!({ "filename": name }));
        }
        // Listed in reverse to show the order is state.json's, not the names'.
        files.reverse();
        std::fs::write(
            dir.join("state.json"),
            serde_json::json!({"_data_files": files, "_split": "train"}).to_string(),
        )
        .unwrap();
        std::fs::write(dir.join("dataset_info.json"), "{}").unwrap();
    }

    fn read(path: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for f in input_files(path).unwrap() {
            for item in RecordReader::open(&f, &ReadOptions::default()).unwrap() {
                match item.unwrap().record.body {
                    Body::Instruction { instruction, .. } => out.push(instruction),
                    b => panic!("{b:?}"),
                }
            }
        }
        out
    }

    #[test]
    fn a_save_to_disk_folder_reads_in_state_order() {
        let dir = tempfile::tempdir().unwrap();
        let hf = dir.path().join("hf");
        save_to_disk(
            &hf,
            &[&[("a", "", "1"), ("b", "x", "2")], &[("c", "", "3")]],
        );
        assert_eq!(read(&hf), ["c", "a", "b"]);
    }

    #[test]
    fn the_arrow_file_format_reads_too_and_a_folder_of_shards_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let shards = dir.path().join("shards");
        std::fs::create_dir_all(&shards).unwrap();
        let b = batch(&[("x", "", "1")]);
        let f = File::create(shards.join("b.arrow")).unwrap();
        let mut w = arrow_ipc::writer::FileWriter::try_new(f, &b.schema()).unwrap();
        w.write(&b).unwrap();
        w.finish().unwrap();
        std::fs::write(
            shards.join("a.jsonl"),
            "{\"instruction\": \"w\", \"input\": \"\", \"output\": \"0\"}\n",
        )
        .unwrap();
        std::fs::write(shards.join("a.jsonl.manifest.jsonl"), "{}\n").unwrap();
        assert_eq!(read(&shards), ["w", "x"]);
    }

    #[test]
    fn a_glob_of_shards_reads_in_name_order_and_an_empty_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        for (name, q) in [("b.jsonl", "y"), ("a.jsonl", "x"), ("c.txt", "not a shard")] {
            std::fs::write(
                dir.path().join(name),
                format!("{{\"instruction\": \"{q}\", \"input\": \"\", \"output\": \"0\"}}\n"),
            )
            .unwrap();
        }
        let pat = dir.path().join("*.jsonl");
        assert_eq!(read(&pat), ["x", "y"]);
        let none = dir.path().join("*.parquet");
        let e = input_files(&none).unwrap_err().to_string();
        assert!(e.contains("matches no file"), "{e}");
    }

    #[test]
    fn bad_folders_and_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("dd");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("dataset_dict.json"),
            r#"{"splits": ["train", "test"]}"#,
        )
        .unwrap();
        let e = input_files(&d).unwrap_err().to_string();
        assert!(
            e.contains("DatasetDict") && e.contains("train, test"),
            "{e}"
        );
        let bad = dir.path().join("bad.arrow");
        std::fs::write(&bad, b"not arrow at all").unwrap();
        let e = RecordReader::open(&bad, &ReadOptions::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("bad.arrow") && e.contains("Arrow IPC"), "{e}");
        let s = dir.path().join("s");
        std::fs::create_dir_all(&s).unwrap();
        std::fs::write(
            s.join("state.json"),
            r#"{"_data_files": [{"filename": "../x"}]}"#,
        )
        .unwrap();
        let e = input_files(&s).unwrap_err().to_string();
        assert!(e.contains("_data_files[0].filename"), "{e}");
    }
}
