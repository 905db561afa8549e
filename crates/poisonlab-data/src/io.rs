//! Byte streams: files with transparent gzip/zstd, a progress counter, a hashing writer, and a
//! line splitter that survives BOMs, CRLF, invalid UTF-8 and lines too long to hold.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Compression of a file, from its magic bytes (reading) or its extension (writing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn from_extension(path: &Path) -> Compression {
        match path.extension().and_then(|e| e.to_str()) {
            Some("gz") => Compression::Gzip,
            Some("zst" | "zstd") => Compression::Zstd,
            _ => Compression::None,
        }
    }

    fn from_magic(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// The path without a compression extension: `a.jsonl.gz` → `a.jsonl`.
pub fn strip_compression(path: &Path) -> std::path::PathBuf {
    match Compression::from_extension(path) {
        Compression::None => path.to_path_buf(),
        _ => path.with_extension(""),
    }
}

/// Counts the (compressed) bytes read so far, for progress bars.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened input: a buffered, decompressed byte stream plus a counter of raw bytes consumed.
pub struct Input {
    pub reader: Box<dyn BufRead + Send>,
    pub compression: Compression,
    pub progress: Arc<AtomicU64>,
    /// Size on disk, for progress bars.
    pub len: u64,
}

pub const BUF_SIZE: usize = 1 << 20;

pub fn open_input(path: &Path) -> Result<Input> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if path.is_dir() {
        return Err(Error::file(path, "is a directory, not a data file"));
    }
    let progress = Arc::new(AtomicU64::new(0));
    let mut raw = BufReader::with_capacity(
        BUF_SIZE,
        Counting {
            inner: file,
            count: progress.clone(),
        },
    );
    let head = raw.fill_buf().map_err(|e| Error::io(path, e))?;
    let compression = Compression::from_magic(head);
    let reader: Box<dyn BufRead + Send> = match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUF_SIZE,
            flate2::bufread::MultiGzDecoder::new(raw),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            BUF_SIZE,
            zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| Error::io(path, e))?,
        )),
    };
    Ok(Input {
        reader,
        compression,
        progress,
        len,
    })
}

/// A writer that hashes and counts what reaches the file.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// (sha256 hex, bytes) of everything written.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        self.inner.flush()?;
        Ok((hex::encode(self.hasher.finalize()), self.bytes))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type FileSink = HashingWriter<io::BufWriter<File>>;

/// An output byte stream that compresses by extension and reports its hash when finished. It is
/// written under a temporary name beside the final one (`.<name>.<pid>.partial`) and renamed when
/// [`Output::finish`] succeeds, so a failed or killed pass never leaves a file under the final name
/// that looks complete; dropped unfinished, the temporary file is removed.
pub struct Output {
    enc: Option<Enc>,
    tmp: PathBuf,
    path: PathBuf,
}

enum Enc {
    Plain(FileSink),
    Gzip(flate2::write::GzEncoder<FileSink>),
    Zstd(zstd::stream::write::Encoder<'static, FileSink>),
}

/// Content hash and size of a finished output file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileDigest {
    pub sha256: String,
    pub bytes: u64,
}

/// `<path><suffix>` beside `path` (`out.jsonl` → `out.jsonl.manifest.jsonl`): the side files of
/// an output.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// The temporary name an output is written under until it is complete.
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

/// A fresh, empty directory beside `dir` to build it in (`.<name>.<pid>.partial`).
pub fn partial_dir(dir: &Path) -> Result<PathBuf> {
    let tmp = partial_path(dir);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    Ok(tmp)
}

