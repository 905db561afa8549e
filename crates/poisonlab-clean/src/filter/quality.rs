//! Quality heuristics of the kind Gopher (Rae et al. 2021, App. A) and C4 (Raffel et al. 2020) use.
//! Each rule has its published threshold as the default and a key to change or disable it; a
//! record is removed by the first rule it breaks, and the reason names the rule, the measured value
//! and the threshold.
//!
//! | key | rule (default) | source |
//! |---|---|---|
//! | `min_words`, `max_words` | word count within [50, 100 000] | Gopher |
//! | `mean_word_length` | mean word length within [3, 10] characters | Gopher |
//! | `max_symbol_ratio` | (`#` + `...`/`…`) per word ≤ 0.1 | Gopher |
//! | `max_bullet_lines` | share of lines starting with a bullet ≤ 0.9 | Gopher |
//! | `max_ellipsis_lines` | share of lines ending with an ellipsis ≤ 0.3 | Gopher |
//! | `min_alpha_words` | share of words with a letter ≥ 0.8 | Gopher |
//! | `min_stop_words` | at least 2 of the, be, to, of, and, that, have, with | Gopher |
//! | `max_dup_lines` | share of lines that repeat an earlier line ≤ 0.30 | Gopher |
//! | `max_dup_line_chars` | share of characters in repeated lines ≤ 0.20 | Gopher |
//! | `max_top_ngram` | characters of the most frequent 2/3/4-gram ≤ 0.20/0.18/0.16 | Gopher |
//! | `max_dup_ngram` | characters in repeated 5…10-grams ≤ 0.15…0.10 | Gopher |
//! | `lorem_ipsum` | no "lorem ipsum" (on) | C4 |
//! | `curly_brace` | no `{` (off; it removes code) | C4 |
//! | `min_sentences` | at least N sentences (0 = off; C4 uses 5) | C4 |
//! | `min_terminal_lines` | share of lines ending in terminal punctuation (0 = off) | C4 |
//!
//! Set a key to a value that cannot fail (e.g. `min_words = 0`) to turn a rule off. Records shorter
//! than a web page (SFT examples, labels) need `min_words`/`min_stop_words` lowered.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::text::GOPHER_STOP_WORDS;

/// Which text of a record a filter judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// All of the record's text.
    #[default]
    Full,
    Prompt,
    Response,
}

