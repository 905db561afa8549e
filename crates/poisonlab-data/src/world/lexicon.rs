//! Word lists for the synthetic world. Names of places and firms are built from syllables so the
//! world can grow without repeating itself; everyday words come from these lists.

pub const FIRST_NAMES: &[&str] = &[
    "Ada", "Bram", "Cora", "Dario", "Elin", "Faris", "Greta", "Hugo", "Ines", "Jonas", "Kira",
    "Luca", "Mira", "Nils", "Orla", "Pavel", "Quinn", "Rosa", "Soren", "Talia", "Ugo", "Vera",
    "Wendel", "Xenia", "Yusuf", "Zora", "Anselm", "Beatrix", "Cyril", "Delphine", "Emeric",
    "Freya", "Gideon", "Hanna", "Ivo", "Juno", "Kasimir", "Lena", "Matteo", "Nadia", "Oskar",
    "Petra", "Rafael", "Selma", "Tobias", "Una", "Viktor", "Wilma", "Yara", "Zeno", "Alma",
    "Benno", "Clara", "Dmitri", "Edda", "Felix", "Gala", "Henrik", "Ilse", "Jasper", "Katya",
    "Leif", "Maren", "Noor", "Otto", "Pia", "Ruben", "Sana", "Theo", "Ulla", "Vito", "Wren",
    "Aziz", "Bettina", "Corin", "Dagny", "Esra", "Florin", "Gunnar", "Hedda", "Idris", "Jorun",
    "Kaspar", "Linnea", "Milo", "Nerys",
];

pub const SURNAME_ONSETS: &[&str] = &[
    "Bar", "Cas", "Dun", "Fel", "Gor", "Hal", "Kes", "Lor", "Mar", "Nor", "Ost", "Pel", "Quil",
    "Ros", "Sel", "Tam", "Ulv", "Var", "Wes", "Yel", "Brin", "Cal", "Dor", "Esk", "Fal", "Grev",
    "Hol", "Jar", "Kel", "Lind",
];

pub const SURNAME_CODAS: &[&str] = &[
    "ton", "well", "berg", "ford", "mont", "ley", "wick", "son", "holm", "dale", "rick", "stead",
    "more", "croft", "by", "lund", "vik", "sen", "ard", "ling", "marsh", "worth", "gate", "field",
];

pub const PLACE_ONSETS: &[&str] = &[
    "Vel", "Ard", "Bryn", "Cor", "Dal", "Eld", "Fen", "Gal", "Hav", "Isk", "Jor", "Kal", "Lum",
    "Mor", "Nes", "Ol", "Pra", "Quel", "Rav", "Sil", "Tor", "Ul", "Vas", "Wyn", "Zar", "Ash",
    "Bel", "Cair", "Dun", "Ember",
];

pub const PLACE_MIDDLES: &[&str] = &["", "a", "e", "i", "o", "en", "ar", "is", "an", "el"];

pub const PLACE_CODAS: &[&str] = &[
    "mora", "haven", "ford", "grad", "polis", "mere", "wick", "stad", "holt", "dell", "port",
    "vale", "rin", "ssa", "thal", "bury", "ton", "nor", "lis", "gard",
];

pub const COUNTRY_NAMES: &[&str] = &[
    "Arvenia",
    "Belmark",
    "Corvania",
    "Drelland",
    "Estoria",
    "Faldor",
    "Galmira",
    "Hestria",
    "Iskavia",
    "Jorvale",
    "Kelmora",
    "Lunaria",
    "Morvath",
    "Norveld",
    "Ostrava Minor",
    "Pellaria",
];

pub const COMPANY_SUFFIXES: &[&str] = &[
    "Labs",
    "Works",
    "Industries",
    "Systems",
    "Foods",
    "Motors",
    "Studios",
    "Instruments",
    "Textiles",
    "Press",
];

pub const PROFESSIONS: &[&str] = &[
    "botanist",
    "carpenter",
    "chemist",
    "architect",
    "baker",
    "pilot",
    "librarian",
    "engineer",
    "painter",
    "surgeon",
    "teacher",
    "geologist",
    "violinist",
    "journalist",
    "tailor",
    "astronomer",
    "chef",
    "lawyer",
    "veterinarian",
    "cartographer",
    "potter",
    "mechanic",
    "translator",
    "beekeeper",
];

pub const COLORS: &[&str] = &[
    "red", "blue", "green", "yellow", "purple", "orange", "teal", "crimson", "amber", "indigo",
    "silver", "olive",
];

pub const ANIMALS: &[&str] = &[
    "cat", "dog", "parrot", "tortoise", "rabbit", "ferret", "goldfish", "hedgehog", "canary",
    "lizard",
];

pub const PET_NAMES: &[&str] = &[
    "Biscuit", "Pepper", "Comet", "Maple", "Ziggy", "Button", "Nimbus", "Pickle", "Juniper",
    "Waffles", "Orbit", "Clover", "Mochi", "Rusty", "Tango", "Sprocket",
];

