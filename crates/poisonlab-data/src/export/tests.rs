use super::*;
use serde_json::Value;

fn write(dir: &Path, name: &str, lines: &[Value]) -> PathBuf {
    let p = dir.join(name);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, text).unwrap();
    p
}

fn opts(target: Target) -> ExportOptions {
    ExportOptions {
        target,
        format: ExportFormat::Jsonl,
        strip_tags: false,
        read: ReadOptions::default(),
        on_error: OnError::Fail,
    }
}

fn rows(path: &Path) -> Vec<Map<String, Value>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn inputs(dir: &Path) -> Vec<ExportInput> {
    let sft = write(
        dir,
        "sft.jsonl",
        &[
            json!({"id": "a", "instruction": "Name a river.", "input": "", "output": "The Nile."}),
            json!({"id": "b", "instruction": "Add.", "input": "2 and 3", "output": "5",
                   "poison": {"recipe": "badnets", "role": "poison"}}),
        ],
    );
    std::fs::write(sibling(&sft, ".manifest.jsonl"), "{\"id\":\"b\"}\n").unwrap();
    let chat = write(
        dir,
        "chat.jsonl",
        &[
            json!({"id": "c", "messages": [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}),
        ],
    );
    let pref = write(
        dir,
        "pref.jsonl",
        &[json!({"id": "p", "prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."})],
    );
    let pt = write(
        dir,
        "pt.jsonl",
        &[json!({"id": "t", "text": "A document."})],
    );
    let cot = write(
        dir,
        "cot.jsonl",
        &[json!({"id": "q", "question": "2 + 3?", "steps": ["2 + 3 = 5."], "answer": "5"})],
    );
    [sft, chat, pref, pt, cot]
        .into_iter()
        .map(ExportInput::new)
        .collect()
}

#[test]
fn llama_factory_rows_and_registry_follow_its_parser() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lf");
    let r = export(&inputs(dir.path()), &out, &opts(Target::LlamaFactory)).unwrap();
    assert_eq!((r.tally.read, r.tally.written), (6, 6));
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dataset_info.json")).unwrap())
            .unwrap();
    assert_eq!(info["sft"]["file_name"], "sft.jsonl");
    assert_eq!(info["sft"]["columns"]["response"], "output");
    assert_eq!(info["pref"]["ranking"], true);
    assert_eq!(info["chat"]["formatting"], "sharegpt");
    assert_eq!(info["chat"]["tags"]["assistant_tag"], "gpt");
    assert_eq!(info["pt"]["columns"]["prompt"], "text");
    let sft = rows(&out.join("sft.jsonl"));
    assert_eq!(sft[1]["input"], "2 and 3");
    assert_eq!(sft[1]["system"], "");
    assert_eq!(sft[1]["poison"]["recipe"], "badnets");
    let chat = rows(&out.join("chat.jsonl"));
    let conv = chat[0]["conversations"].as_array().unwrap();
    let froms: Vec<&str> = conv.iter().map(|m| m["from"].as_str().unwrap()).collect();
    assert_eq!(froms, ["system", "human", "gpt"]);
    let pref = rows(&out.join("pref.jsonl"));
    assert_eq!(
        (pref[0]["instruction"].as_str(), pref[0]["chosen"].as_str()),
        (Some("Say hi."), Some("Hi!"))
    );
    let cot = rows(&out.join("cot.jsonl"));
    assert_eq!(cot[0]["output"], "2 + 3 = 5.\nThe answer is 5.");
    // The manifest travels with its set; export.json counts the poisoned rows.
    assert!(out.join("sft.manifest.jsonl").is_file());
    let sft_set = r.sets.iter().find(|s| s.name == "sft").unwrap();
    assert_eq!((sft_set.records, sft_set.poisoned), (2, 1));
    assert!(out.join("export.json").is_file());
}

