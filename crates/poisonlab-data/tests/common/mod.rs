#![allow(dead_code)]

use std::path::Path;

use poisonlab_data::{Error, Item, ReadOptions, RecordReader};

#[path = "../../../../tests/support/shared.rs"]
mod support;
#[allow(unused_imports)]
pub use support::shared;

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
