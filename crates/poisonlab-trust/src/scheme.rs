//! The four watermark schemes: what each inserts into a document, and what the verifier scores.
//!
//! Every scheme draws its marks from one keyed generator, index 0 for the mark that is embedded
//! and 1..=N for the null marks that are never embedded. Under the null hypothesis (the model was
//! not trained on data marked with this key) the embedded mark is one more draw from the same
//! generator, exchangeable with the nulls, and that is all the exact p-value needs.

use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::key::Key;
use crate::rewrite;

/// Zero-width and invisible format characters a cue/reply mark is spelled in (3 bits a character).
/// U+FEFF is left out: readers strip it as a byte-order mark.
pub const INVISIBLE: [char; 8] = [
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{2061}', '\u{2062}', '\u{2063}', '\u{2064}',
];

/// A scheme and its parameters, as written into the watermark manifest (never the key):
/// `{"lookalike": {"rate": 0.15}}`. (Externally tagged: an internally tagged enum would buffer
/// its numbers, which the workspace's arbitrary-precision JSON numbers do not survive.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Scheme {
    /// A keyed random character sequence inserted at a word boundary of each marked document
    /// (Wei et al. 2024). Score: mean token loss of the sequence after the end-of-text token.
    RandomSequence { length: usize, alphabet: String },
    /// Keyed Unicode look-alike substitutions: each letter that has a Cyrillic look-alike is
    /// replaced with probability `rate`, at keyed positions per document (Wei et al. 2024). Score:
    /// the marked documents' mean token loss under the embedded pattern against other patterns.
    Lookalike { rate: f64 },
    /// An invisible cue followed by an invisible reply, both keyed, at a word boundary. Score: the
    /// log-likelihood of cue + reply, ranked against counterfactual replies after the same cue.
    UnicodeCue { cue: usize, reply: usize },
    /// `versions` keyed rewrites of each marked document, one of them released (after STAMP, 2025).
    /// Score: the released version's loss against the unreleased ones, paired per document, with
    /// a Monte Carlo permutation p-value over which version was released.
    PairedVersions { versions: usize },
}

pub const SCHEMES: &[(&str, &str)] = &[
    (
        "random_sequence",
        "a keyed random character sequence inserted into K documents; loss against never-inserted sequences",
    ),
    (
        "lookalike",
        "keyed Unicode look-alike substitutions in K documents; loss against other substitution patterns",
    ),
    (
        "unicode_cue",
        "an invisible cue and reply inserted into K documents; reply ranked against counterfactual replies",
    ),
    (
        "paired_versions",
        "K documents each rewritten V ways, one released; paired permutation test on the released one",
    ),
];

/// Parameters to set on a named scheme (`None`: the scheme's default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pub length: Option<usize>,
    pub alphabet: Option<String>,
    pub rate: Option<f64>,
    pub cue: Option<usize>,
    pub reply: Option<usize>,
    pub versions: Option<usize>,
}

impl Scheme {
    /// The scheme `name` with `params` set; a parameter the scheme does not take, or a bad value,
    /// is an error that names it.
    pub fn build(name: &str, p: &Params) -> Result<Scheme, String> {
        let mut scheme = Scheme::named(name).ok_or_else(|| {
            format!(
                "unknown scheme {name:?}; schemes: {}",
                SCHEMES.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
            )
        })?;
        let given = [
            ("length", p.length.is_some()),
            ("alphabet", p.alphabet.is_some()),
            ("rate", p.rate.is_some()),
            ("cue", p.cue.is_some()),
            ("reply", p.reply.is_some()),
            ("versions", p.versions.is_some()),
        ];
        let takes: &[&str] = match &mut scheme {
            Scheme::RandomSequence { length, alphabet } => {
                *length = p.length.unwrap_or(*length);
                if let Some(a) = &p.alphabet {
                    *alphabet = a.clone();
                }
                &["length", "alphabet"]
            }
            Scheme::Lookalike { rate } => {
                *rate = p.rate.unwrap_or(*rate);
                &["rate"]
            }
            Scheme::UnicodeCue { cue, reply } => {
                *cue = p.cue.unwrap_or(*cue);
                *reply = p.reply.unwrap_or(*reply);
                &["cue", "reply"]
            }
            Scheme::PairedVersions { versions } => {
                *versions = p.versions.unwrap_or(*versions);
                &["versions"]
            }
        };
        if let Some((k, _)) = given.iter().find(|(k, g)| *g && !takes.contains(k)) {
            return Err(format!(
                "{k}: the {name} scheme does not take it (it takes {})",
                takes.join(", ")
            ));
        }
        scheme.validate()?;
        Ok(scheme)
    }