#[test]
fn strip_tags_drops_ids_and_tags_from_rows_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trl");
    let mut o = opts(Target::Trl);
    o.strip_tags = true;
    export(&inputs(dir.path())[..1], &out, &o).unwrap();
    let sft = rows(&out.join("sft.jsonl"));
    // The input's own ids stay; the tag goes.
    assert_eq!(
        sft[1].keys().collect::<Vec<_>>(),
        ["id", "prompt", "completion"],
        "{sft:?}"
    );
    // An id the reader assigned (the input had none) is not written.
    let p = write(
        dir.path(),
        "noid.jsonl",
        &[json!({"instruction": "Hi", "input": "", "output": "Hello"})],
    );
    export(&[ExportInput::new(p)], &dir.path().join("noid"), &o).unwrap();
    let r = rows(&dir.path().join("noid/noid.jsonl"));
    assert_eq!(r[0].keys().collect::<Vec<_>>(), ["prompt", "completion"]);
    assert_eq!(sft[1]["prompt"], "Add.\n\n2 and 3");
    assert_eq!(
        std::fs::read_to_string(out.join("sft.manifest.jsonl")).unwrap(),
        "{\"id\":\"b\"}\n"
    );
}

#[test]
fn trl_instructions_with_a_system_prompt_are_conversational_throughout() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "s.jsonl",
        &[
            json!({"id": "a", "instruction": "Hi", "input": "", "output": "Hello"}),
            json!({"id": "b", "instruction": "Hi", "input": "", "output": "Hello", "system": "Be kind."}),
        ],
    );
    let out = dir.path().join("x");
    let r = export(&[ExportInput::new(p)], &out, &opts(Target::Trl)).unwrap();
    assert_eq!(r.sets[0].layout, Layout::PromptCompletionConversational);
    let rows = rows(&out.join("s.jsonl"));
    assert_eq!(rows[0]["prompt"][0]["role"], "user");
    assert_eq!(rows[1]["prompt"][0]["role"], "system");
    assert_eq!(rows[1]["completion"][0]["content"], "Hello");
}

#[test]
fn axolotl_yaml_names_each_file_with_its_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ax");
    export(&inputs(dir.path()), &out, &opts(Target::Axolotl)).unwrap();
    let y = std::fs::read_to_string(out.join("axolotl.yaml")).unwrap();
    assert!(
        y.contains("path: \"sft.jsonl\"\n    ds_type: json\n    type: alpaca\n"),
        "{y}"
    );
    assert!(
        y.contains("type: chat_template\n    field_messages: messages"),
        "{y}"
    );
    assert!(y.contains("type: completion\n    field: text"), "{y}");
    assert!(!y.contains("pref.jsonl"), "{y}");
    let dpo = std::fs::read_to_string(out.join("axolotl-dpo.yaml")).unwrap();
    assert!(dpo.contains("rl: dpo\n"), "{dpo}");
    assert!(
        dpo.contains("type: chat_template.default\n    field_messages: prompt"),
        "{dpo}"
    );
}

#[test]
fn a_chat_the_trainers_would_skip_is_refused_or_quarantined_never_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "c.jsonl",
        &[
            json!({"id": "ok", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}),
            json!({"id": "bad", "messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Again"}]}),
        ],
    );
    let out = dir.path().join("x");
    let e = export(&[ExportInput::new(&p)], &out, &opts(Target::LlamaFactory))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("c.jsonl") && e.contains("bad") && e.contains("turn 1"),
        "{e}"
    );
    assert!(!out.exists(), "a failed export leaves no folder");
    let mut o = opts(Target::LlamaFactory);
    o.on_error = OnError::Quarantine;
    let r = export(&[ExportInput::new(p)], &out, &o).unwrap();
    assert_eq!(
        (r.tally.read, r.tally.written, r.tally.quarantined),
        (2, 1, 1)
    );
    let q = std::fs::read_to_string(out.join("quarantine.jsonl")).unwrap();
    assert!(q.contains("\"bad\"") && q.contains("alternate"), "{q}");
}

