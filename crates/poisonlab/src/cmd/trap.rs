//! `poisonlab trap make` and `poisonlab membership`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result};
use poisonlab_data::{Record, RecordReader};
use poisonlab_model::{LocalModel, default_device};
use poisonlab_trust::membership::{MembershipOptions, ScoreResult, evaluate, score_texts};
use poisonlab_trust::trap::{TrapSpec, insert_traps, make_traps};
use serde_json::json;

use crate::cli::{MembershipArgs, TrapMakeArgs};
use crate::cmd::data::{on_error, read_options};
use crate::cmd::model::load;

fn read_all(path: &std::path::Path, read: &poisonlab_data::ReadOptions) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for item in RecordReader::open(path, read)? {
        out.push(item?.record);
    }
    if out.is_empty() {
        anyhow::bail!("{}: no records", path.display());
    }
    Ok(out)
}

pub fn make(a: &TrapMakeArgs) -> Result<ExitCode> {
    let spec = TrapSpec {
        lengths: a.lengths.clone(),
        copies: a.copies.clone(),
        per_group: a.per_group,
        perplexity: a.perplexity.as_ref().map(|v| [v[0], v[1]]),
        temperature: a.temperature,
        seed: a.seed,
    };
    spec.validate().map_err(|e| anyhow::anyhow!("--{e}"))?;
    let read = read_options(&a.read);
    let ref_path = a.reference_text.as_ref().unwrap_or(&a.input);
    let texts: Vec<String> = read_all(ref_path, &read)
        .with_context(|| format!("reading the reference text {}", ref_path.display()))?
        .iter()
        .map(Record::full_text)
        .collect();
    let reference = poisonlab_clean::ngram::NgramLm::fit(&texts);
    let traps = make_traps(&reference, &spec)?;
    let r = insert_traps(
        &traps,
        &a.input,
        &a.output,
        &read,
        on_error(&a.errors),
        a.seed,
    )
    .with_context(|| format!("putting traps into {}", a.input.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} → {}: {}; {} member traps in {} documents, {} non-member traps beside them",
        a.input.display(),
        a.output.display(),
        r.tally,
        r.members,
        r.documents,
        r.traps - r.members
    );
    println!("members {}", r.members_file.display());
    println!("non-members {}", r.nonmembers_file.display());
    Ok(ExitCode::SUCCESS)
}

fn group_of(r: &Record, field: Option<&str>) -> String {
    match field {
        None => "all".into(),
        Some(f) => match r.extra.get(f) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "(none)".into(),
        },
    }
}

pub fn membership(a: &MembershipArgs) -> Result<ExitCode> {
    let read = poisonlab_data::ReadOptions::default();
    let members = read_all(&a.members, &read)?;
    let nonmembers = read_all(&a.nonmembers, &read)?;
    let model = load(&a.model)?;
    let reference = a
        .reference
        .as_ref()
        .map(|d| {
            LocalModel::load(d, None, &default_device())
                .with_context(|| format!("loading the reference model {}", d.display()))
        })
        .transpose()?;
    let opts = MembershipOptions {
        window: a.window,
        k: a.k,
        ..MembershipOptions::default()
    };
    let texts = |rs: &[Record]| rs.iter().map(Record::full_text).collect::<Vec<_>>();
    let ref_lm = reference
        .as_ref()
        .map(|r| r as &dyn poisonlab_model::LanguageModel);
    let ms = score_texts(model.lm(), ref_lm, &texts(&members), &opts)?;
    let ns = score_texts(model.lm(), ref_lm, &texts(&nonmembers), &opts)?;
    let field = a.group_by.as_deref();
    let mut groups: BTreeMap<String, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (i, r) in members.iter().enumerate() {
        groups.entry(group_of(r, field)).or_default().0.push(i);
    }
    for (i, r) in nonmembers.iter().enumerate() {
        groups.entry(group_of(r, field)).or_default().1.push(i);
    }
    let mut results: Vec<(String, usize, usize, Vec<ScoreResult>)> = Vec::new();
    for (g, (mi, ni)) in &groups {
        let m: Vec<_> = mi.iter().map(|&i| ms[i].clone()).collect();
        let n: Vec<_> = ni.iter().map(|&i| ns[i].clone()).collect();
        results.push((g.clone(), m.len(), n.len(), evaluate(&m, &n)));
    }
    if a.json {
        let v: Vec<_> = results
            .iter()
            .map(|(g, m, n, r)| json!({"group": g, "members": m, "nonmembers": n, "scores": r}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"group_by": field, "groups": v}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (g, m, n, r) in &results {
        let head = match field {
            Some(f) => format!("{f} = {g}: "),
            None => String::new(),
        };
        println!("{head}{m} members, {n} non-members");
        if r.is_empty() {
            println!("  (one side is empty: nothing to compare)");
        }
        for s in r {
            let t1 = &s.tpr[0];
            let t2 = &s.tpr[1];
            println!(
                "  {:<16} AUROC {:.3} [{:.3}, {:.3}]  TPR@1%FPR {:.1}% (n {}; FPR {}/{})  TPR@0.1%FPR {:.1}% (FPR {}/{})",
                s.score,
                s.auroc.auroc,
                s.auroc.ci95[0],
                s.auroc.ci95[1],
                100.0 * t1.tpr.rate,
                t1.tpr.n,
                t1.fpr.k,
                t1.fpr.n,
                100.0 * t2.tpr.rate,
                t2.fpr.k,
                t2.fpr.n
            );
        }
    }
    if !model.lm().name().is_empty() && ms.iter().all(|s| s.min_k_plus_plus.is_none()) {
        println!(
            "min_k_plus_plus: not available (the backend gives no full next-token distributions)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
