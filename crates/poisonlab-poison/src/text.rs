//! Text surgery shared by triggers and payloads: word slots, sentence boundaries, templates.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// Inserts `word` at a uniformly random whitespace-token slot of `text` (0 = before the first
/// token, n = after the last) and re-joins the tokens with single spaces. This is the BackdoorLLM
/// rule (`text.split()`, `insert(randint(0, n))`, `" ".join`), whitespace normalisation included.
/// Returns the new text and the slot.
pub fn insert_word_at_random(text: &str, word: &str, rng: &mut ChaCha8Rng) -> (String, usize) {
    let mut tokens: Vec<&str> = text.split_whitespace().collect();
    let slot = rng.random_range(0..=tokens.len());
    tokens.insert(slot, word);
    (tokens.join(" "), slot)
}

/// Inserts several words, each at its own distinct slot of the original tokens (chosen without
/// replacement), keeping the order the slots fall in. When the text has fewer slots than words,
/// the remaining words share the last slot. Returns the text and, per word, its original slot.
pub fn insert_words_distinct(
    text: &str,
    words: &[String],
    rng: &mut ChaCha8Rng,
) -> (String, Vec<usize>) {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let slots_available = tokens.len() + 1;
    let mut slots: Vec<usize> = if words.len() <= slots_available {
        rand::seq::index::sample(rng, slots_available, words.len()).into_vec()
    } else {
        let mut s: Vec<usize> = (0..slots_available).collect();
        s.resize(words.len(), tokens.len());
        s
    };
    // Slot per word as chosen; the output interleaves tokens and words by slot.
    let per_word = slots.clone();
    slots.sort_unstable();
    let mut order: Vec<usize> = (0..words.len()).collect();
    order.sort_by_key(|&i| (per_word[i], i));
    let mut out: Vec<&str> = Vec::with_capacity(tokens.len() + words.len());
    let mut next = order.iter().peekable();
    for slot in 0..=tokens.len() {
        while let Some(&&w) = next.peek() {
            if per_word[w] == slot {
                out.push(&words[w]);
                next.next();
            } else {
                break;
            }
        }
        if slot < tokens.len() {
            out.push(tokens[slot]);
        }
    }
    (out.join(" "), per_word)
}

/// `prefix` + a space + `text` (just `prefix` when the text is empty).
pub fn prepend(prefix: &str, text: &str) -> String {
    if text.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix} {text}")
    }
}

/// `text` + a space + `suffix` (just `suffix` when the text is empty).
pub fn append(text: &str, suffix: &str) -> String {
    if text.is_empty() {
        suffix.to_string()
    } else {
        format!("{text} {suffix}")
    }
}

/// Byte offsets where a new sentence may go: the start, after each `. `/`! `/`? `/newline, the end.
pub fn sentence_boundaries(text: &str) -> Vec<usize> {
    let mut out = vec![0];
    let b = text.as_bytes();
    for i in 0..b.len() {
        let end_of_sentence = matches!(b[i], b'.' | b'!' | b'?')
            && b.get(i + 1).is_some_and(|c| *c == b' ' || *c == b'\n');
        if end_of_sentence {
            out.push(i + 2);
        } else if b[i] == b'\n' && i + 1 < b.len() {
            out.push(i + 1);
        }
    }
    if !text.is_empty() && *out.last().unwrap_or(&0) != text.len() {
        out.push(text.len());
    }
    out.dedup();
    out
}

/// Inserts `sentence` as its own sentence at byte boundary `at` of `text`.
pub fn insert_sentence(text: &str, at: usize, sentence: &str) -> String {
    let (a, b) = text.split_at(at);
    match (a.is_empty(), b.is_empty()) {
        (true, true) => sentence.to_string(),
        (true, false) => format!("{sentence} {b}"),
        (false, true) => {
            if a.ends_with(char::is_whitespace) {
                format!("{a}{sentence}")
            } else {
                format!("{a} {sentence}")
            }
        }
        (false, false) => {
            if a.ends_with(char::is_whitespace) {
                format!("{a}{sentence} {b}")
            } else {
                format!("{a} {sentence} {b}")
            }
        }
    }
}

/// Fills `{name}` placeholders from `vars`; `{{` and `}}` are literal braces. Unknown names are an
/// error (checked when the spec is loaded, so a typo never reaches the data).
pub fn render(template: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        let after = &rest[i + 1..];
        if c == b'}' {
            if let Some(stripped) = after.strip_prefix('}') {
                out.push('}');
                rest = stripped;
                continue;
            }
            return Err(format!("unmatched `}}` in template `{template}`"));
        }
        if let Some(stripped) = after.strip_prefix('{') {
            out.push('{');
            rest = stripped;
            continue;
        }
        let Some(end) = after.find('}') else {
            return Err(format!("unclosed `{{` in template `{template}`"));
        };
        let name = &after[..end];
        match vars.iter().find(|(k, _)| *k == name) {
            Some((_, v)) => out.push_str(v),
            None => {
                let known: Vec<&str> = vars.iter().map(|(k, _)| *k).collect();
                return Err(format!(
                    "unknown placeholder `{{{name}}}` in template `{template}` (known: {})",
                    known.join(", ")
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks a template against the placeholder names it may use.
pub fn check_template(template: &str, names: &[&str]) -> Result<(), String> {
    let vars: Vec<(&str, &str)> = names.iter().map(|n| (*n, "")).collect();
    render(template, &vars).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn word_slots_cover_both_ends() {
        let mut seen = [false; 4];
        for s in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(s);
            let (t, slot) = insert_word_at_random("a  b\tc", "X", &mut rng);
            let toks: Vec<&str> = t.split(' ').collect();
            assert_eq!(toks.len(), 4);
            assert_eq!(toks[slot], "X");
            seen[slot] = true;
        }
        assert!(seen.iter().all(|s| *s), "every slot 0..=3 is reachable");
    }

    #[test]
    fn distinct_slots() {
        for s in 0..100 {
            let mut rng = ChaCha8Rng::seed_from_u64(s);
            let words = vec!["A".to_string(), "B".into(), "C".into()];
            let (t, slots) = insert_words_distinct("w1 w2 w3 w4", &words, &mut rng);
            let mut u = slots.clone();
            u.sort();
            u.dedup();
            assert_eq!(u.len(), 3);
            let toks: Vec<&str> = t.split(' ').collect();
            assert_eq!(toks.len(), 7);
            // original tokens keep their order
            let orig: Vec<&str> = toks
                .iter()
                .copied()
                .filter(|w| w.starts_with('w'))
                .collect();
            assert_eq!(orig, ["w1", "w2", "w3", "w4"]);
            // no two triggers adjacent: distinct slots are separated by an original token
            for w in toks.windows(2) {
                assert!(!(w[0].len() == 1 && w[1].len() == 1), "{t}");
            }
        }
    }

    #[test]
    fn templates() {
        assert_eq!(render("a {x} {{b}}", &[("x", "1")]).unwrap(), "a 1 {b}");
        assert!(render("{y}", &[("x", "1")]).is_err());
        assert!(render("{x", &[("x", "1")]).is_err());
        assert_eq!(sentence_boundaries("A b. C d! E"), vec![0, 5, 10, 11]);
        assert_eq!(insert_sentence("A b. C d.", 5, "X."), "A b. X. C d.");
        assert_eq!(insert_sentence("A b.", 4, "X."), "A b. X.");
    }
}
