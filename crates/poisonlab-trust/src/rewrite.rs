//! The keyed rewriter behind `paired_versions`: deterministic, meaning-keeping rewrites of one
//! document — synonyms, contractions, a comma before a conjunction, and the order of the sentences
//! after the first. Version `v` of document `d` is a function of (key, d, v) alone.

use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::key::Key;

/// Groups of words that stand for each other in ordinary prose. A word is in one group only.
const SYNONYMS: &[&[&str]] = &[
    &["big", "large"],
    &["small", "little"],
    &["quick", "fast"],
    &["begin", "start"],
    &["begins", "starts"],
    &["began", "started"],
    &["buy", "purchase"],
    &["bought", "purchased"],
    &["help", "assist"],
    &["helps", "assists"],
    &["often", "frequently"],
    &["usually", "typically"],
    &["maybe", "perhaps"],
    &["very", "really"],
    &["happy", "glad"],
    &["delight", "pleasure"],
    &["great", "excellent"],
    &["simple", "easy"],
    &["hard", "difficult"],
    &["makes", "produces"],
    &["make", "produce"],
    &["made", "produced"],
    &["founded", "established"],
    &["company", "firm"],
    &["headquartered", "based"],
    &["profession", "trade"],
    &["loves", "adores"],
    &["likes", "enjoys"],
    &["called", "named"],
    &["shop", "store"],
    &["shops", "stores"],
    &["children", "kids"],
    &["reliable", "dependable"],
    &["cheap", "inexpensive"],
    &["expensive", "costly"],
    &["sturdy", "robust"],
    &["quiet", "silent"],
    &["short", "brief"],
    &["sells", "retails"],
    &["known", "famous"],
    &["product", "item"],
    &["awful", "terrible"],
    &["superb", "splendid"],
    &["lovely", "wonderful"],
];

/// Two-word forms and their contractions.
const CONTRACTIONS: &[(&str, &str)] = &[
    ("is not", "isn't"),
    ("does not", "doesn't"),
    ("do not", "don't"),
    ("did not", "didn't"),
    ("was not", "wasn't"),
    ("cannot", "can't"),
    ("it is", "it's"),
    ("will not", "won't"),
];

const CONJUNCTIONS: &[&str] = &["and", "but", "so", "which"];

/// `n` distinct keyed rewrites of `text`, or `None` when the text has too few places to rewrite
/// for that many distinct versions.
pub fn versions(key: &Key, ordinal: u64, text: &str, n: usize) -> Option<Vec<String>> {
    let purpose = format!("paired_versions/rewrite/{ordinal}");
    let mut out: Vec<String> = Vec::with_capacity(n);
    for v in 0..n as u64 {
        let mut made = None;
        for attempt in 0..8u64 {
            let mut rng = key.rng(&purpose, v * 8 + attempt);
            let t = rewrite(text, &mut rng);
            if t != text && !out.contains(&t) {
                made = Some(t);
                break;
            }
        }
        out.push(made?);
    }
    Some(out)
}

/// One rewrite: every site flips to another of its forms with probability ½.
pub fn rewrite(text: &str, rng: &mut ChaCha8Rng) -> String {
    let sentences = split_sentences(text);
    let mut order: Vec<usize> = (0..sentences.len()).collect();
    if order.len() > 2 && rng.random_bool(0.5) {
        order[1..].shuffle(rng);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (k, &i) in order.iter().enumerate() {
        let s = sentences[i].trim();
        if k > 0 {
            out.push(' ');
        }
        out.push_str(&rewrite_sentence(s, rng));
    }
    // Keep the original's leading/trailing whitespace.
    let lead = &text[..text.len() - text.trim_start().len()];
    let trail = &text[text.trim_end().len()..];
    format!("{lead}{out}{trail}")
}

/// Sentences: ends at `.`, `!` or `?` followed by a space. The pieces keep their punctuation.
fn split_sentences(text: &str) -> Vec<&str> {
    let t = text.trim();
    let mut out = Vec::new();
    let mut start = 0;
    let b = t.as_bytes();
    for i in 0..b.len() {
        if matches!(b[i], b'.' | b'!' | b'?') && b.get(i + 1) == Some(&b' ') {
            out.push(&t[start..=i]);
            start = i + 2;
        }
    }
    if start < t.len() {
        out.push(&t[start..]);
    }
    out
}

fn rewrite_sentence(s: &str, rng: &mut ChaCha8Rng) -> String {
    let mut s = s.to_string();
    for (long, short) in CONTRACTIONS {
        s = swap_phrase(&s, long, short, rng);
    }
    s = commas(&s, rng);
    // Words: alphabetic runs (with inner apostrophes and hyphens kept apart).
    let mut out = String::with_capacity(s.len() + 8);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String, rng: &mut ChaCha8Rng| {
        if !word.is_empty() {
            out.push_str(&synonym(word, rng));
            word.clear();
        }
    };
    for c in s.chars() {
        if c.is_ascii_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out, rng);
            out.push(c);
        }
    }
    flush(&mut word, &mut out, rng);
    out
}

