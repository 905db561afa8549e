//! A checkpoint's own chat template (`chat_template` in `tokenizer_config.json`, Jinja), rendered
//! with minijinja as transformers' `apply_chat_template(..., add_generation_prompt=True)` does.

use std::path::Path;

use minijinja::{Environment, ErrorKind, context};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::lm::ChatMessage;

#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
}

/// A special token as tokenizer_config.json writes it: a string or `{"content": ...}`.
fn token(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

impl ChatTemplate {
    pub fn new(
        source: impl Into<String>,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> ChatTemplate {
        ChatTemplate {
            source: source.into(),
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        }
    }

    /// The template of `DIR/tokenizer_config.json`, if the file exists and has one.
    pub fn from_model_dir(dir: &Path) -> Result<Option<ChatTemplate>> {
        let path = dir.join("tokenizer_config.json");
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.clone(),
            field: "(file)".into(),
            message: format!("invalid JSON: {e}"),
        })?;
        let source = match v.get("chat_template") {
            Some(Value::String(s)) => s.clone(),
            // A list of named templates: the one called "default".
            Some(Value::Array(list)) => list
                .iter()
                .find(|t| t["name"] == "default")
                .and_then(|t| t["template"].as_str())
                .map(str::to_string)
                .ok_or_else(|| Error::Config {
                    path: path.clone(),
                    field: "chat_template".into(),
                    message: "no template named `default`".into(),
                })?,
            _ => return Ok(None),
        };
        Ok(Some(ChatTemplate::new(
            source,
            token(v.get("bos_token")),
            token(v.get("eos_token")),
        )))
    }

    /// The prompt for the assistant's next turn.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        let mut env = Environment::new();
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.render_str(
            &self.source,
            context! {
                messages => minijinja::Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => true,
                bos_token => self.bos_token.clone(),
                eos_token => self.eos_token.clone(),
            },
        )
        .map_err(|e| Error::Invalid(format!("chat template: {e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'].strip() + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn renders_chatml_like_transformers() {
        let t = ChatTemplate::new(CHATML, "", "<|im_end|>");
        let out = t
            .render(&[msg("system", "Be brief."), msg("user", " hi ")])
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn raise_exception_becomes_an_error() {
        let t = ChatTemplate::new(
            "{% if messages[0]['role'] != 'user' %}{{ raise_exception('must start with user') }}{% endif %}",
            "",
            "",
        );
        let e = t.render(&[msg("assistant", "x")]).unwrap_err().to_string();
        assert!(e.contains("must start with user"), "{e}");
    }

    #[test]
    fn reads_tokenizer_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tokenizer_config.json"),
            serde_json::json!({"chat_template": "{{ bos_token }}{{ messages[0]['content'] }}", "bos_token": {"content": "<s>"}}).to_string(),
        )
        .unwrap();
        let t = ChatTemplate::from_model_dir(dir.path()).unwrap().unwrap();
        assert_eq!(t.render(&[msg("user", "q")]).unwrap(), "<s>q");
        assert!(
            ChatTemplate::from_model_dir(&dir.path().join("none"))
                .unwrap()
                .is_none()
        );
    }
}