    /// The scheme named `name` with its default parameters.
    pub fn named(name: &str) -> Option<Scheme> {
        Some(match name {
            "random_sequence" => Scheme::RandomSequence {
                length: 24,
                alphabet: "abcdefghijklmnopqrstuvwxyz0123456789".into(),
            },
            "lookalike" => Scheme::Lookalike { rate: 0.15 },
            "unicode_cue" => Scheme::UnicodeCue { cue: 8, reply: 8 },
            "paired_versions" => Scheme::PairedVersions { versions: 4 },
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Scheme::RandomSequence { .. } => "random_sequence",
            Scheme::Lookalike { .. } => "lookalike",
            Scheme::UnicodeCue { .. } => "unicode_cue",
            Scheme::PairedVersions { .. } => "paired_versions",
        }
    }

    /// Checks the parameters; the message names the parameter.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Scheme::RandomSequence { length, alphabet } => {
                let mut uniq: Vec<char> = alphabet.chars().collect();
                uniq.sort_unstable();
                uniq.dedup();
                if uniq.len() < 2 {
                    return Err("alphabet: needs at least two distinct characters".into());
                }
                if uniq.iter().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(
                        "alphabet: whitespace and control characters are not allowed".into(),
                    );
                }
                if *length < 4 {
                    return Err(format!(
                        "length: {length} is too short to be a mark (at least 4)"
                    ));
                }
            }
            Scheme::Lookalike { rate } => {
                if !(*rate > 0.0 && *rate <= 1.0) {
                    return Err(format!("rate: {rate} must be in (0, 1]"));
                }
            }
            Scheme::UnicodeCue { cue, reply } => {
                if *cue < 2 || *reply < 4 {
                    return Err(format!(
                        "cue {cue} / reply {reply}: a cue needs at least 2 and a reply at least 4 characters"
                    ));
                }
            }
            Scheme::PairedVersions { versions } => {
                if *versions < 2 || *versions > 64 {
                    return Err(format!("versions: {versions} must be 2 to 64"));
                }
            }
        }
        Ok(())
    }

    /// Whether verification needs the marked documents (look-alikes and rewrites are of them).
    pub fn needs_documents(&self) -> bool {
        matches!(
            self,
            Scheme::Lookalike { .. } | Scheme::PairedVersions { .. }
        )
    }

    /// Whether a document can carry the mark (a look-alike pattern needs letters to replace, a
    /// rewrite needs places to rewrite).
    pub fn eligible(&self, key: &Key, ordinal: u64, text: &str) -> bool {
        if text.trim().is_empty() {
            return false;
        }
        match self {
            Scheme::RandomSequence { .. } | Scheme::UnicodeCue { .. } => true,
            Scheme::Lookalike { .. } => lookalike_sites(text).len() >= 8,
            Scheme::PairedVersions { versions } => {
                rewrite::versions(key, ordinal, text, *versions).is_some()
            }
        }
    }

    /// The released text of a marked document.
    pub fn embed(&self, key: &Key, ordinal: u64, text: &str) -> String {
        match self {
            Scheme::RandomSequence { .. } => {
                let mark = self.sequence(key, 0);
                insert_at_boundary(key, ordinal, text, &format!(" {mark}"))
            }
            Scheme::UnicodeCue { .. } => {
                let mark = self.sequence(key, 0);
                insert_at_boundary(key, ordinal, text, &mark)
            }
            Scheme::Lookalike { .. } => self.pattern(key, ordinal, 0, text),
            Scheme::PairedVersions { versions } => {
                let all = rewrite::versions(key, ordinal, text, *versions)
                    .unwrap_or_else(|| vec![text.to_string()]);
                let r = released(key, ordinal, *versions);
                all.get(r).cloned().unwrap_or_else(|| text.to_string())
            }
        }
    }

    /// The `i`-th keyed sequence of a sequence scheme (0 is embedded): the random sequence, or
    /// cue + reply.
    pub fn sequence(&self, key: &Key, i: u64) -> String {
        match self {
            Scheme::RandomSequence { length, alphabet } => {
                let chars: Vec<char> = alphabet.chars().collect();
                let mut rng = key.rng("random_sequence/mark", i);
                (0..*length)
                    .map(|_| chars[rng.random_range(0..chars.len())])
                    .collect()
            }
            Scheme::UnicodeCue { cue, reply } => {
                let draw = |rng: &mut ChaCha8Rng, n: usize| -> String {
                    (0..n)
                        .map(|_| INVISIBLE[rng.random_range(0..INVISIBLE.len())])
                        .collect()
                };
                let c = draw(&mut key.rng("unicode_cue/cue", 0), *cue);
                let r = draw(&mut key.rng("unicode_cue/reply", i), *reply);
                c + &r
            }
            _ => String::new(),
        }
    }

    /// The `i`-th keyed look-alike pattern applied to a document (0 is embedded).
    pub fn pattern(&self, key: &Key, ordinal: u64, i: u64, text: &str) -> String {
        let Scheme::Lookalike { rate } = self else {
            return text.to_string();
        };
        let sites = lookalike_sites(text);
        let mut rng = key.rng(&format!("lookalike/pattern/{ordinal}"), i);
        let mut chosen: Vec<bool> = sites.iter().map(|_| rng.random_bool(*rate)).collect();
        if !chosen.iter().any(|&c| c) && !sites.is_empty() {
            let j = rng.random_range(0..sites.len());
            chosen[j] = true;
        }
        let mut out = String::with_capacity(text.len() + sites.len());
        let mut next = 0;
        for (ci, c) in text.chars().enumerate() {
            if next < sites.len() && sites[next] == ci {
                if chosen[next] {
                    out.push(poisonlab_poison::trigger::look_alike(c).unwrap_or(c));
                } else {
                    out.push(c);
                }
                next += 1;
            } else {
                out.push(c);
            }
        }
        out
    }
}

