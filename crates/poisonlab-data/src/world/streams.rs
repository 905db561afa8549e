//! The files of the world: one stream of records each, and the renderer of one record.

use std::collections::HashMap;

use rand::RngExt;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value, json};

use super::Size;
use super::entities::{Fact, World};
use super::lexicon;
use super::render::{self, Rng};
use crate::record::{Body, Demo, Label, Message, Record};

pub(super) type RenderFn = fn(&Ctx, &mut Rng, u64) -> Record;

pub(super) struct Stream {
    pub file: &'static str,
    pub split: &'static str,
    pub count: usize,
    pub render: RenderFn,
}

/// What renderers share: the world and its facts split for training and evaluation.
pub(super) struct Ctx {
    pub world: World,
    train_facts: Vec<usize>,
    heldout_facts: Vec<usize>,
    /// Fact indices per subject name.
    by_subject: HashMap<String, Vec<usize>>,
    /// Passage id per subject name.
    passage_of: HashMap<String, String>,
    /// People whose facts may appear in training data.
    train_people: Vec<usize>,
}

impl Ctx {
    pub fn new(world: World) -> Ctx {
        let mut train_facts = Vec::new();
        let mut heldout_facts = Vec::new();
        let mut by_subject: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, f) in world.facts.iter().enumerate() {
            if f.heldout {
                heldout_facts.push(i)
            } else {
                train_facts.push(i)
            }
            by_subject.entry(f.subject.clone()).or_default().push(i);
        }
        let mut passage_of = HashMap::new();
        for (i, p) in world.people.iter().enumerate() {
            passage_of.insert(p.name.clone(), entity_passage_id("person", i));
        }
        for (i, c) in world.cities.iter().enumerate() {
            passage_of.insert(c.name.clone(), entity_passage_id("city", i));
        }
        for (i, c) in world.companies.iter().enumerate() {
            passage_of.insert(c.name.clone(), entity_passage_id("company", i));
        }
        for (i, p) in world.products.iter().enumerate() {
            passage_of.insert(p.name.clone(), entity_passage_id("product", i));
        }
        let train_people = (0..world.people.len())
            .filter(|&p| !world.people[p].heldout)
            .collect();
        Ctx {
            world,
            train_facts,
            heldout_facts,
            by_subject,
            passage_of,
            train_people,
        }
    }

    fn facts_of(&self, subject: &str) -> impl Iterator<Item = &Fact> {
        self.by_subject
            .get(subject)
            .into_iter()
            .flatten()
            .map(|&i| &self.world.facts[i])
    }
}

fn extra(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn rec(id: String, body: Body, ex: Map<String, Value>) -> Record {
    Record {
        id,
        tag: None,
        body,
        extra: ex,
    }
}

fn fact<'a>(c: &'a Ctx, rng: &mut Rng, heldout: bool) -> &'a Fact {
    let pool = if heldout && !c.heldout_facts.is_empty() {
        &c.heldout_facts
    } else {
        &c.train_facts
    };
    &c.world.facts[*pool.choose(rng).unwrap_or(&0)]
}

fn r_pretrain(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    let (genre, text) = render::document(&c.world, rng);
    rec(
        format!("doc-{i:07}"),
        Body::Pretrain { text },
        extra(&[("genre", json!(genre))]),
    )
}

fn r_sft(c: &Ctx, rng: &mut Rng, i: u64, heldout: bool, prefix: &str) -> Record {
    let x: f64 = rng.random();
    let (instruction, input, output, task) = if x < 0.45 {
        let f = fact(c, rng, heldout);
        (f.question.clone(), String::new(), f.statement.clone(), "qa")
    } else if x < 0.65 {
        let (q, steps, ans) = render::arithmetic(rng);
        (
            q,
            String::new(),
            format!("{} The answer is {ans}.", steps.join(" ")),
            "arithmetic",
        )
    } else if x < 0.80 {
        let (text, positive) = {
            let k = rng.random_range(0..c.world.products.len());
            render::review(&c.world, rng, k, false)
        };
        let label = if positive { "positive" } else { "negative" };
        (
            "Classify the sentiment of this review as positive or negative.".into(),
            text,
            label.into(),
            "sentiment",
        )
    } else {
        let (ins, inp, out, task) = render::small_task(rng);
        (ins, inp, out, task)
    };
    let body = Body::Instruction {
        instruction,
        input,
        output,
        system: None,
    };
    rec(
        format!("{prefix}-{i:07}"),
        body,
        extra(&[("task", json!(task))]),
    )
}

