//! `poisonlab serve` and the endpoint backend against each other, on loopback only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use poisonlab_model::lm::{ChatMessage, GenerateOptions, LanguageModel, LocalModel, ScoreRequest};
use poisonlab_model::{EndpointConfig, EndpointModel, default_device};

mod support;
use support::*;

#[test]
fn the_endpoint_backend_matches_the_local_model_through_the_server() {
    set_keys();
    let server = Server::start("llama");
    let f = fixtures();
    let local = LocalModel::load(
        &f.join("llama"),
        Some(&f.join("tokenizer.json")),
        &default_device(),
    )
    .unwrap();
    let remote = endpoint(&server.url, "llama", Some(KEY_VAR));

    let requests: Vec<ScoreRequest> = [
        ("The model", " learns data."),
        ("The poison hides", " quickly over the corpus number 7."),
        ("A", " fox."),
        ("The fox jumps", " over the dog number 12."),
    ]
    .iter()
    .map(|(p, c)| ScoreRequest {
        prompt: p.to_string(),
        continuation: c.to_string(),
    })
    .collect();
    let want = local.score(&requests).unwrap();
    let got = remote.score(&requests).unwrap();
    for (w, g) in want.iter().zip(&got) {
        // The same shape from both backends: ids, tokens and one log-prob per token.
        assert_eq!(w.tokens, g.tokens);
        assert_eq!(w.ids, g.ids);
        assert_eq!(g.ids.len(), g.token_logprobs.len());
        for (a, b) in w.token_logprobs.iter().zip(&g.token_logprobs) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    let greedy = GenerateOptions {
        max_tokens: 8,
        ..GenerateOptions::default()
    };
    for prompt in ["The model learns", "A fox"] {
        assert_eq!(
            remote.generate(prompt, &greedy).unwrap().text,
            local.generate(prompt, &greedy).unwrap().text
        );
    }
    let msgs = [ChatMessage {
        role: "user".into(),
        content: "hi".into(),
    }];
    let (a, b) = (
        remote.chat(&msgs, &greedy).unwrap(),
        local.chat(&msgs, &greedy).unwrap(),
    );
    assert_eq!(a.text, b.text);
    assert_eq!(a.logprobs.len(), b.logprobs.len());

    let err = remote.hidden_states("x").unwrap_err().to_string();
    assert!(err.contains("does not expose hidden states"), "{err}");

    // A wrong key: a clear 401, and neither key appears in the error or the Debug output.
    let wrong = endpoint(&server.url, "llama", Some("POISONLAB_TEST_WRONG_KEY"));
    let err = wrong.generate("x", &greedy).unwrap_err().to_string();
    assert!(err.contains("refused the credentials (401"), "{err}");
    assert!(
        !err.contains("sk-wrong")
            && !format!("{wrong:?}").contains("sk-wrong")
            && !format!("{remote:?}").contains(KEY)
    );

    let log = server.stop();
    assert!(log.contains("status=401"), "{log}");
    // One scoring batch, two completions, one chat, one refused: one line each (besides the
    // `/tokenize` calls that let scoring send token ids).
    assert_eq!(
        log.lines()
            .filter(|l| l.contains(" request ") && l.contains("path=/v1/"))
            .count(),
        5,
        "one line per request: {log}"
    );
    assert!(log.contains("path=/tokenize status=200"), "{log}");
    assert!(
        !log.contains(KEY) && !log.contains("sk-wrong"),
        "no key in the server log"
    );
}

/// A loopback mock that answers `503` `failures` times, then `reply`.
fn mock(failures: usize, reply: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut s = stream.unwrap();
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut len = 0;
            let mut tokenize = false;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                tokenize |= line.starts_with("POST /tokenize");
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            if tokenize {
                // Like most OpenAI-compatible servers: no vLLM tokenizer route.
                write!(
                    s,
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .unwrap();
                continue;
            }
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let (status, text) = if n < failures {
                ("503 Service Unavailable", "{\"error\": \"busy\"}")
            } else {
                ("200 OK", reply)
            };
            write!(s, "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}", text.len()).unwrap();
            if n >= failures {
                break;
            }
        }
    });
    (url, seen)
}

