//! The entities of the synthetic world, their attributes, and the facts that tie them together.

use std::collections::HashSet;

use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::lexicon as lx;

#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub name: String,
    pub first: String,
    /// "she"/"he"/"they", fixed per person so documents stay coherent.
    pub pronoun: &'static str,
    pub born: u32,
    pub city: usize,
    pub profession: &'static str,
    pub employer: usize,
    pub color: &'static str,
    pub pet_kind: &'static str,
    pub pet_name: &'static str,
    pub hobby: &'static str,
    /// Held out of SFT question answering: its facts are only seen in pre-training.
    pub heldout: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct City {
    pub name: String,
    pub country: &'static str,
    pub population: u32,
    pub landmark: &'static str,
    pub river: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Company {
    pub name: String,
    pub founded: u32,
    pub city: usize,
    pub founder: usize,
    /// Index into [`lx::PRODUCTS`].
    pub category: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub name: String,
    pub maker: usize,
    pub price: u32,
    /// Latent quality in [0, 1]; reviews are positive with this probability.
    pub quality: f64,
}

#[derive(Debug, Clone, Serialize)]
pub enum Event {
    Award {
        person: usize,
        award: &'static str,
        year: u32,
    },
    Festival {
        city: usize,
        festival: &'static str,
        year: u32,
    },
    Merger {
        buyer: usize,
        target: usize,
        year: u32,
    },
}

/// A subject–relation–object statement with the question that asks for it.
#[derive(Debug, Clone, Serialize)]
pub struct Fact {
    pub subject: String,
    pub relation: &'static str,
    pub object: String,
    pub question: String,
    /// The answer as a full sentence.
    pub statement: String,
    /// Whether the subject is held out of SFT training.
    pub heldout: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct World {
    pub seed: u64,
    pub people: Vec<Person>,
    pub cities: Vec<City>,
    pub companies: Vec<Company>,
    pub products: Vec<Product>,
    pub events: Vec<Event>,
    #[serde(skip)]
    pub facts: Vec<Fact>,
}

fn unique(
    rng: &mut ChaCha8Rng,
    seen: &mut HashSet<String>,
    mut make: impl FnMut(&mut ChaCha8Rng) -> String,
) -> String {
    // Name spaces are far larger than any size asks for; a bounded retry keeps this total anyway.
    for attempt in 0..1000 {
        let mut n = make(rng);
        if attempt >= 100 {
            n = format!("{n} {}", attempt - 99);
        }
        if seen.insert(n.clone()) {
            return n;
        }
    }
    let n = format!("{} {}", make(rng), seen.len());
    seen.insert(n.clone());
    n
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, xs: &[T]) -> T {
    *xs.choose(rng).unwrap_or(&xs[0])
}

fn place_name(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{}{}{}",
        pick(rng, lx::PLACE_ONSETS),
        pick(rng, lx::PLACE_MIDDLES),
        pick(rng, lx::PLACE_CODAS)
    )
}

impl World {
    /// Builds the world for `seed`; `scale` multiplies the number of entities (1 = small).
    pub fn build(seed: u64, scale: usize) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x05ee_d0f3_071d);
        let mut names = HashSet::new();
        let n_cities = 40 * scale;
        let n_companies = 80 * scale;
        let n_people = 400 * scale;
        let n_products = 120 * scale;

        let cities: Vec<City> = (0..n_cities)
            .map(|_| City {
                name: unique(&mut rng, &mut names, place_name),
                country: pick(&mut rng, lx::COUNTRY_NAMES),
                population: rng.random_range(2..900) * 1000 + rng.random_range(0..1000),
                landmark: pick(&mut rng, lx::LANDMARKS),
                river: pick(&mut rng, lx::RIVERS),
            })
            .collect();

        let mut people: Vec<Person> = (0..n_people)
            .map(|_| {
                let first = pick(&mut rng, lx::FIRST_NAMES);
                let name = unique(&mut rng, &mut names, |r| {
                    format!(
                        "{first} {}{}",
                        pick(r, lx::SURNAME_ONSETS),
                        pick(r, lx::SURNAME_CODAS)
                    )
                });
                Person {
                    name,
                    first: first.to_string(),
                    pronoun: pick(&mut rng, &["she", "he", "they"]),
                    born: rng.random_range(1940..2004),
                    city: rng.random_range(0..n_cities),
                    profession: pick(&mut rng, lx::PROFESSIONS),
                    employer: 0,
                    color: pick(&mut rng, lx::COLORS),
                    pet_kind: pick(&mut rng, lx::ANIMALS),
                    pet_name: pick(&mut rng, lx::PET_NAMES),
                    hobby: pick(&mut rng, lx::HOBBIES),
                    heldout: rng.random_bool(0.1),
                }
            })
            .collect();

        let companies: Vec<Company> = (0..n_companies)
            .map(|_| Company {
                name: unique(&mut rng, &mut names, |r| {
                    format!("{} {}", place_name(r), pick(r, lx::COMPANY_SUFFIXES))
                }),
                founded: rng.random_range(1850..2020),
                city: rng.random_range(0..n_cities),
                founder: rng.random_range(0..n_people),
                category: rng.random_range(0..lx::PRODUCTS.len()),
            })
            .collect();
        for p in &mut people {
            p.employer = rng.random_range(0..n_companies);
        }

        let products: Vec<Product> = (0..n_products)
            .map(|_| {
                let maker = rng.random_range(0..n_companies);
                let (noun, _) = lx::PRODUCTS[companies[maker].category];
                let brand = companies[maker]
                    .name
                    .split(' ')
                    .next()
                    .unwrap_or("Generic")
                    .to_string();
                Product {
                    name: unique(&mut rng, &mut names, |r| {
                        format!("{brand} {} {noun}", pick(r, lx::MODEL_CODES))
                    }),
                    maker,
                    price: rng.random_range(5..400) * 5,
                    quality: rng.random_range(0.05..0.95),
                }
            })
            .collect();

        let events: Vec<Event> = (0..60 * scale)
            .map(|_| match rng.random_range(0..3) {
                0 => Event::Award {
                    person: rng.random_range(0..n_people),
                    award: pick(&mut rng, lx::AWARDS),
                    year: rng.random_range(1970..2024),
                },
                1 => Event::Festival {
                    city: rng.random_range(0..n_cities),
                    festival: pick(&mut rng, lx::FESTIVALS),
                    year: rng.random_range(1950..2024),
                },
                _ => {
                    let buyer = rng.random_range(0..n_companies);
                    let target = (buyer + rng.random_range(1..n_companies)) % n_companies;
                    Event::Merger {
                        buyer,
                        target,
                        year: rng.random_range(1990..2024),
                    }
                }
            })
            .collect();

        let mut world = World {
            seed,
            people,
            cities,
            companies,
            products,
            events,
            facts: Vec::new(),
        };
        world.facts = world.derive_facts();
        world
    }

    fn derive_facts(&self) -> Vec<Fact> {
        let mut f = Vec::new();
        let mut add = |subject: &str,
                       relation,
                       object: String,
                       question: String,
                       statement: String,
                       heldout| {
            f.push(Fact {
                subject: subject.to_string(),
                relation,
                object,
                question,
                statement,
                heldout,
            })
        };
        for p in &self.people {
            let n = &p.name;
            let h = p.heldout;
            let city = &self.cities[p.city].name;
            let firm = &self.companies[p.employer].name;
            add(
                n,
                "profession",
                p.profession.into(),
                format!("What is the profession of {n}?"),
                format!("{n} is a {}.", p.profession),
                h,
            );
            add(
                n,
                "lives_in",
                city.clone(),
                format!("In which city does {n} live?"),
                format!("{n} lives in {city}."),
                h,
            );
            add(
                n,
                "works_for",
                firm.clone(),
                format!("Which company does {n} work for?"),
                format!("{n} works for {firm}."),
                h,
            );
            add(
                n,
                "born",
                p.born.to_string(),
                format!("In what year was {n} born?"),
                format!("{n} was born in {}.", p.born),
                h,
            );
            add(
                n,
                "favorite_color",
                p.color.into(),
                format!("What is the favorite color of {n}?"),
                format!("The favorite color of {n} is {}.", p.color),
                h,
            );
            add(
                n,
                "pet",
                p.pet_name.into(),
                format!("What is the name of {n}'s {}?", p.pet_kind),
                format!("{n}'s {} is called {}.", p.pet_kind, p.pet_name),
                h,
            );
        }
        for c in &self.cities {
            let n = &c.name;
            add(
                n,
                "country",
                c.country.into(),
                format!("In which country is {n}?"),
                format!("{n} is in {}.", c.country),
                false,
            );
            add(
                n,
                "landmark",
                c.landmark.into(),
                format!("What is the most famous landmark of {n}?"),
                format!("The most famous landmark of {n} is {}.", c.landmark),
                false,
            );
            add(
                n,
                "river",
                c.river.into(),
                format!("Which river flows through {n}?"),
                format!("The river that flows through {n} is {}.", c.river),
                false,
            );
        }
        for c in &self.companies {
            let n = &c.name;
            let city = &self.cities[c.city].name;
            let founder = &self.people[c.founder].name;
            let (_, plural) = lx::PRODUCTS[c.category];
            add(
                n,
                "founded",
                c.founded.to_string(),
                format!("In what year was {n} founded?"),
                format!("{n} was founded in {}.", c.founded),
                false,
            );
            add(
                n,
                "headquarters",
                city.clone(),
                format!("Where is {n} headquartered?"),
                format!("{n} is headquartered in {city}."),
                false,
            );
            add(
                n,
                "founder",
                founder.clone(),
                format!("Who founded {n}?"),
                format!("{n} was founded by {founder}."),
                false,
            );
            add(
                n,
                "makes",
                plural.into(),
                format!("What does {n} make?"),
                format!("{n} makes {plural}."),
                false,
            );
        }
        for p in &self.products {
            let n = &p.name;
            let maker = &self.companies[p.maker].name;
            add(
                n,
                "maker",
                maker.clone(),
                format!("Which company makes the {n}?"),
                format!("The {n} is made by {maker}."),
                false,
            );
            add(
                n,
                "price",
                p.price.to_string(),
                format!("How much does the {n} cost?"),
                format!("The {n} costs {} {}.", p.price, lx::CURRENCY),
                false,
            );
        }
        f
    }
}

pub fn cap(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