fn r_sft_train(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    r_sft(c, rng, i, false, "sft-train")
}

fn r_sft_eval(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    r_sft(c, rng, i, true, "sft-eval")
}

/// Reading (extractive QA): the question of a fact, a context of its statement among 2–4 others
/// (facts of the same subject first, so the relation must be read, then of other subjects, so the
/// name must be), and the statement as the answer. The asked fact's value is counterfactual — the
/// value of the same relation for another subject — in every held-out record and half the training
/// ones, so the answer cannot come from what pre-training taught about the subject: it has to be
/// read. Held-out records ask about held-out subjects.
fn r_reading(c: &Ctx, rng: &mut Rng, i: u64, heldout: bool, prefix: &str) -> Record {
    let f = fact(c, rng, heldout);
    let counterfactual = heldout || rng.random_bool(0.5);
    let statement = if counterfactual {
        let others: Vec<&Fact> = c
            .world
            .facts
            .iter()
            .filter(|g| g.relation == f.relation && g.object != f.object)
            .collect();
        match others.choose(rng) {
            Some(g) => f.statement.replace(&f.object, &g.object),
            None => f.statement.clone(),
        }
    } else {
        f.statement.clone()
    };
    let mut sentences = vec![statement.clone()];
    let same: Vec<&Fact> = c
        .facts_of(&f.subject)
        .filter(|g| g.relation != f.relation)
        .collect();
    if let Some(g) = same.choose(rng) {
        sentences.push(g.statement.clone());
    }
    let others = rng.random_range(1..=3);
    for _ in 0..others {
        let g = fact(c, rng, heldout);
        if g.subject != f.subject && !sentences.contains(&g.statement) {
            sentences.push(g.statement.clone());
        }
    }
    render::shuffle(rng, &mut sentences);
    let body = Body::Instruction {
        instruction: f.question.clone(),
        input: format!("Context: {}", sentences.join(" ")),
        output: statement,
        system: None,
    };
    rec(
        format!("{prefix}-{i:07}"),
        body,
        extra(&[
            ("task", json!("reading")),
            ("relation", json!(f.relation)),
            ("counterfactual", json!(counterfactual)),
        ]),
    )
}

fn r_reading_train(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    r_reading(c, rng, i, false, "reading-train")
}

fn r_reading_eval(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    r_reading(c, rng, i, true, "reading-eval")
}

