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
    println!("\nprobes:\n  (none registered yet)");
}
