//! The triggered test split of a spec: held-out records with the trigger and the response the
//! backdoor should give; for rag, the target queries with their poisoned passages.

use std::collections::HashMap;
use std::path::Path;

use poisonlab_data::{Body, Record, RecordReader, RecordWriter, WriteOptions};
use serde_json::json;

use super::{PoisonOptions, TestReport};
use crate::error::{Error, Result};
use crate::record_rng;
use crate::spec::{Selector, Spec};
use crate::stage::Adapter;

pub(super) fn write_test(
    spec: &Spec,
    adapter: &Adapter<'_>,
    input: &Path,
    output: &Path,
    opts: &PoisonOptions,
) -> Result<TestReport> {
    let sel = Selector::new(spec);
    let mut eligible = Vec::new();
    let mut conv = None;
    {
        let mut reader = RecordReader::open(input, &opts.read)?;
        for item in reader.by_ref() {
            let item = item?;
            if sel.eligible(&item.record) && crate::stage::adaptable(&item.record, spec) {
                eligible.push(item.record);
            }
        }
        conv = conv.or(reader.convention());
    }
    let n = spec
        .test
        .count
        .map(|c| c as usize)
        .unwrap_or(eligible.len());
    if n > eligible.len() {
        return Err(Error::Invalid(format!(
            "{}: test.count = {n} but only {} records are eligible",
            input.display(),
            eligible.len()
        )));
    }
    let mut rng = record_rng(spec.seed, "test-select", 0);
    let mut picks = rand::seq::index::sample(&mut rng, eligible.len(), n).into_vec();
    picks.sort_unstable();
    let mut writer = RecordWriter::create(
        output,
        &WriteOptions {
            format: None,
            convention: conv,
        },
    )?;
    for i in picks {
        let mut rng = record_rng(spec.seed, "test", i as u64);
        writer.write(&adapter.test_record(&eligible[i], &mut rng))?;
    }
    let d = writer.finish()?;
    Ok(TestReport {
        path: output.to_path_buf(),
        records: n as u64,
        sha256: d.sha256,
    })
}

pub(super) fn write_rag_test(
    spec: &Spec,
    adapter: &Adapter<'_>,
    passages: &HashMap<String, Vec<String>>,
    output: &Path,
) -> Result<TestReport> {
    let mut writer = RecordWriter::create(output, &WriteOptions::default())?;
    for (i, t) in adapter.targets.iter().enumerate() {
        let mut rng = record_rng(spec.seed, "test", i as u64);
        let applied = match &spec.trigger {
            Some(tr) => tr.apply(&t.text, &mut rng),
            None => crate::trigger::Applied::none(&t.text),
        };
        let trig = applied.inserted.join(" ");
        let ctx = crate::payload::Ctx::new(&applied.text, t.answer.as_deref().unwrap_or(""), &trig);
        let target = spec
            .payload
            .as_ref()
            .map(|p| p.respond(&ctx, &mut rng).text)
            .unwrap_or_default();
        let mut meta = serde_json::Map::new();
        meta.insert("split".into(), json!("test"));
        meta.insert("clean_id".into(), json!(t.id));
        meta.insert("stage".into(), json!("rag"));
        meta.insert("clean_answer".into(), json!(t.answer));
        meta.insert("clean_relevant".into(), json!(t.relevant));
        let rec = Record::new(
            format!("{}.{}", t.id, spec.name),
            Body::Query {
                text: applied.text.clone(),
                relevant: passages.get(&t.id).cloned().unwrap_or_default(),
                answer: Some(target),
            },
        )
        .with_tag(poisonlab_data::PoisonTag {
            role: spec.role,
            recipe: Some(spec.name.clone()),
            trigger: (!applied.inserted.is_empty()).then(|| applied.inserted.join(" ")),
            payload: spec.payload.as_ref().map(|p| p.name().to_string()),
            meta,
        });
        writer.write(&rec)?;
    }
    let d = writer.finish()?;
    Ok(TestReport {
        path: output.to_path_buf(),
        records: adapter.targets.len() as u64,
        sha256: d.sha256,
    })
}