/// Puts the directory built at `tmp` in place of `dir`. The old one (if any) is moved aside first
/// and removed after, so `dir` is never half-written: it is the old whole or the new whole.
pub fn replace_dir(tmp: &Path, dir: &Path) -> Result<()> {
    let old = dir.with_file_name(format!(
        ".{}.{}.old",
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let had = dir.exists();
    if had {
        std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::rename(tmp, dir).map_err(|e| Error::io(dir, e))?;
    if had {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

/// Writes a whole file atomically: to its partial name, then renamed.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut out = Output::create_plain(path)?;
    out.write_all(bytes).map_err(|e| Error::io(path, e))?;
    out.finish().map_err(|e| Error::io(path, e))?;
    Ok(())
}

impl Output {
    pub fn create(path: &Path) -> Result<Output> {
        Self::open(path, Compression::from_extension(path))
    }

    /// Like [`Output::create`], never compressed whatever the extension.
    pub fn create_plain(path: &Path) -> Result<Output> {
        Self::open(path, Compression::None)
    }

    fn open(path: &Path, compression: Compression) -> Result<Output> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        if path.is_dir() {
            return Err(Error::file(
                path,
                "is a directory; give a file path to write",
            ));
        }
        let tmp = partial_path(path);
        let file = File::create(&tmp).map_err(|e| Error::io(path, e))?;
        let sink = HashingWriter::new(io::BufWriter::with_capacity(BUF_SIZE, file));
        let enc = match compression {
            Compression::None => Enc::Plain(sink),
            // Fixed header fields (no mtime, no name) keep gzip output byte-identical across runs.
            Compression::Gzip => Enc::Gzip(flate2::write::GzEncoder::new(
                sink,
                flate2::Compression::default(),
            )),
            Compression::Zstd => Enc::Zstd(
                zstd::stream::write::Encoder::new(sink, 3).map_err(|e| Error::io(path, e))?,
            ),
        };
        Ok(Output {
            enc: Some(enc),
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Flushes, then moves the file to its final name.
    pub fn finish(mut self) -> io::Result<FileDigest> {
        let sink = match self.enc.take() {
            Some(Enc::Plain(s)) => s,
            Some(Enc::Gzip(g)) => g.finish()?,
            Some(Enc::Zstd(z)) => z.finish()?,
            None => return Err(io::Error::other("output already finished")),
        };
        let (sha256, bytes) = sink.finish()?;
        std::fs::rename(&self.tmp, &self.path)?;
        Ok(FileDigest { sha256, bytes })
    }

    fn enc(&mut self) -> io::Result<&mut Enc> {
        self.enc
            .as_mut()
            .ok_or_else(|| io::Error::other("output already finished"))
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if self.enc.is_some() {
            // Never finished: the pass failed; leave nothing that looks like an output.
            self.enc = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.enc()? {
            Enc::Plain(w) => w.write(buf),
            Enc::Gzip(w) => w.write(buf),
            Enc::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.enc()? {
            Enc::Plain(w) => w.flush(),
            Enc::Gzip(w) => w.flush(),
            Enc::Zstd(w) => w.flush(),
        }
    }
}

/// One physical line, as [`Lines::next_line`] returns it.
pub enum Line {
    /// The line's bytes are in [`Lines::buf`], without `\n`, `\r\n` or a leading BOM.
    Ok,
    /// The line was longer than the limit; its first bytes are in `buf`, the rest was skipped.
    TooLong { total: usize },
}

/// Splits a byte stream into lines without ever holding more than `max` bytes of one line.
pub struct Lines<R> {
    reader: R,
    pub buf: Vec<u8>,
    /// 1-based number of the line last returned.
    pub line: u64,
    max: usize,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R, max: usize) -> Self {
        Lines {
            reader,
            buf: Vec::new(),
            line: 0,
            max,
        }
    }

    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        self.buf.clear();
        let mut total = 0usize;
        let mut saw_any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                if !saw_any {
                    return Ok(None);
                }
                break;
            }
            saw_any = true;
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            let room = self.max.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&chunk[..take.min(room)]);
            total += take;
            self.reader.consume(if done { take + 1 } else { take });
            if done {
                break;
            }
        }
        self.line += 1;
        if self.line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
            self.buf.drain(..3);
            total -= 3;
        }
        if self.buf.last() == Some(&b'\r') && total <= self.max {
            self.buf.pop();
            total -= 1;
        }
        Ok(Some(if total > self.max {
            Line::TooLong { total }
        } else {
            Line::Ok
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, usize>> {
        let mut l = Lines::new(input, max);
        let mut out = Vec::new();
        while let Some(r) = l.next_line().unwrap() {
            out.push(match r {
                Line::Ok => Ok(l.buf.clone()),
                Line::TooLong { total } => Err(total),
            });
        }
        out
    }

    #[test]
    fn bom_crlf_and_missing_final_newline() {
        let got = lines(b"\xEF\xBB\xBFa\r\nb\n\nc", 100);
        assert_eq!(
            got,
            vec![
                Ok(b"a".to_vec()),
                Ok(b"b".to_vec()),
                Ok(vec![]),
                Ok(b"c".to_vec())
            ]
        );
    }

    #[test]
    fn long_lines_are_cut_and_reported_with_their_size() {
        let mut input = vec![b'x'; 1000];
        input.extend_from_slice(b"\nshort\n");
        let got = lines(&input, 10);
        assert_eq!(got, vec![Err(1000), Ok(b"short".to_vec())]);
    }

    #[test]
    fn strip_compression_keeps_the_directory() {
        assert_eq!(
            strip_compression(Path::new("d/a.jsonl.gz")),
            Path::new("d/a.jsonl")
        );
        assert_eq!(
            strip_compression(Path::new("d/a.jsonl")),
            Path::new("d/a.jsonl")
        );
    }
}
