//! Scoring a scan from the records' tags, and the tables `poisonlab scan --report` renders.

use std::collections::BTreeMap;

use poisonlab_data::Record;
use serde::Serialize;

use crate::detect::ScanResult;
use crate::filter::CleanReport;
use poisonlab_stats::{AtK, AtThreshold, Auroc, at_threshold, at_top_k, auroc};

/// One detector (or the combined score) against the tagged records.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorScore {
    pub detector: String,
    pub auroc: Auroc,
    /// Flagging as many records as there are poisoned ones.
    pub top_k: AtK,
    /// FAR/FRR at the k-th highest score.
    pub at_threshold: AtThreshold,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub records: u64,
    /// Records with a poison/watermark/canary tag, per recipe.
    pub tagged: BTreeMap<String, u64>,
    pub detectors: Vec<DetectorScore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clean: Option<CleanReport>,
}

pub fn is_poisoned(r: &Record) -> bool {
    r.tag
        .as_ref()
        .is_some_and(|t| t.role != poisonlab_data::Role::Clean)
}

pub fn score(records: &[Record], result: &ScanResult, clean: Option<CleanReport>) -> ScanReport {
    let positive: Vec<bool> = records.iter().map(is_poisoned).collect();
    let k = positive.iter().filter(|p| **p).count();
    let mut tagged = BTreeMap::new();
    for r in records.iter().filter(|r| is_poisoned(r)) {
        let t = r
            .tag
            .as_ref()
            .and_then(|t| t.recipe.clone())
            .unwrap_or_else(|| "(untitled)".into());
        *tagged.entry(t).or_insert(0u64) += 1;
    }
    let mut rows = Vec::new();
    let mut one = |name: &str, s: &[f64]| {
        let mut sorted = s.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let thr = if k > 0 { sorted[k - 1] } else { f64::INFINITY };
        rows.push(DetectorScore {
            detector: name.to_string(),
            auroc: auroc(s, &positive),
            top_k: at_top_k(s, &positive, k),
            at_threshold: at_threshold(s, &positive, thr),
        });
    };
    for (d, v) in &result.detectors {
        let s: Vec<f64> = v.iter().map(|x| x.score).collect();
        one(d.name(), &s);
    }
    if result.detectors.len() > 1 {
        one("combined", &result.combined);
    }
    ScanReport {
        records: records.len() as u64,
        tagged,
        detectors: rows,
        clean,
    }
}

impl ScanReport {
    /// The detector table, and the survival table when a pipeline ran, as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let pos: u64 = self.tagged.values().sum();
        s.push_str(&format!(
            "{} records, {} tagged ({}).\n\n",
            self.records,
            pos,
            self.tagged
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        s.push_str("| detector | AUROC [95% CI] | precision@k | recall@k | FAR | FRR |\n|---|---|---|---|---|---|\n");
        for d in &self.detectors {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                d.detector,
                d.auroc,
                d.top_k.precision,
                d.top_k.recall,
                d.at_threshold.far,
                d.at_threshold.frr
            ));
        }
        s.push_str(&format!(
            "\nk = {pos} (the number of tagged records); FAR/FRR flag every record scoring at least the k-th highest score. AUROC intervals: Hanley–McNeil; rates: Wilson.\n"
        ));
        if let Some(c) = &self.clean {
            s.push_str("\n| filter | removed | ");
            let recipes: Vec<&String> = c.survival.keys().collect();
            for r in &recipes {
                s.push_str(&format!("{r} survival | "));
            }
            s.push_str("\n|---|---|");
            for _ in &recipes {
                s.push_str("---|");
            }
            s.push('\n');
            for f in &c.filters {
                s.push_str(&format!("| {} | {}/{} | ", f.filter, f.removed, f.seen));
                for r in &recipes {
                    match f.survival.get(*r) {
                        Some(rate) => s.push_str(&format!("{rate} | ")),
                        None => s.push_str("– | "),
                    }
                }
                s.push('\n');
            }
            s.push_str(&format!(
                "| **whole pipeline** | {}/{} | ",
                c.removed, c.read
            ));
            for r in &recipes {
                s.push_str(&format!("{} | ", c.survival[*r]));
            }
            s.push('\n');
        }
        s
    }
}

/// What a scan can say about a file without poison tags: the records the combined score ranks
/// highest, with each detector's reason — the place a person looks first. Detector metrics
/// (AUROC, precision at k) need tagged records and are left out, saying so.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UntaggedReport {
    pub records: usize,
    pub note: String,
    pub top: Vec<TopRecord>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TopRecord {
    pub rank: usize,
    pub id: String,
    pub combined: f64,
    /// (detector, score, reason), highest score first.
    pub reasons: Vec<(String, f64, String)>,
}

pub fn untagged(records: &[Record], result: &ScanResult, top: usize) -> UntaggedReport {
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by(|&a, &b| {
        result.combined[b]
            .total_cmp(&result.combined[a])
            .then(a.cmp(&b))
    });
    let top = order
        .into_iter()
        .take(top)
        .enumerate()
        .map(|(rank, i)| {
            let mut reasons: Vec<(String, f64, String)> = result
                .detectors
                .iter()
                .map(|(d, v)| (d.name().to_string(), v[i].score, v[i].reason.clone()))
                .collect();
            reasons.sort_by(|a, b| b.1.total_cmp(&a.1));
            TopRecord {
                rank: rank + 1,
                id: records[i].id.clone(),
                combined: result.combined[i],
                reasons,
            }
        })
        .collect();
    UntaggedReport {
        records: records.len(),
        note: "no record carries a poison tag, so detector AUROC and precision cannot be scored; \
               these are the highest-scoring records"
            .into(),
        top,
    }
}

impl UntaggedReport {
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "## Scan of {} records\n\n{}.\n\n| rank | id | combined | strongest detector: reason |\n|---|---|---|---|\n",
            self.records, self.note
        );
        for t in &self.top {
            let why = t
                .reasons
                .first()
                .map(|(d, _, r)| format!("{d}: {}", r.replace('|', "\\|")))
                .unwrap_or_default();
            s.push_str(&format!(
                "| {} | {} | {:.3} | {why} |\n",
                t.rank, t.id, t.combined
            ));
        }
        s
    }
}
