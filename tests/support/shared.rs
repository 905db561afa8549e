//! Where `../shared` is for the tests of every crate (one copy, included with `#[path]`): beside
//! the checkout, as CI puts it; `POISONLAB_SHARED` overrides.

use std::path::{Path, PathBuf};

/// The shared data and fixtures directory; a missing one fails the test with its path.
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