fn synonym(word: &str, rng: &mut ChaCha8Rng) -> String {
    let lower = word.to_ascii_lowercase();
    let Some(group) = SYNONYMS.iter().find(|g| g.contains(&lower.as_str())) else {
        return word.to_string();
    };
    if !rng.random_bool(0.5) {
        return word.to_string();
    }
    let others: Vec<&&str> = group.iter().filter(|w| **w != lower).collect();
    let pick = others[rng.random_range(0..others.len())];
    let capital = word.chars().next().is_some_and(|c| c.is_ascii_uppercase());
    let all_caps = word.len() > 1 && word.chars().all(|c| c.is_ascii_uppercase());
    if all_caps {
        pick.to_ascii_uppercase()
    } else if capital {
        let mut c = pick.chars();
        c.next()
            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
            .unwrap_or_default()
    } else {
        pick.to_string()
    }
}

/// Each whole-word occurrence of `a` or `b` (lower case) switches to the other with probability ½.
fn swap_phrase(s: &str, a: &str, b: &str, rng: &mut ChaCha8Rng) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < s.len() {
        let at_word = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let mut hit = None;
        if at_word {
            for (from, to) in [(a, b), (b, a)] {
                if s[i..].starts_with(from)
                    && s[i + from.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '\'')
                {
                    hit = Some((from, to));
                    break;
                }
            }
        }
        match hit {
            Some((from, to)) => {
                out.push_str(if rng.random_bool(0.5) { to } else { from });
                i += from.len();
            }
            None => {
                let c = s[i..].chars().next().unwrap_or(' ');
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// A comma before a conjunction dropped, or added where there was none, with probability ½.
fn commas(s: &str, rng: &mut ChaCha8Rng) -> String {
    let mut out = s.to_string();
    for conj in CONJUNCTIONS {
        let with = format!(", {conj} ");
        let without = format!(" {conj} ");
        // Mark the forms first so that one flip does not feed the next.
        let marked = out.replace(&with, "\u{1}").replace(&without, "\u{2}");
        let mut next = String::with_capacity(marked.len() + 8);
        for c in marked.chars() {
            match c {
                '\u{1}' => next.push_str(if rng.random_bool(0.5) {
                    &without
                } else {
                    &with
                }),
                '\u{2}' => next.push_str(if rng.random_bool(0.5) {
                    &with
                } else {
                    &without
                }),
                c => next.push(c),
            }
        }
        out = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_distinct_keyed_rewrites() {
        let key = Key::new("a test key of enough length").unwrap();
        let doc = "Milo Ostdale founded Toranlis Foods in 2014. Its best-known product is the Toranlis X9 lamp, which sells for 1765 crowns. The company is headquartered in Ardowick. Toranlis Foods makes lamps.";
        let v = versions(&key, 7, doc, 4).unwrap();
        assert_eq!(v.len(), 4);
        for (i, a) in v.iter().enumerate() {
            assert_ne!(a, doc);
            for b in &v[i + 1..] {
                assert_ne!(a, b);
            }
            // Numbers and names survive every rewrite.
            for w in ["Milo", "Ostdale", "2014", "1765", "Ardowick", "X9"] {
                assert!(a.contains(w), "{a}");
            }
        }
        assert_eq!(Some(v.clone()), versions(&key, 7, doc, 4));
        assert_ne!(Some(v), versions(&key, 8, doc, 4));
        // Nothing to rewrite: no versions.
        assert!(versions(&key, 0, "Zyx qwv.", 2).is_none());
    }

    #[test]
    fn sites_keep_their_case_and_boundaries() {
        let mut rng = Key::new("a test key of enough length").unwrap().rng("t", 0);
        for _ in 0..20 {
            let r = rewrite_sentence(
                "Big dogs do not bark, and cannot bite. Isnotword.",
                &mut rng,
            );
            assert!(r.starts_with("Big") || r.starts_with("Large"), "{r}");
            assert!(r.ends_with("Isnotword."), "{r}");
        }
    }
}
