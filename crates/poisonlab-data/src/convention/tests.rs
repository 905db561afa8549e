//! Unit tests of the conventions.

use super::*;
use crate::record::Body;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn detects_each_convention() {
    let cases = [
        (
            json!({"instruction": "a", "input": "", "output": "b"}),
            Convention::Alpaca,
        ),
        (json!({"messages": []}), Convention::OpenaiChat),
        (json!({"conversations": []}), Convention::Sharegpt),
        (
            json!({"prompt": "p", "chosen": "c", "rejected": "r"}),
            Convention::Preference,
        ),
        (json!({"chosen": "c", "rejected": "r"}), Convention::HhRlhf),
        (
            json!({"demos": [], "query": "q", "answer": "a"}),
            Convention::Icl,
        ),
        (
            json!({"question": "q", "steps": [], "answer": "a"}),
            Convention::Cot,
        ),
        (
            json!({"_id": "d1", "title": "t", "text": "x"}),
            Convention::BeirCorpus,
        ),
        (json!({"_id": "q1", "text": "x"}), Convention::BeirQueries),
        (json!({"agent": "a", "content": "c"}), Convention::Memory),
        (json!({"sentence": "s", "label": 1}), Convention::Sst2),
        (
            json!({"text": "s", "label": "pos"}),
            Convention::Classification,
        ),
        (json!({"text": "s"}), Convention::Pretrain),
    ];
    for (v, want) in cases {
        assert_eq!(Convention::detect(&obj(v.clone())), Some(want), "{v}");
    }
    assert_eq!(Convention::detect(&obj(json!({"foo": 1}))), None);
}

#[test]
fn field_errors_name_the_field() {
    let e = from_object(
        obj(json!({"instruction": "a", "output": 3})),
        Convention::Alpaca,
        || "x".into(),
    )
    .unwrap_err();
    assert_eq!(e.field, "output");
    assert!(
        e.reason.contains("expected a string, found a number"),
        "{}",
        e.reason
    );

    let e = from_object(
        obj(json!({"messages": [{"role": "user"}]})),
        Convention::OpenaiChat,
        || "x".into(),
    )
    .unwrap_err();
    assert_eq!(e.field, "messages[0].content");
    assert_eq!(e.reason, "missing field");

    let e = from_object(
        obj(json!({"text": "t", "poison": {"role": "evil"}})),
        Convention::Pretrain,
        || "x".into(),
    )
    .unwrap_err();
    assert_eq!(e.field, "poison");
}

#[test]
fn hh_rlhf_splits_at_last_assistant_turn_and_round_trips() {
    let chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant: see you";
    let rejected = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant: go away";
    let rec = from_object(
        obj(json!({"chosen": chosen, "rejected": rejected})),
        Convention::HhRlhf,
        || "hh-0".into(),
    )
    .unwrap();
    let Body::Preference {
        prompt,
        chosen: c,
        rejected: r,
    } = &rec.body
    else {
        panic!()
    };
    assert_eq!(
        prompt,
        "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant:"
    );
    assert_eq!(c, " see you");
    assert_eq!(r, " go away");
    assert!(rec.extra.is_empty());
    let back = to_object(&rec, Convention::HhRlhf).unwrap();
    assert_eq!(back["chosen"], chosen);
    assert_eq!(back["rejected"], rejected);
}

#[test]
fn hh_rlhf_keeps_a_differing_rejected_prompt() {
    let v = json!({"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: b\n\nAssistant: y"});
    let rec = from_object(obj(v.clone()), Convention::HhRlhf, || "hh".into()).unwrap();
    assert_eq!(rec.extra[HH_REJECTED_PROMPT], "\n\nHuman: b\n\nAssistant:");
    let back = to_object(&rec, Convention::HhRlhf).unwrap();
    assert_eq!(back["chosen"], v["chosen"]);
    assert_eq!(back["rejected"], v["rejected"]);
}

#[test]
fn sharegpt_and_openai_chat_convert_both_ways() {
    let v = json!({"id": "c1", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]});
    let rec = from_object(obj(v.clone()), Convention::Sharegpt, || "x".into()).unwrap();
    let oa = to_object(&rec, Convention::OpenaiChat).unwrap();
    assert_eq!(oa["messages"][0]["role"], "user");
    assert_eq!(oa["messages"][1]["role"], "assistant");
    let back = to_object(&rec, Convention::Sharegpt).unwrap();
    assert_eq!(Value::Object(back), v);
    let alp = to_object(&rec, Convention::Alpaca).unwrap();
    assert_eq!(alp["instruction"], "q");
    assert_eq!(alp["output"], "a");
}

#[test]
fn extra_fields_survive_and_incompatible_kinds_are_refused() {
    let rec = from_object(
        obj(json!({"text": "t", "url": "u", "score": 0.5})),
        Convention::Pretrain,
        || "d-0".into(),
    )
    .unwrap();
    assert_eq!(rec.id, "d-0");
    let back = to_object(&rec, Convention::Pretrain).unwrap();
    assert_eq!(
        Value::Object(back),
        json!({"id": "d-0", "text": "t", "url": "u", "score": 0.5})
    );
    let err = to_object(&rec, Convention::Alpaca).unwrap_err();
    assert!(
        err.contains("pretrain record cannot be written as alpaca"),
        "{err}"
    );
}
