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
    // Filled by later components; listed now so scripts can rely on the sections.
    for section in [
        "recipes",
        "triggers",
        "payloads",
        "filters",
        "detectors",
        "probes",
    ] {
        println!("\n{section}:\n  (none registered yet)");
    }
}