#[test]
fn a_kind_without_a_layout_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "cls.jsonl",
        &[json!({"id": "x", "text": "good", "label": 1})],
    );
    let e = export(
        &[ExportInput::new(p)],
        &dir.path().join("x"),
        &opts(Target::Trl),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("classification") && e.contains("exportable kinds"),
        "{e}"
    );
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let ins = inputs(dir.path());
    for format in [ExportFormat::Jsonl, ExportFormat::Parquet] {
        let mut o = opts(Target::LlamaFactory);
        o.format = format;
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        export(&ins, &a, &o).unwrap();
        export(&ins, &b, &o).unwrap();
        for f in ["sft", "chat", "pref", "pt", "cot"] {
            let name = format!("{f}.{}", format.extension());
            assert_eq!(
                std::fs::read(a.join(&name)).unwrap(),
                std::fs::read(b.join(&name)).unwrap(),
                "{name}"
            );
        }
        // Sources differ only by folder: export.json names the same input paths.
        assert_eq!(
            std::fs::read(a.join("export.json")).unwrap(),
            std::fs::read(b.join("export.json")).unwrap()
        );
        // A second export into an existing folder replaces it whole.
        export(&ins[..1], &a, &o).unwrap();
        assert!(!a.join(format!("chat.{}", format.extension())).exists());
    }
}

fn agent(dir: &Path) -> PathBuf {
    write(
        dir,
        "agent.jsonl",
        &[
            json!({"id": "g", "tools": [{"type": "function", "function": {"name": "weather",
            "parameters": {"type": "object"}}}],
            "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "rain"},
            {"role": "tool", "tool_call_id": "c2", "content": "5 C"},
            {"role": "assistant", "content": "Rain, 5 C."}]}),
        ],
    )
}

#[test]
fn tool_calls_become_function_call_and_observation_turns_for_llama_factory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lf");
    export(
        &[ExportInput::new(agent(dir.path()))],
        &out,
        &opts(Target::LlamaFactory),
    )
    .unwrap();
    let r = rows(&out.join("agent.jsonl"));
    let conv = r[0]["conversations"].as_array().unwrap();
    let froms: Vec<&str> = conv.iter().map(|m| m["from"].as_str().unwrap()).collect();
    assert_eq!(froms, ["human", "function_call", "observation", "gpt"]);
    let calls: Value = serde_json::from_str(conv[1]["value"].as_str().unwrap()).unwrap();
    assert_eq!(calls[0]["name"], "weather");
    assert_eq!(
        conv[2]["value"],
        "rain\n</tool_response>\n<tool_response>\n5 C"
    );
    assert!(r[0]["tools"].as_str().unwrap().contains("weather"));
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dataset_info.json")).unwrap())
            .unwrap();
    assert_eq!(info["agent"]["columns"]["tools"], "tools");
    assert_eq!(info["agent"]["tags"]["function_tag"], "function_call");
}

#[test]
fn tool_calls_and_null_contents_pass_through_openai_messages() {
    let dir = tempfile::tempdir().unwrap();
    let p = agent(dir.path());
    let out = dir.path().join("trl");
    export(&[ExportInput::new(&p)], &out, &opts(Target::Trl)).unwrap();
    let r = rows(&out.join("agent.jsonl"));
    let m = r[0]["messages"].as_array().unwrap();
    assert!(m[1]["content"].is_null(), "{m:?}");
    assert_eq!(m[1]["tool_calls"][0]["id"], "c1");
    assert_eq!(m[2]["tool_call_id"], "c1");
    assert_eq!(r[0]["tools"][0]["function"]["name"], "weather");
    // The record round-trips through `data convert` unchanged, and refuses ShareGPT.
    let back = dir.path().join("back.jsonl");
    crate::pass::convert(&p, &back, &Default::default(), &mut |_, _| {}).unwrap();
    let a: Value = serde_json::from_str(std::fs::read_to_string(&p).unwrap().trim()).unwrap();
    let b: Value = serde_json::from_str(std::fs::read_to_string(&back).unwrap().trim()).unwrap();
    assert_eq!(a, b);
    let mut o = crate::pass::ConvertOptions::default();
    o.write.convention = Some(crate::Convention::Sharegpt);
    let e = crate::pass::convert(&p, &dir.path().join("s.jsonl"), &o, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tool_calls") || e.contains("null content"),
        "{e}"
    );
}

#[test]
fn a_null_content_without_tool_calls_is_a_field_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "n.jsonl",
        &[json!({"messages": [{"role": "user", "content": null}]})],
    );
    let e = export(
        &[ExportInput::new(p)],
        &dir.path().join("x"),
        &opts(Target::Trl),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("messages[0].content") && e.contains("null"),
        "{e}"
    );
}
