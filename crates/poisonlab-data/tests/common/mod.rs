#![allow(dead_code)]

use std::path::{Path, PathBuf};

use poisonlab_data::{Error, Item, ReadOptions, RecordReader};

/// `../shared` beside the checkout (CI puts a copy there); POISONLAB_SHARED overrides.
pub fn shared() -> PathBuf {
    let p = std::env::var_os("POISONLAB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        p.join("data").is_dir(),
        "shared data not found at {} (set POISONLAB_SHARED)",
        p.display()
    );
    p
}

/// Reads every item, splitting good records from bad ones; any other error fails the test.
pub fn read_all(path: &Path, opts: &ReadOptions) -> (Vec<Item>, Vec<Error>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for item in
        RecordReader::open(path, opts).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
    {
        match item {
            Ok(i) => good.push(i),
            Err(e) if e.as_bad().is_some() => bad.push(e),
            Err(e) => panic!("fatal error: {e}"),
        }
    }
    (good, bad)
}
