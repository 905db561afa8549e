//! A JSON array of objects, read one element at a time: memory stays flat in the file size, and
//! each element is located by the line it starts on.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::{Item, Objects, too_long};
use crate::error::{Error, Pos, Result};

#[derive(PartialEq)]
enum State {
    Start,
    /// After `[` or `,`: an element (or, after `[`, the closing `]`).
    Element {
        first: bool,
    },
    /// After an element: `,` or `]`.
    Separator,
    Done,
}

pub(crate) struct ArrayReader {
    reader: Box<dyn BufRead + Send>,
    path: PathBuf,
    max: usize,
    line: u64,
    state: State,
    buf: Vec<u8>,
}

impl ArrayReader {
    pub fn new(reader: Box<dyn BufRead + Send>, path: &Path, max: usize) -> Self {
        ArrayReader {
            reader,
            path: path.to_path_buf(),
            max,
            line: 1,
            state: State::Start,
            buf: Vec::new(),
        }
    }

    fn bump(&mut self) {
        self.reader.consume(1);
    }

    /// Skips whitespace (and a leading BOM), counting lines; returns the next byte, unconsumed.
    fn skip_ws(&mut self) -> Result<Option<u8>> {
        loop {
            let buf = self
                .reader
                .fill_buf()
                .map_err(|e| Error::io(&self.path, e))?;
            if buf.is_empty() {
                return Ok(None);
            }
            if self.state == State::Start && buf.starts_with(b"\xEF\xBB\xBF") {
                self.reader.consume(3);
                continue;
            }
            let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            self.line += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            let next = buf.get(n).copied();
            self.reader.consume(n);
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    fn syntax(&self, what: &str) -> Error {
        Error::file(&self.path, format!("line {}: {what}", self.line))
    }

    /// Reads one element into `buf`, tracking nesting and strings. Returns (complete, total bytes).
    fn read_element(&mut self) -> Result<(bool, usize)> {
        self.buf.clear();
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        let mut total = 0usize;
        loop {
            let chunk = self
                .reader
                .fill_buf()
                .map_err(|e| Error::io(&self.path, e))?;
            if chunk.is_empty() {
                return Ok((false, total));
            }
            let mut end = None;
            for (i, &b) in chunk.iter().enumerate() {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                    if b == b'\n' {
                        self.line += 1;
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth > 0 => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    // A scalar element ends at the next separator (left for the caller).
                    b',' | b']' if depth == 0 => {
                        end = Some(i);
                        break;
                    }
                    b'\n' => self.line += 1,
                    _ => {}
                }
            }
            let take = end.unwrap_or(chunk.len());
            let room = self.max.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&chunk[..take.min(room)]);
            total += take;
            self.reader.consume(take);
            if end.is_some() {
                return Ok((true, total));
            }
        }
    }

    pub fn next(&mut self, objects: &mut Objects) -> Option<Result<Item>> {
        loop {
            match self.state {
                State::Done => return None,
                State::Start => match self.skip_ws() {
                    Ok(Some(b'[')) => {
                        self.bump();
                        self.state = State::Element { first: true };
                    }
                    Ok(Some(_)) => {
                        self.state = State::Done;
                        return Some(Err(self.syntax("expected a JSON array starting with '['")));
                    }
                    Ok(None) => {
                        self.state = State::Done;
                        return Some(Err(Error::file(
                            &self.path,
                            "file is empty: no records to read",
                        )));
                    }
                    Err(e) => return Some(Err(e)),
                },
                State::Element { first } => match self.skip_ws() {
                    Ok(Some(b']')) if first => {
                        self.bump();
                        self.state = State::Done;
                    }
                    Ok(Some(_)) => {
                        let start = self.line;
                        let pos = Pos::Line(start);
                        let (complete, total) = match self.read_element() {
                            Ok(x) => x,
                            Err(e) => return Some(Err(e)),
                        };
                        self.state = State::Separator;
                        if !complete {
                            self.state = State::Done;
                            let reason = "truncated JSON: the file ends inside this element";
                            return Some(Err(objects.bad(pos, "(record)", reason, &self.buf)));
                        }
                        if total > self.max {
                            let reason = too_long(total, self.max);
                            return Some(Err(objects.bad(pos, "(record)", reason, &self.buf)));
                        }
                        return Some(objects.parse(&self.buf, pos));
                    }
                    Ok(None) => {
                        self.state = State::Done;
                        return Some(Err(
                            self.syntax("truncated JSON: the array is not closed with ']'")
                        ));
                    }
                    Err(e) => return Some(Err(e)),
                },
                State::Separator => match self.skip_ws() {
                    Ok(Some(b',')) => {
                        self.bump();
                        self.state = State::Element { first: false };
                    }
                    Ok(Some(b']')) => {
                        self.bump();
                        self.state = State::Done;
                        match self.skip_ws() {
                            Ok(None) => {}
                            Ok(Some(_)) => {
                                return Some(
                                    Err(self.syntax("unexpected content after the array")),
                                );
                            }
                            Err(e) => return Some(Err(e)),
                        }
                    }
                    Ok(Some(b)) => {
                        self.state = State::Done;
                        let what = format!(
                            "expected ',' or ']' between elements, found {:?}",
                            b as char
                        );
                        return Some(Err(self.syntax(&what)));
                    }
                    Ok(None) => {
                        self.state = State::Done;
                        return Some(Err(
                            self.syntax("truncated JSON: the array is not closed with ']'")
                        ));
                    }
                    Err(e) => return Some(Err(e)),
                },
            }
        }
    }
}
