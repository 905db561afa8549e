//! Keeps a dependency's panic from becoming ours. The Parquet decoder asserts and divides on
//! values it reads from the file (a corrupted page header, a negative offset); a file is input, and
//! input must give an error that names it, never an abort. `contain` runs a closure, turns a panic
//! into its message, and keeps the default hook from printing a stack trace for it.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Runs `f`; a panic inside comes back as `Err(message)`.
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINING.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = CONTAINING.with(|c| c.replace(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(was));
    r.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_becomes_its_message_and_the_thread_goes_on() {
        let r: Result<(), String> = super::contain(|| panic!("attempt to divide by zero"));
        assert_eq!(r, Err("attempt to divide by zero".to_string()));
        assert_eq!(super::contain(|| 7), Ok(7));
    }
}