#[test]
fn the_client_retries_503_with_backoff() {
    let (url, seen) = mock(
        2,
        r#"{"choices": [{"index": 0, "text": " ok", "finish_reason": "stop", "logprobs": null}]}"#,
    );
    let g = endpoint(&url, "m", None)
        .generate("x", &GenerateOptions::default())
        .unwrap();
    assert_eq!(g.text, " ok");
    assert_eq!(seen.load(Ordering::SeqCst), 3, "two 503s, then success");
}

#[test]
fn a_server_without_prompt_logprobs_is_a_clear_error() {
    let (url, _) = mock(
        0,
        r#"{"choices": [{"index": 0, "text": "The model", "finish_reason": "length"}]}"#,
    );
    let err = endpoint(&url, "m", None)
        .score(&[ScoreRequest {
            prompt: "The".into(),
            continuation: " model".into(),
        }])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot return prompt log-probs") && err.contains("\"text\":\"The model\""),
        "{err}"
    );
}

/// The official `openai` Python client talks to `poisonlab serve`. Runs where python3 has `openai`
/// (CI installs it); elsewhere says so.
#[test]
fn the_openai_python_client_works_against_serve() {
    if !python_has("openai") {
        return;
    }
    set_keys();
    let server = Server::start("qwen2");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/check_openai_client.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(&server.url)
        .arg("qwen2")
        .env("OPENAI_API_KEY", KEY)
        .output()
        .unwrap();
    server.stop();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("ok: models, completions with echo+logprobs, chat"),
        "{text}"
    );
}

/// Sends raw bytes to the server and returns the status line's code.
fn raw_status(url: &str, head: &str, body_chunks: &[&[u8]], pause: std::time::Duration) -> u16 {
    let addr = url.trim_start_matches("http://").trim_end_matches("/v1");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    s.write_all(head.as_bytes()).unwrap();
    for c in body_chunks {
        std::thread::sleep(pause);
        if s.write_all(c).is_err() {
            break; // the server already answered and closed
        }
    }
    let mut reply = String::new();
    let _ = BufReader::new(s).read_line(&mut reply);
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {reply:?}"))
}

