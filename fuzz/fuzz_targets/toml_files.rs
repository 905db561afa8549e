//! The files people write, on arbitrary text: poison specs, cleaning pipelines, experiments. Each
//! parses or says why; none panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(body) else { return };
    let p = Path::new("fuzz.toml");
    match sel % 3 {
        0 => drop(poisonlab_poison::Spec::parse(text, p)),
        1 => drop(poisonlab_clean::filter::Pipeline::parse(text, p)),
        _ => drop(poisonlab_lab::experiment::Plan::parse(text, p, &[])),
    }
});