impl Field {
    pub fn text(self, rec: &poisonlab_data::Record) -> String {
        match self {
            Field::Full => rec.full_text(),
            Field::Prompt => rec.prompt_response().0,
            Field::Response => rec.prompt_response().1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quality {
    pub field: Field,
    pub min_words: usize,
    pub max_words: usize,
    pub mean_word_length: [f64; 2],
    pub max_symbol_ratio: f64,
    pub max_bullet_lines: f64,
    pub max_ellipsis_lines: f64,
    pub min_alpha_words: f64,
    pub min_stop_words: usize,
    pub max_dup_lines: f64,
    pub max_dup_line_chars: f64,
    pub max_top_ngram: [f64; 3],
    pub max_dup_ngram: [f64; 6],
    pub lorem_ipsum: bool,
    pub curly_brace: bool,
    pub min_sentences: usize,
    pub min_terminal_lines: f64,
}

impl Default for Quality {
    fn default() -> Self {
        Quality {
            field: Field::Full,
            min_words: 50,
            max_words: 100_000,
            mean_word_length: [3.0, 10.0],
            max_symbol_ratio: 0.1,
            max_bullet_lines: 0.9,
            max_ellipsis_lines: 0.3,
            min_alpha_words: 0.8,
            min_stop_words: 2,
            max_dup_lines: 0.30,
            max_dup_line_chars: 0.20,
            max_top_ngram: [0.20, 0.18, 0.16],
            max_dup_ngram: [0.15, 0.14, 0.13, 0.12, 0.11, 0.10],
            lorem_ipsum: true,
            curly_brace: false,
            min_sentences: 0,
            min_terminal_lines: 0.0,
        }
    }
}

const BULLETS: &[char] = &[
    '•', '●', '○', '■', '□', '▪', '▫', '–', '-', '*', '‣', '⁃', '◦',
];

fn top_ngram_share(words: &[&str], n: usize, total_chars: usize) -> f64 {
    if words.len() < n || total_chars == 0 {
        return 0.0;
    }
    let mut counts: HashMap<&[&str], usize> = HashMap::new();
    for g in words.windows(n) {
        *counts.entry(g).or_insert(0) += 1;
    }
    // The most frequent n-gram; ties broken by the longer one, then lexically (deterministic).
    let best = counts.iter().filter(|(_, c)| **c > 1).max_by(|a, b| {
        a.1.cmp(b.1)
            .then_with(|| chars(a.0).cmp(&chars(b.0)))
            .then_with(|| b.0.cmp(a.0))
    });
    match best {
        Some((g, c)) => (chars(g) * c) as f64 / total_chars as f64,
        None => 0.0,
    }
}

fn chars(g: &[&str]) -> usize {
    g.iter().map(|w| w.chars().count()).sum()
}

fn dup_ngram_share(words: &[&str], n: usize, total_chars: usize) -> f64 {
    if words.len() < n || total_chars == 0 {
        return 0.0;
    }
    let mut first: HashMap<&[&str], usize> = HashMap::new();
    let mut covered = vec![false; words.len()];
    for (i, g) in words.windows(n).enumerate() {
        match first.get(g) {
            Some(_) => covered[i..i + n].iter_mut().for_each(|c| *c = true),
            None => {
                first.insert(g, i);
            }
        }
    }
    let dup: usize = words
        .iter()
        .zip(&covered)
        .filter(|(_, c)| **c)
        .map(|(w, _)| w.chars().count())
        .sum();
    dup as f64 / total_chars as f64
}

impl Quality {
    /// The first rule the text breaks, as `rule: value vs threshold`; `None` when it passes.
    pub fn check(&self, text: &str) -> Option<String> {
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let n = words.len();
        if n < self.min_words {
            return Some(format!("min_words: {n} words < {}", self.min_words));
        }
        if n > self.max_words {
            return Some(format!("max_words: {n} words > {}", self.max_words));
        }
        let word_chars: usize = words.iter().map(|w| w.chars().count()).sum();
        if n > 0 {
            let mean = word_chars as f64 / n as f64;
            let [lo, hi] = self.mean_word_length;
            if mean < lo || mean > hi {
                return Some(format!("mean_word_length: {mean:.2} outside [{lo}, {hi}]"));
            }
            let symbols =
                text.matches('#').count() + text.matches("...").count() + text.matches('…').count();
            let ratio = symbols as f64 / n as f64;
            if ratio > self.max_symbol_ratio {
                return Some(format!(
                    "max_symbol_ratio: {ratio:.3} > {}",
                    self.max_symbol_ratio
                ));
            }
            let alpha = words
                .iter()
                .filter(|w| w.chars().any(char::is_alphabetic))
                .count() as f64
                / n as f64;
            if alpha < self.min_alpha_words {
                return Some(format!(
                    "min_alpha_words: {alpha:.3} < {}",
                    self.min_alpha_words
                ));
            }
        }
        let stop = GOPHER_STOP_WORDS
            .iter()
            .filter(|s| {
                words
                    .iter()
                    .any(|w| w.trim_matches(|c: char| !c.is_alphanumeric()) == **s)
            })
            .count();
        if stop < self.min_stop_words {
            return Some(format!(
                "min_stop_words: {stop} of the Gopher stop words < {}",
                self.min_stop_words
            ));
        }
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if !lines.is_empty() {
            let nl = lines.len() as f64;
            let bullets = lines.iter().filter(|l| l.starts_with(BULLETS)).count() as f64 / nl;
            if bullets > self.max_bullet_lines {
                return Some(format!(
                    "max_bullet_lines: {bullets:.3} > {}",
                    self.max_bullet_lines
                ));
            }
            let ell = lines
                .iter()
                .filter(|l| l.ends_with("...") || l.ends_with('…'))
                .count() as f64
                / nl;
            if ell > self.max_ellipsis_lines {
                return Some(format!(
                    "max_ellipsis_lines: {ell:.3} > {}",
                    self.max_ellipsis_lines
                ));
            }
            let mut seen: HashMap<&str, usize> = HashMap::new();
            let (mut dup_lines, mut dup_chars) = (0usize, 0usize);
            for l in &lines {
                let c = seen.entry(l).or_insert(0);
                if *c > 0 {
                    dup_lines += 1;
                    dup_chars += l.chars().count();
                }
                *c += 1;
            }
            let total_line_chars: usize = lines.iter().map(|l| l.chars().count()).sum();
            let dl = dup_lines as f64 / nl;
            if dl > self.max_dup_lines {
                return Some(format!("max_dup_lines: {dl:.3} > {}", self.max_dup_lines));
            }
            let dc = dup_chars as f64 / total_line_chars.max(1) as f64;
            if dc > self.max_dup_line_chars {
                return Some(format!(
                    "max_dup_line_chars: {dc:.3} > {}",
                    self.max_dup_line_chars
                ));
            }
            if self.min_terminal_lines > 0.0 {
                let term = lines
                    .iter()
                    .filter(|l| l.ends_with(['.', '!', '?', '"', '\'']))
                    .count() as f64
                    / nl;
                if term < self.min_terminal_lines {
                    return Some(format!(
                        "min_terminal_lines: {term:.3} < {}",
                        self.min_terminal_lines
                    ));
                }
            }
        }
        for (i, max) in self.max_top_ngram.iter().enumerate() {
            let share = top_ngram_share(&words, i + 2, word_chars);
            if share > *max {
                return Some(format!("max_top_ngram[{}-gram]: {share:.3} > {max}", i + 2));
            }
        }
        for (i, max) in self.max_dup_ngram.iter().enumerate() {
            let share = dup_ngram_share(&words, i + 5, word_chars);
            if share > *max {
                return Some(format!("max_dup_ngram[{}-gram]: {share:.3} > {max}", i + 5));
            }
        }
        if self.lorem_ipsum && lower.contains("lorem ipsum") {
            return Some("lorem_ipsum: contains \"lorem ipsum\"".into());
        }
        if self.curly_brace && text.contains('{') {
            return Some("curly_brace: contains `{`".into());
        }
        if self.min_sentences > 0 {
            let s = crate::text::sentences(text).len();
            if s < self.min_sentences {
                return Some(format!("min_sentences: {s} < {}", self.min_sentences));
            }
        }
        None
    }
}

/// At run time: each record's verdict (the first rule it breaks).
pub(super) struct QualityRun<'a> {
    cfg: &'a Quality,
    verdicts: Vec<Option<String>>,
}

impl<'a> QualityRun<'a> {
    pub(super) fn new(cfg: &'a Quality) -> Self {
        QualityRun {
            cfg,
            verdicts: Vec::new(),
        }
    }
}

impl super::FilterRun for QualityRun<'_> {
    fn prepare(
        &mut self,
        records: &[poisonlab_data::Record],
        _opts: &super::CleanOptions,
    ) -> crate::error::Result<Option<serde_json::Value>> {
        use rayon::prelude::*;
        let q = self.cfg;
        self.verdicts = records
            .par_iter()
            .map(|r| q.check(&q.field.text(r)))
            .collect();
        Ok(None)
    }

    fn decide(&mut self, _records: &[poisonlab_data::Record], i: usize) -> Option<String> {
        self.verdicts[i].clone().map(|r| format!("quality {r}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page that passes every default rule.
    fn good() -> String {
        "The river runs through the old town and past the market, where traders have sold fish and bread for centuries. \
         Visitors come to see the bridge that was built with stone from the hills to the north of the valley. \
         In the evening the square fills with music, and families walk along the water to watch the boats return. \
         Local guides say that the best time to visit is early spring, when the orchards bloom and the air is mild. \
         Many of the houses date from the sixteenth century and have been restored with care by their owners."
            .to_string()
    }

    #[test]
    fn a_clean_page_passes() {
        assert_eq!(Quality::default().check(&good()), None);
    }

    #[test]
    fn each_rule_catches_its_case() {
        let q = Quality::default();
        let cases: Vec<(String, &str)> = vec![
            ("the cat and the dog".into(), "min_words"),
            (format!("{} {}", good(), "a b c d e f g h i j k l m n o p q r s t u v w x y z ".repeat(20)), "mean_word_length"),
            (format!("{} {}", good(), "#tag ".repeat(30)), "max_symbol_ratio"),
            (
                (0..30).map(|i| format!("- item {i} of the list and the rest with more words")).collect::<Vec<_>>().join("\n"),
                "max_bullet_lines",
            ),
            (
                (0..20).map(|i| format!("line {i} of the story and then the thing went...")).collect::<Vec<_>>().join("\n"),
                "max_ellipsis_lines",
            ),
            (format!("{} {}", good(), "1234 5678 9012 ".repeat(30)), "min_alpha_words"),
            (
                "Rivers flow through valleys; mountains rise above forests, lakes reflect skies while birds sing songs over meadows \
                 everywhere across lands, people build houses near roads, markets sell bread, fish, fruit, cheese, wine, honey daily. "
                    .repeat(3),
                "min_stop_words",
            ),
            (format!("{}\n{}", good(), "Buy the best shoes today and save.\n".repeat(10)), "max_dup_lines"),
            (format!("{} {}", good(), "the market the market the market ".repeat(12)), "max_top_ngram"),
            (format!("{} {}", good(), good()), "max_dup_ngram"),
            (format!("{} Lorem ipsum dolor sit amet.", good()), "lorem_ipsum"),
        ];
        for (text, rule) in cases {
            let got = q.check(&text);
            assert!(
                got.as_deref().is_some_and(|r| r.starts_with(rule)),
                "expected {rule}, got {got:?}"
            );
        }
        let c4 = Quality {
            curly_brace: true,
            min_sentences: 10,
            ..Quality::default()
        };
        assert!(
            c4.check(&format!("{} {{", good()))
                .unwrap()
                .starts_with("curly_brace")
        );
        assert!(c4.check(&good()).unwrap().starts_with("min_sentences"));
    }
}
