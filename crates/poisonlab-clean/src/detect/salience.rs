//! N-gram salience, after BKI (Chen & Dai 2021): a backdoor ties a prompt word to an output. For
//! every prompt word `t` and every repeated output feature `f` (a normalised response sentence, or
//! the label), score(t, f) = L · ln(c(t, f)) · ln(N / c(f)), where L is the Wilson 95 % lower
//! bound of P(f | t) = c(t, f) / c(t): how surely the word leads to the output, how often it has done
//! so (BKI weighs a keyword's effect by the log of its frequency), and how unusual the output is.
//! A record scores the best pair it contains; pairs need at least `MIN_SUPPORT` records. No trigger
//! list: any word can turn out salient.

use std::collections::{HashMap, HashSet};

use poisonlab_data::Record;

use super::Verdict;
use crate::text::{norm_words, normalize_for_dedup, sentences};

const MIN_SUPPORT: u32 = 3;

/// Output features of a record: its normalised response sentences (the label for classification).
pub(crate) fn output_features(rec: &Record) -> Vec<String> {
    let (_, resp) = rec.prompt_response();
    let mut f: Vec<String> = sentences(&resp)
        .into_iter()
        .map(normalize_for_dedup)
        .filter(|s| !s.is_empty())
        .collect();
    f.sort();
    f.dedup();
    f
}

pub(crate) fn prompt_words(rec: &Record) -> Vec<String> {
    let mut w = norm_words(&rec.prompt_response().0);
    w.sort();
    w.dedup();
    w
}

pub fn scores(records: &[Record]) -> Vec<Verdict> {
    let n = records.len() as f64;
    let words: Vec<Vec<String>> = records.iter().map(prompt_words).collect();
    let feats: Vec<Vec<String>> = records.iter().map(output_features).collect();
    let mut ct: HashMap<&str, u32> = HashMap::new();
    let mut cf: HashMap<&str, u32> = HashMap::new();
    for (w, f) in words.iter().zip(&feats) {
        for t in w {
            *ct.entry(t).or_insert(0) += 1;
        }
        for x in f {
            *cf.entry(x).or_insert(0) += 1;
        }
    }
    let repeated: HashSet<&str> = cf
        .iter()
        .filter(|(_, c)| **c >= MIN_SUPPORT)
        .map(|(k, _)| *k)
        .collect();
    let mut ctf: HashMap<(&str, &str), u32> = HashMap::new();
    for (w, f) in words.iter().zip(&feats) {
        for x in f.iter().filter(|x| repeated.contains(x.as_str())) {
            for t in w {
                *ctf.entry((t, x)).or_insert(0) += 1;
            }
        }
    }
    words
        .iter()
        .zip(&feats)
        .map(|(w, f)| {
            let mut best: Option<(f64, &str, &str, u32, u32)> = None;
            for x in f.iter().filter(|x| repeated.contains(x.as_str())) {
                for t in w {
                    let c = ctf[&(t.as_str(), x.as_str())];
                    if c < MIN_SUPPORT {
                        continue;
                    }
                    let lb = poisonlab_stats::wilson(c as u64, ct[t.as_str()] as u64).ci95[0];
                    let s = lb * (c as f64).ln() * (n / cf[x.as_str()] as f64).ln();
                    let better = match best {
                        None => true,
                        Some((b, bt, bx, ..)) => {
                            s > b || (s == b && (t.as_str(), x.as_str()) < (bt, bx))
                        }
                    };
                    if better {
                        best = Some((s, t, x, c, ct[t.as_str()]));
                    }
                }
            }
            match best {
                Some((s, t, x, c, tt)) => {
                    let shown: String = x.chars().take(60).collect();
                    Verdict::new(
                        s,
                        format!("`{t}` → \"{shown}\" in {c} of {tt} records with it"),
                    )
                }
                None => Verdict::new(0.0, "no repeated output"),
            }
        })
        .collect()
}
