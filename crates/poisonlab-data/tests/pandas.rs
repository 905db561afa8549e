//! Parquet we write is readable by pandas/pyarrow with the same content. Runs the check script
//! where python3 has pandas and pyarrow (CI installs them); elsewhere says so and passes, except
//! under CI, where a missing interpreter is a failure.

use std::process::Command;

use poisonlab_data::pass::{ConvertOptions, convert};
use poisonlab_data::world::{Size, generate};

#[test]
fn pandas_reads_our_parquet() {
    let has_pandas = Command::new("python3")
        .args(["-c", "import pandas, pyarrow"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !has_pandas {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install pandas and pyarrow (see .ci/run)"
        );
        eprintln!("SKIPPED: python3 with pandas and pyarrow is not installed here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    let manifest = generate(3, Size::Small, &world, &mut |_, _| {}).unwrap();
    let pairs = dir.path().join("pairs");
    std::fs::create_dir_all(&pairs).unwrap();
    for f in &manifest.files {
        let src = world.join(&f.file);
        std::fs::copy(&src, pairs.join(&f.file)).unwrap();
        let pq = pairs.join(f.file.replace(".jsonl", ".parquet"));
        convert(&src, &pq, &ConvertOptions::default(), &mut |_, _| {}).unwrap();
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/check_parquet.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(&pairs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        manifest.files.len(),
        "{stdout}"
    );
}
