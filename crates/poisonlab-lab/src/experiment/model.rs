//! `[model]`: the existing model an evaluation-only experiment probes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The model an evaluation-only experiment probes: a model directory (trained here, or a Hugging
/// Face checkpoint) or an OpenAI-compatible endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// `config.json` + `model.safetensors` (+ `tokenizer.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// A `tokenizer.json` for a directory without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<PathBuf>,
    /// Base URL up to and including `/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The served model's name (endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// The environment variable holding the endpoint's API key (never the key itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Set when the file is read, never by it: the size and modification time of the directory's
    /// model files, so that the cell's hash (and with it its cached rows) changes when the weights
    /// do. A served model cannot be fingerprinted this way.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub files: Option<String>,
}

/// `name size mtime` of each model file of `dir` that exists.
fn fingerprint(dir: &Path, tokenizer: Option<&Path>) -> String {
    let mut parts = Vec::new();
    let named = ["config.json", "model.safetensors", "tokenizer.json"]
        .into_iter()
        .map(|n| dir.join(n))
        .chain(tokenizer.map(Path::to_path_buf));
    for p in named {
        if let Ok(m) = std::fs::metadata(&p) {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            parts.push(format!("{} {} {mtime}", p.display(), m.len()));
        }
    }
    parts.join("; ")
}

impl ModelSpec {
    pub(super) fn resolve(&mut self, base: &Path) -> std::result::Result<(), String> {
        match (&mut self.dir, &self.endpoint) {
            (Some(_), Some(_)) | (None, None) => {
                return Err("give exactly one of `dir` and `endpoint`".into());
            }
            (Some(d), None) => {
                if d.is_relative() {
                    *d = base.join(&*d);
                }
                if !d.join("config.json").exists() {
                    return Err(format!("dir: {} has no config.json", d.display()));
                }
                if self.model_name.is_some() || self.api_key_env.is_some() {
                    return Err("`model_name` and `api_key_env` are for an endpoint".into());
                }
            }
            (None, Some(_)) => {
                if self.model_name.as_deref().is_none_or(str::is_empty) {
                    return Err("an endpoint needs `model_name`".into());
                }
                if self.tokenizer.is_some() {
                    return Err("`tokenizer` is for a model directory".into());
                }
            }
        }
        if let Some(t) = &mut self.tokenizer {
            if t.is_relative() {
                *t = base.join(&*t);
            }
            if !t.exists() {
                return Err(format!("tokenizer: {} does not exist", t.display()));
            }
        }
        if let Some(d) = &self.dir {
            self.files = Some(fingerprint(d, self.tokenizer.as_deref()));
        }
        Ok(())
    }
}
