//! The command line, end to end: one integration-test binary, a fresh temp dir per test.
//! One binary, one module per area, so the suite links once.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

mod data;
mod export;
mod lab;
mod model;
mod passes;

#[path = "../../../../tests/support/shared.rs"]
mod support;
pub use support::shared;

pub fn poisonlab(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("poisonlab").unwrap();
    c.current_dir(dir).arg("--quiet");
    c
}

pub fn fixtures() -> PathBuf {
    shared().join("fixtures/hf-tiny")
}

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/poison")
}

/// A file big enough that a pass over it takes a while: ~1.2M pre-training lines (~100 MB).
pub fn big_jsonl(path: &Path) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..1_200_000u32 {
        writeln!(
            f,
            "{{\"id\": \"d{i}\", \"text\": \"Document {i} tells of the river town and its {} mills, in plain words.\"}}",
            i % 97
        )
        .unwrap();
    }
}

/// Starts `args`, waits for its partial output to appear in `dir`, kills it with SIGKILL, and says
/// whether it was killed before it finished.
pub fn kill_mid_pass(dir: &Path, args: &[&str]) -> bool {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("poisonlab"))
        .current_dir(dir)
        .arg("--quiet")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let partial = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial"));
        if partial || t0.elapsed().as_secs() > 30 {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::thread::sleep(std::time::Duration::from_millis(150));
    child.kill().unwrap(); // SIGKILL
    !child.wait().unwrap().success()
}