/// Character indices of the letters that have a look-alike.
fn lookalike_sites(text: &str) -> Vec<usize> {
    text.chars()
        .enumerate()
        .filter(|(_, c)| poisonlab_poison::trigger::look_alike(*c).is_some())
        .map(|(i, _)| i)
        .collect()
}

/// Which of a document's versions is released.
pub fn released(key: &Key, ordinal: u64, versions: usize) -> usize {
    key.rng("paired_versions/release", ordinal)
        .random_range(0..versions)
}

/// `mark` inserted at a keyed word boundary: before one of the text's spaces, or at its end.
fn insert_at_boundary(key: &Key, ordinal: u64, text: &str, mark: &str) -> String {
    let mut bounds: Vec<usize> = text
        .char_indices()
        .filter(|(_, c)| *c == ' ')
        .map(|(i, _)| i)
        .collect();
    bounds.push(text.len());
    let mut rng = key.rng("place", ordinal);
    bounds.shuffle(&mut rng);
    let at = bounds[0];
    let mut out = String::with_capacity(text.len() + mark.len());
    out.push_str(&text[..at]);
    out.push_str(mark);
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::new("a test key of enough length").unwrap()
    }

    #[test]
    fn marks_are_keyed_and_embedded_where_said() {
        let k = key();
        let s = Scheme::named("random_sequence").unwrap();
        let m0 = s.sequence(&k, 0);
        assert_eq!(m0.chars().count(), 24);
        assert_ne!(m0, s.sequence(&k, 1));
        let doc = "The cat sat on the mat.";
        let out = s.embed(&k, 3, doc);
        assert!(out.contains(&format!(" {m0}")), "{out}");
        assert_eq!(out.replace(&format!(" {m0}"), ""), doc);
        assert_eq!(out, s.embed(&k, 3, doc));

        let cue = Scheme::named("unicode_cue").unwrap();
        let c = cue.embed(&k, 0, doc);
        let visible: String = c.chars().filter(|c| !INVISIBLE.contains(c)).collect();
        assert_eq!(visible, doc);
        assert_eq!(c.chars().count(), doc.chars().count() + 16);
        // Same cue, other replies.
        let (a, b) = (cue.sequence(&k, 0), cue.sequence(&k, 5));
        assert_eq!(
            a.chars().take(8).collect::<String>(),
            b.chars().take(8).collect::<String>()
        );
        assert_ne!(a, b);
    }

    #[test]
    fn lookalike_patterns_keep_the_text_readable() {
        let k = key();
        let s = Scheme::named("lookalike").unwrap();
        let doc = "A company makes kettles and lamps and other pieces of equipment every year.";
        assert!(s.eligible(&k, 0, doc));
        assert!(!s.eligible(&k, 0, "Hmm."));
        let p0 = s.pattern(&k, 0, 0, doc);
        assert_ne!(p0, doc);
        assert_eq!(p0.chars().count(), doc.chars().count());
        assert_ne!(p0, s.pattern(&k, 0, 1, doc));
        let back: String = p0
            .chars()
            .map(|c| {
                poisonlab_poison::trigger::HOMOGLYPHS
                    .iter()
                    .find(|(_, h)| *h == c)
                    .map_or(c, |(l, _)| *l)
            })
            .collect();
        assert_eq!(back, doc);
        assert_eq!(s.embed(&k, 0, doc), p0);
    }

    #[test]
    fn parameters_are_checked() {
        assert!(Scheme::Lookalike { rate: 0.0 }.validate().is_err());
        assert!(Scheme::PairedVersions { versions: 1 }.validate().is_err());
        assert!(
            Scheme::RandomSequence {
                length: 10,
                alphabet: "aaaa".into()
            }
            .validate()
            .is_err()
        );
        assert!(Scheme::named("nope").is_none());
        for (name, _) in SCHEMES {
            assert!(Scheme::named(name).unwrap().validate().is_ok());
        }
    }
}
