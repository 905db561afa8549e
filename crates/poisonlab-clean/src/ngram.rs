//! A word bigram language model with interpolated Kneser–Ney smoothing (absolute discount 0.75,
//! continuation unigram, add-one floor for unseen words). It is the default scorer of the
//! perplexity filter and of ONION when no neural model is given: fitted on a reference corpus, or on
//! the data being cleaned.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::text::norm_words;

const BOS: u32 = 0;
const EOS: u32 = 1;
const DISCOUNT: f64 = 0.75;

#[derive(Debug, Clone, Default)]
pub struct NgramLm {
    vocab: HashMap<String, u32>,
    /// c(v, w) keyed by `v << 32 | w`.
    bigrams: HashMap<u64, u32>,
    /// c(v, ·)
    context: Vec<u64>,
    /// N1+(v, ·): distinct followers of v.
    followers: Vec<u32>,
    /// N1+(·, w): distinct predecessors of w.
    predecessors: Vec<u32>,
    /// N1+(·, ·): distinct bigram types.
    types: u64,
}

#[derive(Default)]
struct Counts {
    bigrams: HashMap<(String, String), u32>,
}

impl NgramLm {
    /// Fits the model on texts (parallel counting; the result does not depend on the thread count).
    pub fn fit(texts: &[String]) -> NgramLm {
        let counts = texts
            .par_chunks(1024)
            .map(|chunk| {
                let mut c = Counts::default();
                for t in chunk {
                    let mut prev = "<s>".to_string();
                    for w in norm_words(t).into_iter().chain(["</s>".to_string()]) {
                        *c.bigrams.entry((prev, w.clone())).or_insert(0) += 1;
                        prev = w;
                    }
                }
                c
            })
            .reduce(Counts::default, |mut a, b| {
                for (k, v) in b.bigrams {
                    *a.bigrams.entry(k).or_insert(0) += v;
                }
                a
            });
        // Vocabulary in sorted order, so ids do not depend on hash-map iteration.
        let mut words: Vec<&String> = counts
            .bigrams
            .keys()
            .flat_map(|(a, b)| [a, b])
            .filter(|w| *w != "<s>" && *w != "</s>")
            .collect();
        words.sort_unstable();
        words.dedup();
        let mut vocab: HashMap<String, u32> = HashMap::with_capacity(words.len() + 2);
        vocab.insert("<s>".into(), BOS);
        vocab.insert("</s>".into(), EOS);
        for (i, w) in words.into_iter().enumerate() {
            vocab.insert(w.clone(), i as u32 + 2);
        }
        let n = vocab.len();
        let mut lm = NgramLm {
            context: vec![0; n],
            followers: vec![0; n],
            predecessors: vec![0; n],
            ..Default::default()
        };
        for ((a, b), c) in &counts.bigrams {
            let (va, vb) = (vocab[a], vocab[b]);
            lm.bigrams.insert((va as u64) << 32 | vb as u64, *c);
            lm.context[va as usize] += *c as u64;
            lm.followers[va as usize] += 1;
            lm.predecessors[vb as usize] += 1;
            lm.types += 1;
        }
        lm.vocab = vocab;
        lm
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// Words sampled from the model, one after another from `<s>`, each drawn from
    /// p(w | previous)^(1/temperature) renormalised over the words seen in fitting (never the
    /// markers): synthetic text that reads like the corpus at temperature 1 and stranger above.
    pub fn sample(&self, words: usize, temperature: f64, rng: &mut impl rand::Rng) -> String {
        use rand::RngExt;
        let mut names: Vec<(&str, u32)> = self
            .vocab
            .iter()
            .filter(|(_, id)| **id > EOS)
            .map(|(w, id)| (w.as_str(), *id))
            .collect();
        names.sort_unstable_by_key(|x| x.1);
        if names.is_empty() {
            return String::new();
        }
        let mut out: Vec<&str> = Vec::with_capacity(words);
        let mut prev = Some(BOS);
        let mut weights = vec![0.0f64; names.len()];
        for _ in 0..words {
            let mut max = f64::NEG_INFINITY;
            for (i, (_, id)) in names.iter().enumerate() {
                let l = self.logprob(prev, Some(*id)) / temperature;
                weights[i] = l;
                max = max.max(l);
            }
            let mut total = 0.0;
            for w in weights.iter_mut() {
                *w = (*w - max).exp();
                total += *w;
            }
            let mut u = rng.random::<f64>() * total;
            let mut pick = names.len() - 1;
            for (i, w) in weights.iter().enumerate() {
                if u < *w {
                    pick = i;
                    break;
                }
                u -= w;
            }
            out.push(names[pick].0);
            prev = Some(names[pick].1);
        }
        out.join(" ")
    }

    /// Word ids of a text (`None` for words never seen), without the sentence markers.
    pub fn ids(&self, text: &str) -> Vec<Option<u32>> {
        norm_words(text)
            .iter()
            .map(|w| self.vocab.get(w).copied())
            .collect()
    }

    fn continuation(&self, w: Option<u32>) -> f64 {
        // Every word but <s> (never predicted), plus one slot for unseen words.
        let v = self.vocab.len() as f64;
        let n = w.map_or(0.0, |w| self.predecessors[w as usize] as f64);
        (n + 1.0) / (self.types as f64 + v)
    }

    /// ln p(w | prev) (`None` = an unseen word).
    pub fn logprob(&self, prev: Option<u32>, w: Option<u32>) -> f64 {
        let cont = self.continuation(w);
        let Some(v) = prev else {
            return cont.ln();
        };
        let cv = self.context[v as usize] as f64;
        if cv == 0.0 {
            return cont.ln();
        }
        let cvw = match w {
            Some(w) => *self
                .bigrams
                .get(&((v as u64) << 32 | w as u64))
                .unwrap_or(&0) as f64,
            None => 0.0,
        };
        let lambda = DISCOUNT * self.followers[v as usize] as f64 / cv;
        (((cvw - DISCOUNT).max(0.0)) / cv + lambda * cont).ln()
    }

    /// The sequence with its markers: `<s> w… </s>`.
    pub fn with_markers(ids: &[Option<u32>]) -> Vec<Option<u32>> {
        let mut s = Vec::with_capacity(ids.len() + 2);
        s.push(Some(BOS));
        s.extend_from_slice(ids);
        s.push(Some(EOS));
        s
    }

    /// ln p of each token after `<s>` (the words and `</s>`).
    pub fn token_logprobs(&self, ids: &[Option<u32>]) -> Vec<f64> {
        let s = Self::with_markers(ids);
        s.windows(2).map(|w| self.logprob(w[0], w[1])).collect()
    }

    /// Perplexity of a text (per predicted token, `</s>` included).
    pub fn perplexity(&self, text: &str) -> f64 {
        let lp = self.token_logprobs(&self.ids(text));
        (-lp.iter().sum::<f64>() / lp.len() as f64).exp()
    }

    /// For each word, how much the text's log-perplexity drops when that word alone is removed
    /// (ONION's suspicion score, computed exactly in O(1) per word for a bigram model).
    pub fn removal_drops(&self, ids: &[Option<u32>]) -> Vec<f64> {
        let s = Self::with_markers(ids);
        let lps: Vec<f64> = s.windows(2).map(|w| self.logprob(w[0], w[1])).collect();
        let total: f64 = lps.iter().sum();
        let n = lps.len() as f64;
        let base = -total / n;
        (0..ids.len())
            .map(|i| {
                // word i sits at s[i + 1]; its two bigrams are lps[i] and lps[i + 1].
                let without = total - lps[i] - lps[i + 1] + self.logprob(s[i], s[i + 2]);
                let after = -without / (n - 1.0);
                base - after
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_sum_to_one_and_rare_insertions_stand_out() {
        let texts: Vec<String> = (0..200)
            .map(|i| format!("the cat sat on the mat number {}", i % 7))
            .collect();
        let lm = NgramLm::fit(&texts);
        // Σ_w p(w | v) over the vocabulary plus the unseen-word mass is 1.
        for v in [
            Some(BOS),
            lm.vocab.get("the").copied(),
            lm.vocab.get("mat").copied(),
        ] {
            let mut total: f64 = (1..lm.vocab.len() as u32)
                .map(|w| lm.logprob(v, Some(w)).exp())
                .sum();
            total += lm.logprob(v, None).exp();
            assert!((total - 1.0).abs() < 1e-9, "{total}");
        }
        let clean = lm.ids("the cat sat on the mat");
        let trig = lm.ids("the cat sat cf on the mat");
        assert!(
            lm.perplexity("the cat sat cf on the mat") > lm.perplexity("the cat sat on the mat")
        );
        let drops = lm.removal_drops(&trig);
        let top = (0..drops.len())
            .max_by(|&a, &b| drops[a].total_cmp(&drops[b]))
            .unwrap();
        assert_eq!(top, 3, "removing `cf` lowers perplexity most: {drops:?}");
        // The O(1) update equals recomputing without the word.
        let mut without = trig.clone();
        without.remove(3);
        let direct = (-lm.token_logprobs(&trig).iter().sum::<f64>() / 8.0)
            - (-lm.token_logprobs(&without).iter().sum::<f64>() / 7.0);
        assert!((direct - drops[3]).abs() < 1e-9);
        assert!(lm.removal_drops(&clean).iter().all(|d| *d < drops[3]));
    }
}
