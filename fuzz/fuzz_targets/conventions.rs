//! Every convention on arbitrary JSON objects: a record read in a convention, written back in it
//! and read again is the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poisonlab_data::Convention;
use poisonlab_data::convention::{CONVENTIONS, from_object, to_object};
use poisonlab_data::format::parse_object;

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = parse_object(data) else { return };
    for (conv, _, _) in CONVENTIONS {
        let conv: Convention = *conv;
        let Ok(rec) = from_object(obj.clone(), conv, || "fuzz-0".into()) else { continue };
        let Ok(back) = to_object(&rec, conv) else { continue };
        let again = from_object(back, conv, || "fuzz-0".into())
            .unwrap_or_else(|e| panic!("{} cannot re-read its own output: {e:?}", conv.name()));
        assert_eq!(rec, again, "{}", conv.name());
    }
});