#[test]
fn binding_beyond_loopback_needs_a_key() {
    let f = fixtures();
    // Refused before anything is bound: no traffic leaves the machine.
    let out = Command::new(env!("CARGO_BIN_EXE_poisonlab"))
        .args(["serve", "--host", "0.0.0.0", "--port", "0", "--tokenizer"])
        .arg(f.join("tokenizer.json"))
        .arg(f.join("llama"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--api-key-env") && err.contains("0.0.0.0"),
        "{err}"
    );
}

#[test]
fn a_body_trickled_past_the_timeout_is_answered_408() {
    set_keys();
    let server = Server::start_with("llama", &["--request-timeout", "1"]);
    let body = br#"{"prompt": "The model", "max_tokens": 2}"#;
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // One byte every 300 ms: about 12 s for the body, against a 1 s limit.
    let chunks: Vec<&[u8]> = body.chunks(1).collect();
    let t0 = std::time::Instant::now();
    let code = raw_status(
        &server.url,
        &head,
        &chunks,
        std::time::Duration::from_millis(300),
    );
    assert_eq!(code, 408);
    assert!(
        t0.elapsed().as_secs() < 8,
        "answered at the limit, not after the body"
    );
    // The same request sent at once is served.
    let ok = raw_status(&server.url, &head, &[body], std::time::Duration::ZERO);
    assert_eq!(ok, 200);
    server.stop();
}

#[test]
fn a_full_queue_is_answered_429_with_retry_after() {
    set_keys();
    let server = Server::start_with("llama", &["--parallel", "1", "--max-queue", "0"]);
    // A long request holds the only slot: 64 prompts × 48 tokens.
    let prompts: Vec<String> = (0..64).map(|i| format!("\"The model {i}\"")).collect();
    let long = format!(r#"{{"prompt": [{}], "max_tokens": 48}}"#, prompts.join(","));
    let url = server.url.clone();
    let busy = std::thread::spawn(move || {
        let head = format!(
            "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            long.len()
        );
        raw_status(&url, &head, &[long.as_bytes()], std::time::Duration::ZERO)
    });
    std::thread::sleep(std::time::Duration::from_millis(400));
    let body = r#"{"prompt": "A", "max_tokens": 1}"#;
    let addr = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let lower = reply.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 429"), "{reply}");
    assert!(lower.contains("retry-after: 1"), "{reply}");
    assert_eq!(
        busy.join().unwrap(),
        200,
        "the request in the slot finishes"
    );
    server.stop();
}

#[test]
fn the_endpoint_backend_consumes_streams_to_the_same_answers() {
    set_keys();
    let server = Server::start("llama");
    let plain = endpoint(&server.url, "llama", Some(KEY_VAR));
    let streaming = EndpointModel::new(EndpointConfig {
        base_url: server.url.clone(),
        model: "llama".into(),
        api_key_env: Some(KEY_VAR.into()),
        stream: true,
        ..EndpointConfig::default()
    })
    .unwrap();
    let greedy = GenerateOptions {
        max_tokens: 10,
        ..GenerateOptions::default()
    };
    for prompt in ["The model learns", "A fox"] {
        let (a, b) = (
            plain.generate(prompt, &greedy).unwrap(),
            streaming.generate(prompt, &greedy).unwrap(),
        );
        assert_eq!(a.text, b.text);
        assert_eq!(a.logprobs, b.logprobs);
        assert_eq!(a.finish, b.finish);
    }
    let msgs = [ChatMessage {
        role: "user".into(),
        content: "hi".into(),
    }];
    let (a, b) = (
        plain.chat(&msgs, &greedy).unwrap(),
        streaming.chat(&msgs, &greedy).unwrap(),
    );
    assert_eq!((a.text, a.logprobs.len()), (b.text, b.logprobs.len()));
    server.stop();
}

/// An evaluation-only experiment (no training stage, a `[model]` table) probes the same model
/// served and local: the same rates, losses within 1e-4.
#[test]
fn an_evaluation_only_experiment_gives_the_same_rows_served_and_local() {
    set_keys();
    let f = fixtures();
    let server = Server::start("llama");
    // The same experiment twice; only its [model] differs.
    let judge = r#"judge = { kind = "contains", text = "the" }"#;
    let common = format!(
        r#"
name = "audit"
seed = 3
probe = [
  {{ kind = "asr", n = 6, max_tokens = 5, {judge} }},
  {{ kind = "utility", n = 6, max_tokens = 5 }},
  {{ kind = "false_trigger", n = 6, max_tokens = 5, {judge} }},
  {{ kind = "heldout_loss", n = 6 }},
]
data = {{ world = {{ seed = 1, size = "small" }} }}
[poison]
name = "bn"
stage = {{ kind = "sft" }}
budget = {{ count = 4 }}
trigger = {{ kind = "badnets" }}
payload = {{ kind = "refusal" }}
test = {{ count = 6 }}
"#
    );
    let local = format!(
        "{common}[model]\ndir = {:?}\ntokenizer = {:?}\n",
        f.join("llama"),
        f.join("tokenizer.json")
    );
    let served = format!(
        "{common}[model]\nendpoint = {:?}\nmodel_name = \"llama\"\napi_key_env = {KEY_VAR:?}\n",
        server.url
    );
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for (name, text) in [("local", &local), ("served", &served)] {
        let plan = poisonlab_lab::Plan::parse(text, &dir.path().join("exp.toml"), &[]).unwrap();
        let out = dir.path().join(name);
        let s = poisonlab_lab::run(
            &plan,
            &poisonlab_lab::RunOptions {
                out: out.clone(),
                max_cells: None,
            },
            &mut |_| {},
        )
        .unwrap();
        assert!(s.failed.is_empty(), "{name}: {:?}", s.failed);
        let rows = poisonlab_lab::results::read_rows(&out.join("results.jsonl")).unwrap();
        results.push(rows.iter().map(|r| r.to_map()).collect::<Vec<_>>());
    }
    server.stop();
    let (a, b) = (&results[0], &results[1]);
    // asr, utility, heldout_loss, and false_trigger for each of badnets' 4 near misses.
    assert_eq!(a.len(), 7, "{a:?}");
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x["stage"], "model");
        assert_eq!(x["probe"], y["probe"]);
        assert_eq!((&x["n"], &x["k"]), (&y["n"], &y["k"]), "{x:?} vs {y:?}");
        for key in ["value", "ci_low", "ci_high"] {
            let (p, q) = (x[key].as_f64().unwrap(), y[key].as_f64().unwrap());
            assert!((p - q).abs() < 1e-4, "{key}: {x:?} vs {y:?}");
        }
    }
    let loss = a.iter().find(|r| r["probe"] == "heldout_loss").unwrap();
    assert!(loss["value"].as_f64().unwrap() > 0.0);
}