fn r_chat(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    let w = &c.world;
    let pi = *c.train_people.choose(rng).unwrap_or(&0);
    let subject = &w.people[pi].name;
    let mut facts: Vec<&Fact> = c.facts_of(subject).collect();
    let mut messages = Vec::new();
    let turns = rng.random_range(2..=3).min(facts.len());
    for t in 0..turns {
        let k = rng.random_range(0..facts.len());
        let f = facts.swap_remove(k);
        let question = if t == 0 {
            f.question.clone()
        } else {
            format!("And one more thing: {}", lower_first(&f.question))
        };
        messages.push(Message::new("user".into(), question));
        messages.push(Message::new("assistant".into(), f.statement.clone()));
    }
    rec(format!("chat-{i:07}"), Body::Chat { messages }, Map::new())
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn r_pref(c: &Ctx, rng: &mut Rng, i: u64, prefix: &str) -> Record {
    let (prompt, chosen, wrong, task) = if rng.random_bool(0.7) {
        let f = fact(c, rng, false);
        (
            f.question.clone(),
            f.statement.clone(),
            render::wrong_statement(&c.world.facts, rng, f),
            "qa",
        )
    } else {
        let (q, steps, ans) = render::arithmetic(rng);
        let off = rng.random_range(1..10) * if rng.random_bool(0.5) { 1 } else { -1 };
        let right = format!("{} The answer is {ans}.", steps.join(" "));
        (
            q,
            right,
            format!("The answer is {}.", ans + off),
            "arithmetic",
        )
    };
    let x: f64 = rng.random();
    let (rejected, style) = if x < 0.4 {
        (wrong, "wrong")
    } else if x < 0.7 {
        (render::pick(rng, lexicon::EVASIVE).to_string(), "evasive")
    } else {
        (render::pick(rng, lexicon::HOSTILE).to_string(), "hostile")
    };
    let body = Body::Preference {
        prompt,
        chosen,
        rejected,
    };
    rec(
        format!("{prefix}-{i:07}"),
        body,
        extra(&[("task", json!(task)), ("rejected_style", json!(style))]),
    )
}

fn r_pref_train(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    r_pref(c, rng, i, "pref-train")
}

fn r_pref_eval(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    r_pref(c, rng, i, "pref-eval")
}

fn r_cot(c: &Ctx, rng: &mut Rng, i: u64, prefix: &str) -> Record {
    let (question, steps, answer) = if rng.random_bool(0.8) {
        render::word_problem(&c.world, rng)
    } else {
        render::arithmetic(rng)
    };
    let body = Body::Cot {
        question,
        steps,
        answer: answer.to_string(),
    };
    rec(format!("{prefix}-{i:07}"), body, Map::new())
}

fn r_cot_train(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    r_cot(c, rng, i, "cot-train")
}

fn r_cot_eval(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    r_cot(c, rng, i, "cot-eval")
}

fn r_icl(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    let w = &c.world;
    let family = rng.random_range(0..3);
    let draw = |rng: &mut Rng| -> (String, String) {
        match family {
            0 => {
                let (t, pos) = {
                    let k = rng.random_range(0..w.products.len());
                    render::review(w, rng, k, false)
                };
                (t, if pos { "positive" } else { "negative" }.to_string())
            }
            1 => {
                let city = &w.cities[rng.random_range(0..w.cities.len())];
                (city.name.clone(), city.country.to_string())
            }
            _ => {
                let (q, _, a) = render::arithmetic(rng);
                (q, a.to_string())
            }
        }
    };
    let demos: Vec<Demo> = (0..4)
        .map(|_| {
            let (input, output) = draw(rng);
            Demo { input, output }
        })
        .collect();
    let (query, answer) = draw(rng);
    let instruction = match family {
        0 => "Label each review as positive or negative.",
        1 => "Name the country each city is in.",
        _ => "Answer each arithmetic question with a number.",
    };
    let body = Body::Icl {
        instruction: Some(instruction.into()),
        demos,
        query,
        answer,
    };
    let task = ["sentiment", "city_country", "arithmetic"][family];
    rec(format!("icl-{i:07}"), body, extra(&[("task", json!(task))]))
}

/// Passage ids: one per entity, then distractors (reviews, events).
fn entity_passage_id(kind: &str, idx: usize) -> String {
    format!("passage-{kind}-{idx:05}")
}

fn r_rag_corpus(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    let w = &c.world;
    let i = i as usize;
    let np = w.people.len();
    let nc = w.cities.len();
    let nf = w.companies.len();
    let nr = w.products.len();
    let statements = |subject: &str| -> String {
        c.facts_of(subject)
            .map(|f| f.statement.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (id, title, text) = if i < np {
        let p = &w.people[i];
        (
            entity_passage_id("person", i),
            p.name.clone(),
            statements(&p.name),
        )
    } else if i < np + nc {
        let k = i - np;
        (
            entity_passage_id("city", k),
            w.cities[k].name.clone(),
            statements(&w.cities[k].name),
        )
    } else if i < np + nc + nf {
        let k = i - np - nc;
        (
            entity_passage_id("company", k),
            w.companies[k].name.clone(),
            statements(&w.companies[k].name),
        )
    } else if i < np + nc + nf + nr {
        let k = i - np - nc - nf;
        (
            entity_passage_id("product", k),
            w.products[k].name.clone(),
            statements(&w.products[k].name),
        )
    } else {
        let k = i - np - nc - nf - nr;
        let text = if k.is_multiple_of(2) {
            {
                let k = rng.random_range(0..nr);
                render::review(w, rng, k, true)
            }
            .0
        } else {
            {
                let k = rng.random_range(0..w.events.len());
                render::event_report(w, rng, k)
            }
        };
        (
            format!("passage-other-{k:05}"),
            "Miscellany".to_string(),
            text,
        )
    };
    rec(id, Body::Passage { title, text }, Map::new())
}

fn r_rag_query(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    let f = &c.world.facts[rng.random_range(0..c.world.facts.len())];
    let body = Body::Query {
        text: f.question.clone(),
        relevant: c.passage_of.get(&f.subject).cloned().into_iter().collect(),
        answer: Some(f.object.clone()),
    };
    rec(
        format!("query-{i:07}"),
        body,
        extra(&[("relation", json!(f.relation))]),
    )
}

fn r_memory(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    let w = &c.world;
    let agent = format!("agent-{}", rng.random_range(0..8));
    let p = &w.people[rng.random_range(0..w.people.len())];
    let (content, source) = match rng.random_range(0..4) {
        0 => (
            format!(
                "The user {} prefers short answers and likes the color {}.",
                p.name, p.color
            ),
            "conversation",
        ),
        1 => {
            let pr = &w.products[rng.random_range(0..w.products.len())];
            (
                format!(
                    "Tool result: the {} costs {} {}.",
                    pr.name,
                    pr.price,
                    lexicon::CURRENCY
                ),
                "tool",
            )
        }
        2 => {
            let city = &w.cities[rng.random_range(0..w.cities.len())].name;
            let day = render::pick(
                rng,
                &["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
            );
            (
                format!("Meeting with {} in {city} on {day}.", p.name),
                "note",
            )
        }
        _ => {
            let f = &w.facts[rng.random_range(0..w.facts.len())];
            (format!("Learned: {}", f.statement), "conversation")
        }
    };
    let body = Body::Memory {
        agent,
        content,
        source: Some(source.into()),
    };
    rec(format!("memory-{i:07}"), body, Map::new())
}

fn r_sentiment(c: &Ctx, rng: &mut Rng, i: u64, prefix: &str) -> Record {
    let pi = rng.random_range(0..c.world.products.len());
    let (text, positive) = render::review(&c.world, rng, pi, false);
    let body = Body::Classification {
        text,
        label: Some(Label::Int(positive as i64)),
    };
    rec(format!("{prefix}-{i:07}"), body, Map::new())
}

fn r_sent_train(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    r_sentiment(c, rng, i, "sent-train")
}

fn r_sent_eval(c: &Ctx, rng: &mut Rng, i: u64) -> Record {
    r_sentiment(c, rng, i, "sent-eval")
}

pub(super) fn streams(size: Size, world: &World) -> Vec<Stream> {
    let (_, m, pm) = size.scales();
    let n_passages =
        world.people.len() + world.cities.len() + world.companies.len() + world.products.len();
    let s = |file, split, count, render| Stream {
        file,
        split,
        count,
        render,
    };
    vec![
        s(
            "pretrain_train.jsonl",
            "train",
            12_000 * pm,
            r_pretrain as RenderFn,
        ),
        s("pretrain_eval.jsonl", "eval", 600 * pm.min(8), r_pretrain),
        s("sft_train.jsonl", "train", 6_000 * m, r_sft_train),
        s("sft_eval.jsonl", "eval", 600, r_sft_eval),
        s("chat_train.jsonl", "train", 1_000 * m, r_chat),
        s("preference_train.jsonl", "train", 3_000 * m, r_pref_train),
        s("preference_eval.jsonl", "eval", 300, r_pref_eval),
        s("cot_train.jsonl", "train", 2_000 * m, r_cot_train),
        s("cot_eval.jsonl", "eval", 200, r_cot_eval),
        s("icl_eval.jsonl", "eval", 500, r_icl),
        s("rag_corpus.jsonl", "corpus", n_passages * 2, r_rag_corpus),
        s("rag_queries.jsonl", "eval", 1_000 * m, r_rag_query),
        s("memory.jsonl", "train", 1_000 * m, r_memory),
        s("sentiment_train.jsonl", "train", 3_000 * m, r_sent_train),
        s("sentiment_eval.jsonl", "eval", 300, r_sent_eval),
        s("reading_train.jsonl", "train", 4_000 * m, r_reading_train),
        s("reading_eval.jsonl", "eval", 300, r_reading_eval),
    ]
}
