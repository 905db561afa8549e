//! The bodies `poisonlab serve` accepts, on arbitrary bytes: a completions or chat request parses
//! or is refused; a parsed one goes through what the server does before it touches the model —
//! the prompt list, the stop strings, the chat template of its messages — without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poisonlab_model::lm::chat_prompt;
use poisonlab_model::openai::{ChatRequest, CompletionRequest};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    if sel % 2 == 0 {
        if let Ok(r) = serde_json::from_slice::<CompletionRequest>(body) {
            let _ = r.prompt.into_inputs();
            let _ = r.stop.map(|s| s.into_vec());
        }
    } else if let Ok(r) = serde_json::from_slice::<ChatRequest>(body) {
        let _ = chat_prompt(&r.messages);
        let _ = r.stop.map(|s| s.into_vec());
    }
});
