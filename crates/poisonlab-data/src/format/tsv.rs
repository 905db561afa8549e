//! Tab-separated values with a header row, GLUE style: no quoting, one record per line. Each row
//! becomes an object keyed by the header, so any convention with flat string fields can be a TSV.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Item, Objects, too_long};
use crate::error::{Error, Pos, Result};
use crate::io::{Line, Lines};

pub(crate) struct TsvReader {
    lines: Lines<Box<dyn BufRead + Send>>,
    path: PathBuf,
    header: Vec<String>,
    max: usize,
    pub blank_lines: u64,
}

impl TsvReader {
    pub fn new(reader: Box<dyn BufRead + Send>, path: &Path, max: usize) -> Result<Self> {
        let mut lines = Lines::new(reader, max);
        let header = match lines.next_line().map_err(|e| Error::io(path, e))? {
            None => return Err(Error::file(path, "file is empty: a TSV needs a header row")),
            Some(Line::TooLong { .. }) => {
                return Err(Error::file(path, "line 1: the header row is too long"));
            }
            Some(Line::Ok) => {
                let text = std::str::from_utf8(&lines.buf).map_err(|e| {
                    Error::file(
                        path,
                        format!("line 1: header is not UTF-8 (byte {})", e.valid_up_to()),
                    )
                })?;
                let cols: Vec<String> = text.split('\t').map(|c| c.trim().to_string()).collect();
                if cols.iter().any(String::is_empty) {
                    return Err(Error::file(
                        path,
                        format!("line 1: the header has an empty column name: {text:?}"),
                    ));
                }
                cols
            }
        };
        Ok(TsvReader {
            lines,
            path: path.to_path_buf(),
            header,
            max,
            blank_lines: 0,
        })
    }

    pub fn next(&mut self, objects: &mut Objects) -> Option<Result<Item>> {
        loop {
            let line = match self.lines.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => return None,
                Err(e) => return Some(Err(Error::io(&self.path, e))),
            };
            let pos = Pos::Line(self.lines.line);
            let buf = &self.lines.buf;
            if let Line::TooLong { total } = line {
                return Some(Err(objects.bad(
                    pos,
                    "(record)",
                    too_long(total, self.max),
                    buf,
                )));
            }
            if buf.is_empty() {
                self.blank_lines += 1;
                continue;
            }
            let text = match std::str::from_utf8(buf) {
                Ok(t) => t,
                Err(e) => {
                    let reason = format!("invalid UTF-8 at byte {}", e.valid_up_to());
                    return Some(Err(objects.bad(pos, "(record)", reason, buf)));
                }
            };
            let cells: Vec<&str> = text.split('\t').collect();
            if cells.len() != self.header.len() {
                let reason = format!(
                    "expected {} tab-separated columns ({}), found {}",
                    self.header.len(),
                    self.header.join(", "),
                    cells.len()
                );
                return Some(Err(objects.bad(pos, "(row)", reason, buf)));
            }
            let mut obj = Map::new();
            for (name, cell) in self.header.iter().zip(cells) {
                // Labels are integers in GLUE files; keep them integers so JSON output matches.
                let value = match (name.as_str(), cell.trim().parse::<i64>()) {
                    ("label", Ok(i)) => Value::from(i),
                    _ => Value::String(cell.to_string()),
                };
                obj.insert(name.clone(), value);
            }
            let raw = buf.clone();
            return Some(objects.record(obj, pos, &raw));
        }
    }
}
