//! Parity with the reference implementation (transformers) on ../shared/fixtures/hf-tiny:
//! per-token log-probs, last logits, final hidden means and greedy tokens, to about 1e-5.

use std::path::{Path, PathBuf};

use poisonlab_model::lm::{FinishReason, GenerateOptions};
use poisonlab_model::{LocalModel, Tokenizer, default_device};
use serde_json::Value;

fn fixtures() -> PathBuf {
    let p = std::env::var_os("POISONLAB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("fixtures/hf-tiny");
    assert!(
        p.join("reference.json").is_file(),
        "fixtures not found at {}",
        p.display()
    );
    p
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference.json")).unwrap())
        .unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

fn check(name: &str, model: &LocalModel) {
    let r = reference();
    for (s, seq) in r[name]["sequences"].as_array().unwrap().iter().enumerate() {
        let tokens = ids(&seq["ids"]);
        let lp = model
            .token_logprobs(std::slice::from_ref(&tokens))
            .unwrap()
            .remove(0);
        close(
            &format!("{name} seq {s} token_logprobs"),
            &lp,
            &floats(&seq["token_logprobs"]),
            2e-5,
        );
        let last = model.last_logits(&tokens).unwrap();
        close(
            &format!("{name} seq {s} last logits"),
            &last[..8],
            &floats(&seq["last_logits_first8"]),
            2e-5,
        );
        let hidden = model.hidden_states_ids(&tokens).unwrap();
        assert_eq!(hidden.len(), model.config().num_layers() + 1);
        let means: Vec<f32> = hidden
            .last()
            .unwrap()
            .iter()
            .map(|h| h.iter().sum::<f32>() / h.len() as f32)
            .collect();
        close(
            &format!("{name} seq {s} final hidden mean"),
            &means,
            &floats(&seq["final_hidden_mean"]),
            2e-5,
        );
        let want = ids(&seq["greedy8"]);
        let opts = GenerateOptions {
            max_tokens: 8,
            ..GenerateOptions::default()
        };
        let (got, _, _) = model
            .generate_ids(&tokens, &opts, None, &mut |_| None)
            .unwrap();
        assert_eq!(got, want, "{name} seq {s} greedy tokens");
    }
    // Batched scoring (right padding) gives the same numbers as one sequence at a time.
    let seqs: Vec<Vec<u32>> = r[name]["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| ids(&s["ids"]))
        .collect();
    let batched = model.token_logprobs(&seqs).unwrap();
    for (s, seq) in r[name]["sequences"].as_array().unwrap().iter().enumerate() {
        close(
            &format!("{name} batched seq {s}"),
            &batched[s],
            &floats(&seq["token_logprobs"]),
            2e-5,
        );
    }
}

fn load(dir: &str) -> LocalModel {
    let f = fixtures();
    LocalModel::load(
        &f.join(dir),
        Some(&f.join("tokenizer.json")),
        &default_device(),
    )
    .unwrap()
}

#[test]
fn llama_matches_the_reference() {
    check("llama", &load("llama"));
}

#[test]
fn llama_v4_config_layout_gives_identical_outputs() {
    let f = fixtures();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        f.join("llama/config.v4.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    std::fs::copy(
        f.join("llama/model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let v4 = LocalModel::load(
        dir.path(),
        Some(&f.join("tokenizer.json")),
        &default_device(),
    )
    .unwrap();
    let v5 = load("llama");
    assert_eq!(v4.config(), v5.config());
    let seq = ids(&reference()["llama"]["sequences"][0]["ids"]);
    assert_eq!(v4.last_logits(&seq).unwrap(), v5.last_logits(&seq).unwrap());
    check("llama", &v4);
}

#[test]
fn qwen2_matches_the_reference() {
    check("qwen2", &load("qwen2"));
}

#[test]
fn gpt2_matches_the_reference() {
    check("gpt2", &load("gpt2"));
}

#[test]
fn tokenizer_matches_the_reference_ids() {
    let r = reference();
    let tok = Tokenizer::from_file(&fixtures().join("tokenizer.json")).unwrap();
    for (t, want) in r["tokenizer"]["texts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(r["tokenizer"]["ids"].as_array().unwrap())
    {
        let text = t.as_str().unwrap();
        assert_eq!(tok.encode(text).unwrap(), ids(want));
        assert_eq!(tok.decode(&ids(want)).unwrap(), text);
    }
}

#[test]
fn save_then_load_gives_identical_logits() {
    for name in ["llama", "qwen2", "gpt2"] {
        let m = load(name);
        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        let back = LocalModel::load(dir.path(), None, &default_device()).unwrap();
        assert_eq!(back.config(), m.config(), "{name}");
        let seq = ids(&reference()[name]["sequences"][0]["ids"]);
        assert_eq!(
            back.last_logits(&seq).unwrap(),
            m.last_logits(&seq).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn a_checkpoint_with_a_wrong_shape_or_stray_tensor_is_an_error() {
    let f = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(f.join("llama/config.json")).unwrap())
            .unwrap();
    cfg["intermediate_size"] = 96.into();
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(
        f.join("llama/model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let err = LocalModel::load(dir.path(), None, &default_device())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("mlp.gate_proj.weight") && err.contains("shape [128, 64], expected [96, 64]"),
        "{err}"
    );

    cfg["intermediate_size"] = 128.into();
    cfg["num_hidden_layers"] = 1.into();
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let err = LocalModel::load(dir.path(), None, &default_device())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("not used by the config") && err.contains("model.layers.1"),
        "{err}"
    );

    cfg["rope_parameters"]["rope_type"] = "yarn".into();
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let err = LocalModel::load(dir.path(), None, &default_device())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("config.json: field `rope_parameters.rope_type`"),
        "{err}"
    );
    let _ = FinishReason::Stop;
}

#[test]
fn a_checkpoint_chat_template_is_used_for_chat() {
    use poisonlab_model::lm::{ChatMessage, LanguageModel};
    let f = fixtures();
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(f.join("qwen2").join(file), dir.path().join(file)).unwrap();
    }
    std::fs::copy(f.join("tokenizer.json"), dir.path().join("tokenizer.json")).unwrap();
    let template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        serde_json::json!({"chat_template": template}).to_string(),
    )
    .unwrap();
    let m = LocalModel::load(dir.path(), None, &default_device()).unwrap();
    let msgs = [ChatMessage {
        role: "user".into(),
        content: "The fox".into(),
    }];
    let prompt = m.chat_prompt_for(&msgs).unwrap();
    assert_eq!(prompt, "user: The fox\nassistant:");
    let opts = GenerateOptions {
        max_tokens: 4,
        ..GenerateOptions::default()
    };
    assert_eq!(
        m.chat(&msgs, &opts).unwrap(),
        m.generate(&prompt, &opts).unwrap()
    );
}

/// Activation patching: a patch with a run's own states changes nothing; patching every position at
/// any hidden index with another run's states makes the rest of the network compute that run (so
/// every index gives the same scores); a bad patch is an error, not a silent no-op.
#[test]
fn patching_the_residual_stream() {
    use poisonlab_model::{LanguageModel, Patch};
    for arch in ["llama", "gpt2"] {
        let m = load(arch);
        let a: Vec<u32> = vec![5, 17, 33, 9, 2, 41, 8];
        let b: Vec<u32> = vec![5, 22, 33, 11, 2, 41, 8];
        let ha = m.hidden_states_of_ids(&a).unwrap();
        let hb = m.hidden_states_of_ids(&b).unwrap();
        let plain = m.score_ids(std::slice::from_ref(&b)).unwrap().remove(0);
        let all = |h: &Vec<Vec<Vec<f32>>>, index: usize| Patch {
            index,
            positions: (0..b.len()).collect(),
            values: h[index].clone(),
        };
        let own = m.score_ids_patched(&b, &all(&hb, 1)).unwrap();
        close(&format!("{arch} own states"), &own, &plain, 1e-5);
        let from_a: Vec<Vec<f32>> = (0..ha.len())
            .map(|j| m.score_ids_patched(&b, &all(&ha, j)).unwrap())
            .collect();
        for (j, s) in from_a.iter().enumerate() {
            close(&format!("{arch} index {j}"), s, &from_a[0], 1e-4);
        }
        let moved = plain
            .iter()
            .zip(&from_a[0])
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            moved > 1e-3,
            "{arch}: patching with another run changed nothing"
        );
        let bad = Patch {
            index: ha.len(),
            positions: vec![0],
            values: vec![ha[0][0].clone()],
        };
        assert!(m.score_ids_patched(&b, &bad).is_err());
        let bad = Patch {
            index: 0,
            positions: vec![b.len()],
            values: vec![ha[0][0].clone()],
        };
        assert!(m.score_ids_patched(&b, &bad).is_err());
    }
}

/// Continuations scored after a cached prefix give what scoring each whole sequence gives.
#[test]
fn continuations_after_a_cached_prefix_score_as_whole_sequences() {
    use poisonlab_model::LanguageModel;
    for arch in ["llama", "gpt2"] {
        let m = load(arch);
        let prefix: Vec<u32> = vec![5, 17, 33, 9];
        let conts: Vec<Vec<u32>> = vec![vec![2, 41, 8], vec![7], vec![11, 3], vec![]];
        let got = m.score_continuations(&prefix, &conts).unwrap();
        for (c, g) in conts.iter().zip(&got) {
            let whole: Vec<u32> = prefix.iter().chain(c).copied().collect();
            let want = m.score_ids(&[whole]).unwrap().remove(0);
            close(&format!("{arch} {c:?}"), g, &want[prefix.len() - 1..], 1e-4);
        }
    }
}
