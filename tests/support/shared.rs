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

/// Whether `python3` can import `modules` (comma-separated, as in an `import` line). Where it
/// cannot, a test that needs them says it is skipped — and under CI, which installs them
/// (`.ci/run`), that is a failure.
#[allow(dead_code)]
pub fn python_has(modules: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install the Python packages {modules} (see .ci/run)"
        );
        eprintln!("SKIPPED: python3 cannot import {modules} here");
    }
    ok
}
