//! What a model directory holds, on arbitrary bytes: `config.json`, a chat template (with the
//! messages to render), `model.safetensors` for a tiny Llama. Loads or errors; never panics.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use poisonlab_model::chat_template::ChatTemplate;
use poisonlab_model::lm::ChatMessage;
use poisonlab_model::{CausalLm, ModelConfig, default_device};

const TINY: &str = r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8,
 "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
 "vocab_size": 16, "max_position_embeddings": 16, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
 "tie_word_embeddings": true}"#;

fn tiny() -> &'static ModelConfig {
    static C: OnceLock<ModelConfig> = OnceLock::new();
    C.get_or_init(|| {
        let v: serde_json::Value = serde_json::from_str(TINY).unwrap();
        ModelConfig::from_map("tiny".as_ref(), v.as_object().unwrap()).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    match sel % 3 {
        0 => {
            if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice(body) {
                drop(ModelConfig::from_map("config.json".as_ref(), &m));
            }
        }
        1 => {
            let Ok(text) = std::str::from_utf8(body) else { return };
            let (template, rest) = text.split_once('\u{0}').unwrap_or((text, "hi"));
            let messages: Vec<ChatMessage> = rest
                .split('\u{1}')
                .enumerate()
                .map(|(i, c)| ChatMessage {
                    role: ["system", "user", "assistant"][i % 3].into(),
                    content: c.into(),
                })
                .collect();
            drop(ChatTemplate::new(template, "<s>", "</s>").render(&messages));
        }
        _ => {
            let p = std::env::temp_dir().join(format!("poisonlab-fuzz-st-{}.safetensors", std::process::id()));
            std::fs::write(&p, body).unwrap();
            drop(CausalLm::load_safetensors(tiny(), &p, &default_device()));
        }
    }
});