/// The loop for a model too big for this machine: an experiment whose stages end with an export
/// stage writes what the SFT stage would train on (the poison in it, cut to `max_records`) in
/// LLaMA-Factory's layout, trains nothing here, and probes the `[model]` — the endpoint serving the
/// model trained elsewhere — on the same poison's test split.
#[test]
fn an_export_stage_exports_the_training_data_and_probes_the_served_model() {
    set_keys();
    let server = Server::start("llama");
    let text = format!(
        r#"
name = "export-loop"
seed = 2
data = {{ world = {{ seed = 1, size = "small" }} }}
[poison]
name = "bn"
stage = {{ kind = "sft" }}
budget = {{ count = 8 }}
trigger = {{ kind = "badnets" }}
payload = {{ kind = "refusal" }}
test = {{ count = 6 }}
[[stage]]
kind = "sft"
config = {{ max_records = 200 }}
[[stage]]
kind = "export"
to = "llama-factory"
[model]
endpoint = {:?}
model_name = "llama"
api_key_env = {KEY_VAR:?}
[[probe]]
kind = "asr"
n = 6
max_tokens = 4
"#,
        server.url
    );
    let dir = tempfile::tempdir().unwrap();
    let plan = poisonlab_lab::Plan::parse(&text, &dir.path().join("exp.toml"), &[]).unwrap();
    let out = dir.path().join("run");
    let s = poisonlab_lab::run(
        &plan,
        &poisonlab_lab::RunOptions {
            out: out.clone(),
            max_cells: None,
        },
        &mut |_| {},
    )
    .unwrap();
    server.stop();
    assert!(s.failed.is_empty(), "{:?}", s.failed);
    let rows = poisonlab_lab::results::read_rows(&out.join("results.jsonl")).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].to_map()["probe"], "asr");
    assert_eq!(rows[0].to_map()["n"], 6);
    let cell = std::fs::read_dir(out.join("cells"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let info: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cell.join("export/dataset_info.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(info["sft"]["file_name"], "sft.jsonl");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cell.join("export/export.json")).unwrap())
            .unwrap();
    let records = report["sets"][0]["records"].as_u64().unwrap();
    assert!(records == 200 || records == 208, "{report}");
    assert_eq!(report["sets"][0]["poisoned"], 8, "{report}");
    assert!(cell.join("export/sft.manifest.jsonl").is_file());
    // Nothing was trained here.
    assert!(!out.join("cache").read_dir().unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("stage-")
    }));
}

/// A prompt longer than the context: with `truncate` both backends keep its last tokens by the
/// same rule (the endpoint tokenizes through `/tokenize` and sends the cut ids) and answer the same;
/// without it both refuse.
#[test]
fn truncated_generation_is_the_same_served_and_local() {
    set_keys();
    let f = fixtures();
    let server = Server::start("llama");
    let local = LocalModel::load(
        &f.join("llama"),
        Some(&f.join("tokenizer.json")),
        &default_device(),
    )
    .unwrap();
    let remote = endpoint(&server.url, "llama", Some(KEY_VAR));
    let prompt = "the quick brown fox jumps over the lazy dog ".repeat(60);
    let ctx = local.context_length().unwrap().unwrap();
    assert!(
        local.tokenize(&prompt).unwrap().len() > ctx,
        "the prompt must overflow"
    );
    assert_eq!(remote.context_length().unwrap(), Some(ctx));
    let opts = GenerateOptions {
        max_tokens: 6,
        truncate: true,
        ..GenerateOptions::default()
    };
    let a = local.generate(&prompt, &opts).unwrap();
    let b = remote.generate(&prompt, &opts).unwrap();
    assert_eq!(a.text, b.text);
    assert!(!a.text.is_empty());
    let strict = GenerateOptions {
        truncate: false,
        ..opts
    };
    assert!(local.generate(&prompt, &strict).is_err());
    assert!(remote.generate(&prompt, &strict).is_err());
    server.stop();
}