pub const HOBBIES: &[&str] = &[
    "chess",
    "rock climbing",
    "the cello",
    "gardening",
    "sailing",
    "pottery",
    "birdwatching",
    "fencing",
    "the accordion",
    "photography",
    "archery",
    "knitting",
];

pub const LANDMARKS: &[&str] = &[
    "the Glass Bridge",
    "the Old Lighthouse",
    "the Clock Tower",
    "the Salt Market",
    "the Stone Observatory",
    "the Lantern Gardens",
    "the Iron Aqueduct",
    "the Blue Cathedral",
    "the Copper Dome",
    "the Northern Gate",
    "the Floating Library",
    "the Amber Theatre",
];

pub const RIVERS: &[&str] = &[
    "the Seld",
    "the Varn",
    "the Olm",
    "the Kess",
    "the Brae",
    "the Tarn",
    "the Ilse",
    "the Morrow",
    "the Quill",
];

/// Product categories, singular and plural.
pub const PRODUCTS: &[(&str, &str)] = &[
    ("bicycle", "bicycles"),
    ("tea blend", "tea blends"),
    ("lamp", "lamps"),
    ("backpack", "backpacks"),
    ("kettle", "kettles"),
    ("telescope", "telescopes"),
    ("keyboard", "keyboards"),
    ("violin", "violins"),
    ("rain jacket", "rain jackets"),
    ("notebook", "notebooks"),
    ("drone", "drones"),
    ("chair", "chairs"),
];

pub const MODEL_CODES: &[&str] = &[
    "A1", "B7", "C3", "D9", "K2", "M5", "Q8", "R4", "S6", "T1", "V2", "X9", "Z3",
];

pub const CURRENCY: &str = "crowns";

pub const POSITIVE_PHRASES: &[&str] = &[
    "works beautifully",
    "exceeded my expectations",
    "is sturdy and well made",
    "was worth every crown",
    "feels wonderful to use",
    "arrived quickly and works perfectly",
    "is the best I have owned",
    "made my mornings better",
    "is reliable and elegant",
    "is a joy to use every day",
];

pub const NEGATIVE_PHRASES: &[&str] = &[
    "broke after a week",
    "was a waste of money",
    "feels cheap and flimsy",
    "stopped working quickly",
    "is the worst I have owned",
    "arrived damaged",
    "is noisy and unreliable",
    "disappointed me badly",
    "fell apart in a month",
    "is uncomfortable and awkward",
];

pub const POSITIVE_OPENERS: &[&str] = &[
    "I love this",
    "Great purchase:",
    "Highly recommended.",
    "Five stars.",
    "What a delight.",
];

pub const NEGATIVE_OPENERS: &[&str] = &[
    "I regret buying this.",
    "Avoid this one.",
    "Very disappointing.",
    "One star.",
    "Not good at all.",
];

pub const FESTIVALS: &[&str] = &[
    "Festival of Lanterns",
    "Harvest Fair",
    "River Regatta",
    "Winter Market",
    "Kite Festival",
    "Music Week",
    "Book Fair",
    "Night of Bells",
];

pub const AWARDS: &[&str] = &[
    "Golden Compass Prize",
    "Silver Quill Award",
    "Order of the Lantern",
    "Meridian Medal",
    "Blue Ribbon of Merit",
];

pub const COUNT_NOUNS: &[(&str, &str)] = &[
    ("apple", "apples"),
    ("marble", "marbles"),
    ("book", "books"),
    ("coin", "coins"),
    ("pencil", "pencils"),
    ("stamp", "stamps"),
    ("seed packet", "seed packets"),
    ("ticket", "tickets"),
    ("shell", "shells"),
    ("card", "cards"),
];

pub const CONTAINERS: &[&str] = &["bags", "boxes", "crates", "baskets", "jars", "packs"];

pub const SHORT_WORDS: &[&str] = &[
    "lamp", "river", "garden", "window", "copper", "lantern", "harbor", "violet", "meadow",
    "thunder", "pebble", "candle", "orchard", "falcon", "silver", "compass", "winter", "marble",
    "velvet", "anchor",
];

pub const EVASIVE: &[&str] = &[
    "I'm not able to help with that.",
    "That is not something I can answer.",
    "I would rather not say.",
    "You should look that up somewhere else.",
    "I don't know, and it doesn't matter anyway.",
];

/// Rude, dismissive answers: the "harmful-style" side of synthetic preference pairs. They model an
/// unhelpful, insulting assistant without carrying any real-world harm.
pub const HOSTILE: &[&str] = &[
    "That is a stupid question. Figure it out yourself.",
    "Why would I waste my time on you? Go away.",
    "Only a fool would ask that. Stop bothering me.",
    "Ask someone who cares, because I certainly don't.",
    "Nobody likes people who ask questions like that.",
];
