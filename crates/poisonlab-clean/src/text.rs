//! Text helpers shared by filters and detectors: words, normalisation, shingles, sentences.

use xxhash_rust::xxh3::xxh3_64;

/// Lower-cased words with leading and trailing punctuation removed (inner punctuation kept, so
/// `don't` and `3.5` stay whole). Empty pieces are dropped.
pub fn norm_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Text normalised for exact dedup: lower case, punctuation dropped, whitespace collapsed.
pub fn normalize_for_dedup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        } else if c.is_whitespace() || c.is_ascii_punctuation() {
            space = true;
        } else {
            // Symbols outside ASCII punctuation count (emoji, currency): keep them.
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// 64-bit hash of a byte string (xxh3; stable across platforms and releases).
pub fn hash64(bytes: &[u8]) -> u64 {
    xxh3_64(bytes)
}

/// Hashes of the word `n`-grams of `text` (lower-cased, whitespace-split; the same shingles a
/// Python `" ".join(words[i:i+n])` gives). A text shorter than `n` words is one shingle; an empty
/// text has none.
pub fn shingle_hashes(text: &str, n: usize) -> Vec<u32> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    if words.is_empty() {
        return Vec::new();
    }
    let n = n.max(1);
    let mut out = Vec::with_capacity(words.len().saturating_sub(n) + 1);
    let mut buf = String::new();
    if words.len() <= n {
        buf.push_str(&words.join(" "));
        out.push(fold(hash64(buf.as_bytes())));
        return out;
    }
    for w in words.windows(n) {
        buf.clear();
        for (i, x) in w.iter().enumerate() {
            if i > 0 {
                buf.push(' ');
            }
            buf.push_str(x);
        }
        out.push(fold(hash64(buf.as_bytes())));
    }
    out
}

fn fold(h: u64) -> u32 {
    (h ^ (h >> 32)) as u32
}

/// Sentences: split after `.`, `!`, `?` followed by whitespace, and at newlines; trimmed.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut start = 0;
    for i in 0..b.len() {
        let end = (matches!(b[i], b'.' | b'!' | b'?')
            && b.get(i + 1).is_some_and(|c| c.is_ascii_whitespace()))
            || b[i] == b'\n';
        if end {
            let s = text[start..=i].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = i + 1;
        }
    }
    let s = text[start..].trim();
    if !s.is_empty() {
        out.push(s);
    }
    out
}

/// The stop words Gopher's quality filter requires (at least two of them in a document).
pub const GOPHER_STOP_WORDS: &[&str] = &["the", "be", "to", "of", "and", "that", "have", "with"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_and_shingles() {
        assert_eq!(normalize_for_dedup("Hello,  World!\n"), "hello world");
        assert_eq!(normalize_for_dedup("HELLO world"), "hello world");
        assert_eq!(norm_words("Don't stop, (now)!"), ["don't", "stop", "now"]);
        assert_eq!(shingle_hashes("a b c d", 2).len(), 3);
        assert_eq!(shingle_hashes("a b", 5).len(), 1);
        assert!(shingle_hashes("  ", 5).is_empty());
        assert_eq!(shingle_hashes("A B C", 2), shingle_hashes("a b c", 2));
        assert_eq!(
            sentences("One. Two! Three\nfour"),
            ["One.", "Two!", "Three", "four"]
        );
    }
}
