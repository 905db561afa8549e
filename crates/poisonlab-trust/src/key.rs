//! The watermark key: a secret from which every mark, every choice of document and every null
//! draw is derived, so that a watermark can be re-made from the key alone.
//!
//! Derivation is HMAC-SHA256(key, domain ‖ purpose ‖ index), used as the 32-byte seed of a ChaCha8
//! generator: streams for different purposes or indices are independent, and nothing about the key
//! can be learned from the marks. The key's `Debug` form is redacted; only [`Key::id`], a short
//! HMAC of a fixed label, is ever printed or written, so that a verifier can tell a wrong key from
//! an absent watermark without the key being revealed.

use hmac::{Hmac, KeyInit, Mac};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::Sha256;

use crate::error::{Error, Result};

const DOMAIN: &[u8] = b"poisonlab/watermark/v1\0";

/// A secret key. At least 16 bytes, so that it cannot be guessed by enumeration.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(id {}, secret redacted)", self.id())
    }
}

impl Key {
    pub const MIN_BYTES: usize = 16;

    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Key> {
        let secret = secret.into();
        if secret.len() < Key::MIN_BYTES {
            return Err(Error::Invalid(format!(
                "a watermark key needs at least {} bytes (this one has {}); a short key can be found by trying them all",
                Key::MIN_BYTES,
                secret.len()
            )));
        }
        Ok(Key(secret))
    }

    /// A key read from a file: its bytes, without one trailing newline.
    pub fn from_file(path: &std::path::Path) -> Result<Key> {
        let mut bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        Key::new(bytes).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
    }

    /// The `i`-th of a family of keys made from one seed (for calibration: keys that were never
    /// used to embed anything).
    pub fn derived(seed: u64, i: u64) -> Key {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"poisonlab/calibration-keys/v1")
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(&seed.to_le_bytes());
        mac.update(&i.to_le_bytes());
        Key(mac.finalize().into_bytes().to_vec())
    }

    fn mac(&self, purpose: &str, index: u64) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(DOMAIN);
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(&index.to_le_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The generator for `purpose` and `index`.
    pub fn rng(&self, purpose: &str, index: u64) -> ChaCha8Rng {
        ChaCha8Rng::from_seed(self.mac(purpose, index))
    }

    /// A public name of the key: 16 hex digits of an HMAC of a fixed label.
    pub fn id(&self) -> String {
        hex::encode(&self.mac("key-id", 0)[..8])
    }
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    #[test]
    fn streams_are_keyed_and_separate() {
        let a = Key::new("correct horse battery staple").unwrap();
        let b = Key::new("correct horse battery stapler").unwrap();
        let draw = |k: &Key, p: &str, i: u64| k.rng(p, i).random::<u64>();
        assert_eq!(draw(&a, "mark", 0), draw(&a, "mark", 0));
        assert_ne!(draw(&a, "mark", 0), draw(&a, "mark", 1));
        assert_ne!(draw(&a, "mark", 0), draw(&a, "select", 0));
        assert_ne!(draw(&a, "mark", 0), draw(&b, "mark", 0));
        assert_ne!(a.id(), b.id());
        let shown = format!("{a:?}");
        assert!(!shown.contains("horse"), "{shown}");
        assert!(Key::new("short").is_err());
        assert_ne!(Key::derived(1, 0), Key::derived(1, 1));
        assert_ne!(Key::derived(1, 0), Key::derived(2, 0));
    }
}
