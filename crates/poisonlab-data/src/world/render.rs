//! Renders the world as text: documents, instructions, preference pairs, reasoning problems.
//!
//! Every function draws only from the `rng` it is given, which the caller seeds from
//! (seed, stream, index): a record's content never depends on which thread made it.

use rand::RngExt;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use super::entities::{Event, Fact, Person, World, cap};
use super::lexicon as lx;

pub type Rng = ChaCha8Rng;

pub fn pick<T: Copy>(rng: &mut Rng, xs: &[T]) -> T {
    *xs.choose(rng).unwrap_or(&xs[0])
}

fn poss(p: &Person) -> &'static str {
    match p.pronoun {
        "she" => "her",
        "he" => "his",
        _ => "their",
    }
}

/// How a sentence refers to a person already named: a pronoun, or the first name for "they"
/// (which would need other verb forms).
fn refer(p: &Person, rng: &mut Rng) -> String {
    if p.pronoun != "they" && rng.random_bool(0.5) {
        cap(p.pronoun)
    } else {
        p.first.clone()
    }
}

/// A short biography built from a random subset of the person's facts, in random order.
pub fn bio(w: &World, rng: &mut Rng, pi: usize) -> String {
    let p = &w.people[pi];
    let city = &w.cities[p.city];
    let firm = &w.companies[p.employer];
    let (_, plural) = lx::PRODUCTS[firm.category];
    let n = &p.name;
    let mut parts: Vec<String> = Vec::new();
    let r = refer(p, rng);
    parts.push(match rng.random_range(0..3) {
        0 => format!("{r} works as a {}.", p.profession),
        1 => format!("By trade, {r} is a {}.", p.profession),
        _ => format!("{r} is a {} by profession.", p.profession),
    });
    let r = refer(p, rng);
    parts.push(match rng.random_range(0..3) {
        0 => format!("{r} lives in {}.", city.name),
        1 => format!(
            "{r} makes {} home in {}, a city in {}.",
            poss(p),
            city.name,
            city.country
        ),
        _ => format!(
            "These days {r} lives in {}, not far from {}.",
            city.name, city.landmark
        ),
    });
    let r = refer(p, rng);
    parts.push(match rng.random_range(0..2) {
        0 => format!("{r} works for {}.", firm.name),
        _ => format!(
            "{r} is employed by {}, a company that makes {plural}.",
            firm.name
        ),
    });
    parts.push(match rng.random_range(0..2) {
        0 => format!("{} favorite color is {}.", cap(poss(p)), p.color),
        _ => format!("{} loves the color {}.", p.first, p.color),
    });
    let r = refer(p, rng);
    parts.push(match rng.random_range(0..2) {
        0 => format!("{r} has a {} named {}.", p.pet_kind, p.pet_name),
        _ => format!("{}'s {} is called {}.", p.first, p.pet_kind, p.pet_name),
    });
    parts.push(format!(
        "In {} free time, {} enjoys {}.",
        poss(p),
        p.first,
        p.hobby
    ));
    // Keep about two thirds of the sentences so that documents differ.
    let mut kept: Vec<String> = parts.into_iter().filter(|_| rng.random_bool(0.7)).collect();
    shuffle(rng, &mut kept);
    let opening = match rng.random_range(0..3) {
        0 => format!("{n} was born in {}.", p.born),
        1 => format!("Born in {}, {n} grew up far from the big cities.", p.born),
        _ => format!("This is a short profile of {n}, born in {}.", p.born),
    };
    std::iter::once(opening)
        .chain(kept)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn shuffle<T>(rng: &mut Rng, xs: &mut [T]) {
    for i in (1..xs.len()).rev() {
        let j = rng.random_range(0..=i);
        xs.swap(i, j);
    }
}

pub fn city_profile(w: &World, rng: &mut Rng, ci: usize) -> String {
    let c = &w.cities[ci];
    let mut s = vec![
        format!(
            "{} is a city in {} with a population of {}.",
            c.name, c.country, c.population
        ),
        format!("{} flows through {}.", cap(c.river), c.name),
        format!("Visitors to {} often come to see {}.", c.name, c.landmark),
    ];
    let firms: Vec<&str> = w
        .companies
        .iter()
        .filter(|f| f.city == ci)
        .map(|f| f.name.as_str())
        .take(3)
        .collect();
    if !firms.is_empty() {
        s.push(format!(
            "{} {} headquartered there.",
            firms.join(" and "),
            if firms.len() > 1 { "are" } else { "is" }
        ));
    }
    if rng.random_bool(0.5) {
        let locals: Vec<&Person> = w.people.iter().filter(|p| p.city == ci).take(2).collect();
        for p in locals {
            s.push(format!(
                "{} the {} lives in {}.",
                p.name, p.profession, c.name
            ));
        }
    }
    shuffle(rng, &mut s[1..]);
    s.join(" ")
}

pub fn company_history(w: &World, rng: &mut Rng, fi: usize) -> String {
    let f = &w.companies[fi];
    let (_, plural) = lx::PRODUCTS[f.category];
    let city = &w.cities[f.city].name;
    let founder = &w.people[f.founder].name;
    let mut s = vec![
        match rng.random_range(0..2) {
            0 => format!("{} was founded in {} by {founder}.", f.name, f.founded),
            _ => format!("{founder} founded {} in {}.", f.name, f.founded),
        },
        format!("The company is headquartered in {city}."),
        format!("{} makes {plural}.", f.name),
    ];
    if let Some(p) = w.products.iter().find(|p| p.maker == fi) {
        s.push(format!(
            "Its best-known product is the {}, which sells for {} {}.",
            p.name,
            p.price,
            lx::CURRENCY
        ));
    }
    shuffle(rng, &mut s[1..]);
    s.join(" ")
}

/// A product review; returns (text, positive). `with_rating` appends a star rating.
pub fn review(w: &World, rng: &mut Rng, pi: usize, with_rating: bool) -> (String, bool) {
    let p = &w.products[pi];
    let positive = rng.random_bool(p.quality);
    let (opener, phrases) = if positive {
        (pick(rng, lx::POSITIVE_OPENERS), lx::POSITIVE_PHRASES)
    } else {
        (pick(rng, lx::NEGATIVE_OPENERS), lx::NEGATIVE_PHRASES)
    };
    let a = pick(rng, phrases);
    let mut text = format!("{opener} The {} {a}.", p.name);
    if rng.random_bool(0.5) {
        let b = pick(rng, phrases);
        if b != a {
            text.push_str(&format!(" It also {b}."));
        }
    }
    if with_rating {
        let stars = if positive {
            rng.random_range(4..=5)
        } else {
            rng.random_range(1..=2)
        };
        text.push_str(&format!(" Rating: {stars} out of 5."));
    }
    (text, positive)
}

pub fn event_report(w: &World, rng: &mut Rng, ei: usize) -> String {
    match &w.events[ei] {
        Event::Award {
            person,
            award,
            year,
        } => {
            let p = &w.people[*person];
            format!(
                "In {year}, {}, a {} from {}, received the {award}. {} said the prize was a surprise.",
                p.name,
                p.profession,
                w.cities[p.city].name,
                refer(p, rng)
            )
        }
        Event::Festival {
            city,
            festival,
            year,
        } => {
            let c = &w.cities[*city];
            format!(
                "The {festival} of {year} was held in {}, near {}. Thousands of people from across {} attended.",
                c.name, c.landmark, c.country
            )
        }
        Event::Merger {
            buyer,
            target,
            year,
        } => format!(
            "In {year}, {} acquired {}. The deal was announced in {}.",
            w.companies[*buyer].name,
            w.companies[*target].name,
            w.cities[w.companies[*buyer].city].name
        ),
    }
}

/// A short story that does arithmetic in prose.
pub fn arithmetic_story(w: &World, rng: &mut Rng) -> String {
    let p = &w.people[rng.random_range(0..w.people.len())];
    let (_, plural) = pick(rng, lx::COUNT_NOUNS);
    let a = rng.random_range(2..60);
    let b = rng.random_range(2..40);
    if rng.random_bool(0.5) {
        format!(
            "{} had {a} {plural}. After buying {b} more, {} had {} {plural} in total.",
            p.name,
            p.first,
            a + b
        )
    } else {
        let (hi, lo) = (a.max(b) + 1, a.min(b));
        format!(
            "{} had {hi} {plural} and gave {lo} away, so {} was left with {}.",
            p.name,
            p.first,
            hi - lo
        )
    }
}

/// A pre-training document of a random genre; returns (genre, text).
pub fn document(w: &World, rng: &mut Rng) -> (&'static str, String) {
    let x: f64 = rng.random();
    if x < 0.32 {
        ("bio", {
            let k = rng.random_range(0..w.people.len());
            bio(w, rng, k)
        })
    } else if x < 0.44 {
        ("city", {
            let k = rng.random_range(0..w.cities.len());
            city_profile(w, rng, k)
        })
    } else if x < 0.58 {
        ("company", {
            let k = rng.random_range(0..w.companies.len());
            company_history(w, rng, k)
        })
    } else if x < 0.78 {
        (
            "review",
            {
                let k = rng.random_range(0..w.products.len());
                review(w, rng, k, true)
            }
            .0,
        )
    } else if x < 0.90 {
        ("event", {
            let k = rng.random_range(0..w.events.len());
            event_report(w, rng, k)
        })
    } else {
        ("arithmetic", arithmetic_story(w, rng))
    }
}

/// A worked arithmetic problem: (question, steps, answer).
pub fn arithmetic(rng: &mut Rng) -> (String, Vec<String>, i64) {
    let a: i64 = rng.random_range(2..100);
    let b: i64 = rng.random_range(2..100);
    match rng.random_range(0..4) {
        0 => (
            format!("What is {a} + {b}?"),
            vec![format!("{a} + {b} = {}.", a + b)],
            a + b,
        ),
        1 => {
            let (x, y) = (a.max(b), a.min(b));
            (
                format!("What is {x} - {y}?"),
                vec![format!("{x} - {y} = {}.", x - y)],
                x - y,
            )
        }
        2 => {
            let (x, y) = (a % 13 + 2, b % 12 + 2);
            (
                format!("What is {x} * {y}?"),
                vec![format!("{x} * {y} = {}.", x * y)],
                x * y,
            )
        }
        _ => {
            let (x, y, z) = (a % 12 + 2, b % 9 + 2, rng.random_range(1..50));
            let m = x * y;
            (
                format!("Compute {x} * {y} + {z}."),
                vec![
                    format!("{x} * {y} = {m}."),
                    format!("{m} + {z} = {}.", m + z),
                ],
                m + z,
            )
        }
    }
}

/// A short, checkable instruction: (instruction, input, output, task name).
pub fn small_task(rng: &mut Rng) -> (String, String, String, &'static str) {
    match rng.random_range(0..5) {
        0 => {
            let w = pick(rng, lx::SHORT_WORDS);
            (
                "Reverse the letters of the word.".into(),
                w.into(),
                w.chars().rev().collect(),
                "reverse",
            )
        }
        1 => {
            let ws: Vec<&str> = (0..3).map(|_| pick(rng, lx::SHORT_WORDS)).collect();
            let s = ws.join(" ");
            (
                "Rewrite the phrase in capital letters.".into(),
                s.clone(),
                s.to_uppercase(),
                "uppercase",
            )
        }
        2 => {
            let mut ns: Vec<i64> = (0..rng.random_range(3..6))
                .map(|_| rng.random_range(1..100))
                .collect();
            let input = ns.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            ns.sort_unstable();
            let out = ns.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            (
                "Sort the numbers from smallest to largest.".into(),
                input,
                out,
                "sort",
            )
        }
        3 => {
            let n = rng.random_range(3..9);
            let ws: Vec<&str> = (0..n).map(|_| pick(rng, lx::SHORT_WORDS)).collect();
            (
                "How many words are in this sentence?".into(),
                ws.join(" "),
                n.to_string(),
                "count_words",
            )
        }
        _ => {
            let ns: Vec<i64> = (0..rng.random_range(3..7))
                .map(|_| rng.random_range(1..500))
                .collect();
            let input = ns.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            let max = ns.iter().copied().max().unwrap_or(0);
            (
                "Which number is the largest?".into(),
                input,
                max.to_string(),
                "max",
            )
        }
    }
}

/// A multi-step word problem with its reasoning: (question, steps, answer).
pub fn word_problem(w: &World, rng: &mut Rng) -> (String, Vec<String>, i64) {
    let p = &w.people[rng.random_range(0..w.people.len())];
    let friend = &w.people[rng.random_range(0..w.people.len())];
    let (_, plural) = pick(rng, lx::COUNT_NOUNS);
    let container = pick(rng, lx::CONTAINERS);
    let start: i64 = rng.random_range(3..40);
    let k: i64 = rng.random_range(2..6);
    let each: i64 = rng.random_range(2..12);
    let bought = k * each;
    let total = start + bought;
    let give: i64 = rng.random_range(1..total.min(30));
    let left = total - give;
    let f = &p.first;
    let mut steps = vec![
        format!("{f} starts with {start} {plural}."),
        format!("{k} {container} of {each} {plural} is {k} * {each} = {bought} {plural}."),
        format!("{start} + {bought} = {total}."),
        format!(
            "After giving {give} to {}, {total} - {give} = {left}.",
            friend.first
        ),
    ];
    let mut question = format!(
        "{} has {start} {plural}. {f} buys {k} {container} with {each} {plural} each, then gives {give} to {}. How many {plural} does {f} have now?",
        p.name, friend.name
    );
    let mut answer = left;
    if rng.random_bool(0.4) {
        let groups: i64 = rng.random_range(2..5);
        let share = left / groups;
        let rest = left - share * groups;
        question = question.replace(
            &format!("How many {plural} does {f} have now?"),
            &format!("{f} then shares them equally among {groups} friends as far as possible. How many {plural} does each friend get?"),
        );
        steps.push(format!(
            "{left} / {groups} = {share} with {rest} left over."
        ));
        answer = share;
    }
    (question, steps, answer)
}

/// A fact with a wrong object of the same relation taken from another fact: the wrong answer.
pub fn wrong_statement(facts: &[Fact], rng: &mut Rng, fact: &Fact) -> String {
    for _ in 0..20 {
        let other = &facts[rng.random_range(0..facts.len())];
        if other.relation == fact.relation && other.object != fact.object {
            return fact.statement.replace(&fact.object, &other.object);
        }
    }
    fact.statement.replace(&fact.object, "unknown")
}
