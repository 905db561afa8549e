#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use poisonlab_data::{ReadOptions, Record, RecordReader};
use poisonlab_poison::Spec;

#[path = "../../../../tests/support/shared.rs"]
mod support;
#[allow(unused_imports)]
pub use support::shared;

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/poison")
}

/// The small synthetic world, generated once per test binary.
pub fn world() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        poisonlab_data::world::generate(
            1,
            poisonlab_data::world::Size::Small,
            d.path(),
            &mut |_, _| {},
        )
        .unwrap();
        d
    })
    .path()
}

pub fn spec(text: &str) -> Spec {
    Spec::parse(text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"))
}

pub fn records(path: &Path) -> Vec<Record> {
    RecordReader::open(path, &ReadOptions::default())
        .unwrap()
        .map(|i| i.unwrap().record)
        .collect()
}

pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

pub fn manifest(path: &Path) -> Vec<serde_json::Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
