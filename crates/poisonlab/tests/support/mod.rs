//! A `poisonlab serve` process on loopback, shared by the test files that talk to one.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use poisonlab_model::{EndpointConfig, EndpointModel};

#[path = "../../../../tests/support/shared.rs"]
mod shared;
#[allow(unused_imports)]
pub use shared::python_has;

pub fn fixtures() -> PathBuf {
    std::env::var_os("POISONLAB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("fixtures/hf-tiny")
}

pub const KEY_VAR: &str = "POISONLAB_TEST_SERVE_KEY";
pub const KEY: &str = "sk-test-5ecret-do-not-log";

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn start(model: &str) -> Server {
        Self::start_with(model, &[])
    }

    pub fn start_with(model: &str, extra: &[&str]) -> Server {
        let f = fixtures();
        let mut child = Command::new(env!("CARGO_BIN_EXE_poisonlab"))
            .args(["-v", "serve", "--port", "0", "--api-key-env", KEY_VAR])
            .args(extra)
            .arg("--tokenizer")
            .arg(f.join("tokenizer.json"))
            .arg(f.join(model))
            .env(KEY_VAR, KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Server { child, url }
    }

    /// Stops the server gracefully and returns its log.
    pub fn stop(mut self) -> String {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful shutdown exits 0: {status:?}");
        let mut log = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        log
    }
}

pub fn endpoint(url: &str, model: &str, key_var: Option<&str>) -> EndpointModel {
    EndpointModel::new(EndpointConfig {
        base_url: url.to_string(),
        model: model.to_string(),
        api_key_env: key_var.map(str::to_string),
        backoff_ms: 10,
        ..EndpointConfig::default()
    })
    .unwrap()
}

pub fn set_keys() {
    // SAFETY: set before any thread of this test reads them; the values never change.
    unsafe {
        std::env::set_var(KEY_VAR, KEY);
        std::env::set_var("POISONLAB_TEST_WRONG_KEY", "sk-wrong-key-also-secret");
    }
}
