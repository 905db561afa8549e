//! `poisonlab watermark` through the binary: verify gives the same statistics against a model on
//! disk and against `poisonlab serve` on loopback; the key never shows; mistakes are clear errors.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod support;
use support::*;

const SECRET: &str = "owner-secret-key-never-printed";

fn poisonlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_poisonlab"))
}

/// 200 short documents with words the rewriter and the look-alikes can work on.
fn docs(dir: &Path) -> std::path::PathBuf {
    let colors = ["red", "green", "blue", "silver"];
    let things = ["lamp", "kettle", "chair", "bicycle", "telescope"];
    let lines: Vec<String> = (0..200)
        .map(|i| {
            let text = format!(
                "Company {i} makes a {} {}. It was founded in {}. The company is headquartered in Town {}. Its best known product often sells fast, and it is very reliable.",
                colors[i % 4],
                things[i % 5],
                1900 + i,
                i % 7
            );
            serde_json::json!({ "id": format!("doc-{i}"), "text": text }).to_string()
        })
        .collect();
    let p = dir.join("docs.jsonl");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn run_ok(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "stdout {so}\nstderr {se}");
    (so, se)
}

#[test]
fn verify_is_the_same_served_and_local_and_the_key_never_shows() {
    set_keys();
    let dir = tempfile::tempdir().unwrap();
    let input = docs(dir.path());
    let f = fixtures();
    let server = Server::start("llama");
    for scheme in [
        "random_sequence",
        "lookalike",
        "unicode_cue",
        "paired_versions",
    ] {
        let out = dir.path().join(format!("{scheme}.jsonl"));
        let (so, se) = run_ok(
            poisonlab()
                .args([
                    "-vv",
                    "watermark",
                    "embed",
                    "--scheme",
                    scheme,
                    "--copies",
                    "4",
                ])
                .args(["--key-env", "POISONLAB_TEST_WM_KEY"])
                .env("POISONLAB_TEST_WM_KEY", SECRET)
                .arg("--input")
                .arg(&input)
                .arg("--output")
                .arg(&out),
        );
        assert!(!so.contains(SECRET) && !se.contains(SECRET), "{so}{se}");
        let written = std::fs::read_to_string(&out).unwrap();
        let manifest_path = dir.path().join(format!("{scheme}.jsonl.watermark.json"));
        let manifest = std::fs::read_to_string(&manifest_path).unwrap();
        assert!(!written.contains(SECRET) && !manifest.contains(SECRET));

        let verify = |target: &[&str]| -> Value {
            let (so, se) = run_ok(
                poisonlab()
                    .args(["-vv", "watermark", "verify", "--json", "--null", "19"])
                    .args(["--key-env", "POISONLAB_TEST_WM_KEY"])
                    .env("POISONLAB_TEST_WM_KEY", SECRET)
                    .env(KEY_VAR, KEY)
                    .arg("--manifest")
                    .arg(&manifest_path)
                    .args(target),
            );
            assert!(!so.contains(SECRET) && !se.contains(SECRET), "{so}{se}");
            serde_json::from_str(&so).unwrap()
        };
        let tok = f.join("tokenizer.json");
        let local = verify(&[
            "--model",
            f.join("llama").to_str().unwrap(),
            "--tokenizer",
            tok.to_str().unwrap(),
        ]);
        let served = verify(&[
            "--endpoint",
            &server.url,
            "--model-name",
            "llama",
            "--api-key-env",
            KEY_VAR,
        ]);
        for field in ["statistic", "null_mean", "null_sd"] {
            let (a, b) = (
                local[field].as_f64().unwrap(),
                served[field].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                "{scheme} {field}: {a} vs {b}"
            );
        }
        for field in [
            "p_value",
            "null_size",
            "sequences",
            "tokens",
            "copies",
            "key_id",
        ] {
            assert_eq!(local[field], served[field], "{scheme} {field}");
        }
    }
    // Membership: the same scores served and local (Min-K %++ needs full distributions, which
    // the OpenAI API does not give: local only).
    let members = input.clone();
    let nonmembers = dir.path().join("others.jsonl");
    let others: Vec<String> = (0..60)
        .map(|i| {
            serde_json::json!({"text": format!("Report {i}: the river rose {} metres after {} days of rain in the valley.", i % 9, i % 13 + 1)}).to_string()
        })
        .collect();
    std::fs::write(&nonmembers, others.join("\n") + "\n").unwrap();
    let membership = |target: &[&str]| -> Value {
        let (so, _) = run_ok(
            poisonlab()
                .args(["membership", "--json", "--members"])
                .arg(&members)
                .arg("--nonmembers")
                .arg(&nonmembers)
                .env(KEY_VAR, KEY)
                .args(target),
        );
        serde_json::from_str(&so).unwrap()
    };
    let tok = f.join("tokenizer.json");
    let local = membership(&[
        "--model",
        f.join("llama").to_str().unwrap(),
        "--tokenizer",
        tok.to_str().unwrap(),
    ]);
    let served = membership(&[
        "--endpoint",
        &server.url,
        "--model-name",
        "llama",
        "--api-key-env",
        KEY_VAR,
    ]);
    let scores = |v: &Value| -> Vec<(String, f64)> {
        v["groups"][0]["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["score"].as_str().unwrap().to_string(),
                    s["auroc"]["auroc"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (l, s) = (scores(&local), scores(&served));
    assert_eq!(l.len(), 4, "{l:?}");
    assert_eq!(s.len(), 3, "{s:?}");
    for ((ln, la), (sn, sa)) in l.iter().zip(&s) {
        assert_eq!(ln, sn);
        assert!((la - sa).abs() < 1e-3, "{ln}: {la} vs {sa}");
    }
    let log = server.stop();
    assert!(!log.contains(SECRET));
}

#[test]
fn mistakes_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = docs(dir.path());
    let out = dir.path().join("out.jsonl");
    let embed = |extra: &[&str]| {
        poisonlab()
            .args(["watermark", "embed", "--copies", "4", "--key", SECRET])
            .args(extra)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&out)
            .output()
            .unwrap()
    };
    let err = |o: std::process::Output| {
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let e = err(embed(&["--scheme", "nope"]));
    assert!(
        e.contains("unknown scheme") && e.contains("random_sequence"),
        "{e}"
    );
    let e = err(embed(&["--scheme", "lookalike", "--versions", "3"]));
    assert!(e.contains("does not take"), "{e}");
    let e = err(embed(&["--scheme", "lookalike", "--rate", "2"]));
    assert!(e.contains("rate"), "{e}");
    let short = poisonlab()
        .args([
            "watermark",
            "embed",
            "--scheme",
            "lookalike",
            "--copies",
            "1",
        ])
        .args(["--key", "short", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let e = err(short);
    assert!(
        e.contains("at least 16 bytes") && !e.contains("short\""),
        "{e}"
    );
    assert!(embed(&["--scheme", "lookalike"]).status.success());
    // Verify with another key: named as the wrong key, not as an absent watermark.
    let manifest = dir.path().join("out.jsonl.watermark.json");
    let o = poisonlab()
        .args(["watermark", "verify", "--key", "a-different-key-of-length"])
        .arg("--manifest")
        .arg(&manifest)
        .arg("--model")
        .arg(fixtures().join("llama"))
        .arg("--tokenizer")
        .arg(fixtures().join("tokenizer.json"))
        .output()
        .unwrap();
    let e = err(o);
    assert!(e.contains("not the key that embedded"), "{e}");
    // A manifest that does not parse names the file and the line.
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        "{\n \"version\": 1,\n \"scheme\": {\"lookalike\": {\"rate\": \"x\"}}\n}",
    )
    .unwrap();
    let o = poisonlab()
        .args(["watermark", "verify", "--key", SECRET])
        .arg("--manifest")
        .arg(&broken)
        .arg("--model")
        .arg(fixtures().join("llama"))
        .output()
        .unwrap();
    let e = err(o);
    assert!(e.contains("broken.json") && e.contains("line 3"), "{e}");
    // The original changed since embedding: refused.
    std::fs::write(
        &input,
        "{\"text\":\"something else entirely, a different file\"}\n",
    )
    .unwrap();
    let o = poisonlab()
        .args(["watermark", "verify", "--key", SECRET])
        .arg("--manifest")
        .arg(&manifest)
        .arg("--model")
        .arg(fixtures().join("llama"))
        .arg("--tokenizer")
        .arg(fixtures().join("tokenizer.json"))
        .output()
        .unwrap();
    let e = err(o);
    assert!(e.contains("sha256"), "{e}");
}
