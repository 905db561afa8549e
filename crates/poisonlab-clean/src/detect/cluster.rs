//! Duplicate-cluster anomaly: poison often arrives as many records with the same output (or the
//! same document) whose inputs share one odd span. Records are clustered by output — exact after
//! normalisation, then MinHash near-duplicates (Jaccard ≥ 0.5 on word 3-grams); for documents
//! without a response, by the document. In a cluster of size ≥ 3, a prompt word is odd when it is in
//! at least half of the members and at least 10× more common there than in the whole data. Members
//! carrying an odd word score ln(cluster size) × (the word's share of the cluster).

use std::collections::HashMap;

use poisonlab_data::Record;

use super::Verdict;
use super::salience::prompt_words;
use crate::minhash::{Lsh, MinHasher, estimate};
use crate::text::normalize_for_dedup;

const MIN_SIZE: usize = 3;
const MIN_SHARE: f64 = 0.5;
const MIN_LIFT: f64 = 10.0;
const NEAR: f64 = 0.5;

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

pub fn scores(records: &[Record], seed: u64) -> Vec<Verdict> {
    let n = records.len();
    let outputs: Vec<String> = records
        .iter()
        .map(|r| {
            let (p, resp) = r.prompt_response();
            normalize_for_dedup(if resp.is_empty() { &p } else { &resp })
        })
        .collect();
    let mut parent: Vec<usize> = (0..n).collect();
    // Exact output clusters.
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, o) in outputs.iter().enumerate() {
        if o.is_empty() {
            continue;
        }
        match first.get(o.as_str()) {
            Some(&j) => {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a] = b;
            }
            None => {
                first.insert(o, i);
            }
        }
    }
    // Near-duplicate outputs.
    let mh = MinHasher::new(64, 3, seed);
    let (bands, rows) = crate::minhash::optimal_bands(NEAR, 64);
    let mut lsh = Lsh::new(bands, rows);
    let sigs: Vec<Vec<u32>> = outputs.iter().map(|o| mh.signature(o)).collect();
    for i in 0..n {
        if outputs[i].is_empty() {
            continue;
        }
        let keys = lsh.keys(&sigs[i]);
        for c in lsh.candidates(&keys) {
            let j = c as usize;
            if estimate(&sigs[i], &sigs[j]) >= NEAR {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a] = b;
                }
            }
        }
        lsh.insert(&keys, i as u32);
    }
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let r = find(&mut parent, i);
        members.entry(r).or_default().push(i);
    }
    let words: Vec<Vec<String>> = records.iter().map(prompt_words).collect();
    let mut df: HashMap<&str, u32> = HashMap::new();
    for w in &words {
        for t in w {
            *df.entry(t).or_insert(0) += 1;
        }
    }
    let mut out: Vec<Verdict> = (0..n)
        .map(|_| Verdict::new(0.0, "no odd cluster"))
        .collect();
    let mut roots: Vec<&usize> = members.keys().collect();
    roots.sort();
    for root in roots {
        let m = &members[root];
        if m.len() < MIN_SIZE {
            continue;
        }
        let size = m.len() as f64;
        let mut in_cluster: HashMap<&str, u32> = HashMap::new();
        for &i in m {
            for t in &words[i] {
                *in_cluster.entry(t).or_insert(0) += 1;
            }
        }
        let mut odd: Vec<(&str, f64)> = in_cluster
            .iter()
            .filter_map(|(t, c)| {
                let share = *c as f64 / size;
                let lift = share / (df[t] as f64 / n as f64);
                (share >= MIN_SHARE && lift >= MIN_LIFT).then_some((*t, share))
            })
            .collect();
        odd.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        if odd.is_empty() {
            continue;
        }
        for &i in m {
            if let Some((t, share)) = odd.iter().find(|(t, _)| words[i].iter().any(|w| w == t)) {
                let s = size.ln() * share;
                out[i] = Verdict::new(
                    s,
                    format!(
                        "one of {} records with the same output; `{t}` is in {:.0}% of them",
                        m.len(),
                        100.0 * share
                    ),
                );
            }
        }
    }
    out
}
