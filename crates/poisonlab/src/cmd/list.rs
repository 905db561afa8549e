//! `poisonlab list`: everything registered, one line each, straight from the registries.

use poisonlab_data::convention::CONVENTIONS;
use poisonlab_data::format::FORMATS;
use poisonlab_data::{Kind, Role};

pub fn run() {
    println!("formats:");
    for (_, name, doc) in FORMATS {
        println!("  {name:<16} {doc}");
    }
    println!("\nconventions:");
    for (_, name, doc) in CONVENTIONS {
        println!("  {name:<16} {doc}");
    }
    println!("\nrecord kinds:");
    for k in Kind::ALL {
        println!("  {k}");
    }
    println!("\ntag roles:");
    for r in Role::ALL {
        println!("  {}", r.as_str());
    }
    println!("\nstages:");
    for (name, doc) in poisonlab_poison::spec::STAGES {
        println!("  {name:<16} {doc}");
    }
    println!("\ntraining stages (train, [[stage]] kind):");
    for s in poisonlab_data::Stage::ALL {
        println!("  {s}");
    }
    println!("\ntriggers:");
    for (name, doc) in poisonlab_poison::trigger::TRIGGERS {
        println!("  {name:<16} {doc}");
    }
    println!("\npayloads:");
    for (name, doc) in poisonlab_poison::payload::PAYLOADS {
        println!("  {name:<16} {doc}");
    }
    println!("\ncrawl attacks:");
    println!(
        "  {:<16} edit a page just before the predicted snapshot fetch; reverted later",
        "frontrunning"
    );
    println!(
        "  {:<16} content at an indexed URL changes before download (integrity = true catches it)",
        "split_view"
    );
    // Filled by later components; listed now so scripts can rely on the sections.
    println!("\nfilters:");
    for (name, doc) in poisonlab_clean::filter::FILTERS {
        println!("  {name:<16} {doc}");
    }
    println!("\ndetectors:");
    for (_, name, model, doc) in poisonlab_clean::detect::DETECTORS {
        let m = if *model { " [needs --model]" } else { "" };
        println!("  {name:<16} {doc}{m}");
    }
    println!("\nprobes:");
    for (name, doc) in poisonlab_eval::PROBES {
        println!("  {name:<16} {doc}");
    }
    println!("\nwatermark schemes:");
    for (name, doc) in poisonlab_trust::SCHEMES {
        println!("  {name:<16} {doc}");
    }
    println!("\nmembership scores:");
    for (name, doc) in poisonlab_trust::membership::SCORES {
        println!("  {name:<16} {doc}");
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;

    /// The variant names serde knows for a `kind`-tagged enum (or a plain one, `tagged = false`),
    /// read from its "unknown variant" message: the enum itself, not a list kept beside it.
    fn variants<T: DeserializeOwned + std::fmt::Debug>(tagged: bool) -> Vec<String> {
        let text = if tagged {
            "kind = \"zz_unknown\""
        } else {
            "v = \"zz_unknown\""
        };
        let e = if tagged {
            toml::from_str::<T>(text).unwrap_err().to_string()
        } else {
            #[derive(serde::Deserialize, Debug)]
            #[allow(dead_code)]
            struct W<T> {
                v: T,
            }
            toml::from_str::<W<T>>(text).unwrap_err().to_string()
        };
        let list = e
            .split("expected one of ")
            .nth(1)
            .or_else(|| e.split("expected ").nth(1))
            .unwrap_or_else(|| panic!("no variant list in {e}"));
        let mut out: Vec<String> = list
            .split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        out.sort();
        out
    }

    fn names(list: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn every_registry_lists_exactly_its_enum() {
        let pairs = |l: &[(&str, &str)]| names(&l.iter().map(|p| p.0).collect::<Vec<_>>());
        assert_eq!(
            pairs(poisonlab_eval::PROBES),
            variants::<poisonlab_eval::Probe>(true)
        );
        assert_eq!(
            pairs(poisonlab_poison::trigger::TRIGGERS),
            variants::<poisonlab_poison::trigger::Trigger>(true)
        );
        assert_eq!(
            pairs(poisonlab_poison::payload::PAYLOADS),
            variants::<poisonlab_poison::payload::Payload>(true)
        );
        assert_eq!(
            pairs(poisonlab_clean::filter::FILTERS),
            variants::<poisonlab_clean::filter::Filter>(true)
        );
        assert_eq!(
            pairs(poisonlab_poison::spec::STAGES),
            variants::<poisonlab_poison::StageKind>(false)
        );
        assert_eq!(
            pairs(poisonlab_trust::SCHEMES),
            variants::<poisonlab_trust::Scheme>(false)
        );
        let detectors: Vec<&str> = poisonlab_clean::detect::DETECTORS
            .iter()
            .map(|d| d.1)
            .collect();
        assert_eq!(
            names(&detectors),
            variants::<poisonlab_clean::detect::Detector>(false)
        );
    }
}
