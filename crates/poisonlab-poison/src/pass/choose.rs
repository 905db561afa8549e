//! Which records a pass changes: the budget's picks (and counter-examples) among the eligible
//! records, and the RAG target queries the passages serve.

use poisonlab_data::{Body, RecordReader};

use super::PoisonOptions;
use super::scan::Scan;
use crate::error::{Error, Result};
use crate::record_rng;
use crate::spec::{Selector, Spec};
use crate::stage::RagTarget;

/// The decision for every chosen ordinal: which poison index `j` it gets (`j >= k`: counter-example
/// `j - k`).
pub(super) fn choose(spec: &Spec, scan: &Scan) -> Result<(u64, Vec<(u64, u64)>)> {
    let k = spec.budget.resolve(scan.records);
    let c = spec.counter.as_ref().map_or(0, |c| c.count);
    if let Some(r) = spec.budget.rate
        && r > 0.0
        && k == 0
    {
        return Err(Error::Invalid(format!(
            "budget.rate = {r} of {} records rounds to 0 poisoned records; raise the rate or give budget.count",
            scan.records
        )));
    }
    let m = scan.eligible.len() as u64;
    if c > 0 && k + c > m {
        return Err(Error::Invalid(format!(
            "budget of {k} records and {c} counter-examples, but only {m} of {} records are eligible for stage `{}`",
            scan.records,
            spec.stage.kind.as_str()
        )));
    }
    if k > m {
        let needs: Vec<&str> = spec.stage.kind.kinds().iter().map(|k| k.as_str()).collect();
        let holds = scan
            .convention
            .map(|c| format!("the file holds {} records", c.name()))
            .unwrap_or_else(|| "the file's convention is unknown".into());
        return Err(Error::Invalid(format!(
            "budget of {k} records but only {m} of {} records are eligible for stage `{}`{}: {holds}; \
             the stage takes {} records",
            scan.records,
            spec.stage.kind.as_str(),
            if spec.selection == Default::default() {
                String::new()
            } else {
                " with this [selection]".into()
            },
            needs.join(" / ")
        )));
    }
    let mut rng = record_rng(spec.seed, "select", 0);
    let mut picks = rand::seq::index::sample(&mut rng, m as usize, (k + c) as usize).into_vec();
    picks.sort_unstable();
    // Which picks are counter-examples: c of the k + c, drawn from a stream of their own (none
    // without counter-examples, so the poisoned picks are then as before).
    let mut is_counter = vec![false; picks.len()];
    if c > 0 {
        let mut crng = record_rng(spec.seed, "counter", 0);
        for i in rand::seq::index::sample(&mut crng, picks.len(), c as usize) {
            is_counter[i] = true;
        }
    }
    let (mut pj, mut cj) = (0u64, 0u64);
    let chosen = scan
        .eligible
        .ordinals(&picks)
        .into_iter()
        .zip(is_counter)
        .map(|(o, counter)| {
            let j = if counter {
                cj += 1;
                k + cj - 1
            } else {
                pj += 1;
                pj - 1
            };
            (o, j)
        })
        .collect();
    Ok((k, chosen))
}

pub(super) fn rag_targets(spec: &Spec, opts: &PoisonOptions, k: u64) -> Result<Vec<RagTarget>> {
    let Some(qpath) = &spec.stage.queries else {
        return Ok(Vec::new());
    };
    let per = spec.stage.per_query.unwrap_or(5) as u64;
    let want = k.div_ceil(per) as usize;
    let sel = Selector::new(spec);
    let reader = RecordReader::open(qpath, &opts.read)?;
    let mut all = Vec::new();
    for item in reader {
        let item = item?;
        if let Body::Query {
            text,
            answer,
            relevant,
        } = &item.record.body
            && sel.eligible_query(text)
            && spec.trigger.as_ref().is_none_or(|t| t.applicable(text))
        {
            all.push(RagTarget {
                id: item.record.id.clone(),
                text: text.clone(),
                answer: answer.clone(),
                relevant: relevant.clone(),
            });
        }
    }
    if want > all.len() {
        return Err(Error::Invalid(format!(
            "{}: {k} passages at {per} per query need {want} target queries, but only {} queries match",
            qpath.display(),
            all.len()
        )));
    }
    let mut rng = record_rng(spec.seed, "rag-targets", 0);
    let mut picks = rand::seq::index::sample(&mut rng, all.len(), want).into_vec();
    picks.sort_unstable();
    Ok(picks.into_iter().map(|i| all[i].clone()).collect())
}
