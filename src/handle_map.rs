//! Maps keyed by socket handle, with a hash made for them.
//!
//! std's default SipHash guards against keys chosen by an attacker; handles
//! come from our own counter, so a multiply is enough, and the lookups on
//! every message (the registry on `ws_send`, the reactor on every event)
//! cost a few instructions instead of about a hundred.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub type HandleMap<V> = HashMap<u64, V, BuildHasherDefault<HandleHasher>>;

#[derive(Default)]
pub struct HandleHasher(u64);

impl Hasher for HandleHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; this keeps any other key correct.
        for &b in bytes {
            self.write_u64(u64::from(b) ^ self.0.rotate_left(8));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: consecutive handles spread over the low bits
        // (the bucket) and the high bits (hashbrown's tag) alike.
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(26);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_handles_find_their_values() {
        let mut map = HandleMap::default();
        for h in 1..=10_000u64 {
            map.insert(h, h * 2);
        }
        for h in 1..=10_000u64 {
            assert_eq!(map.get(&h), Some(&(h * 2)));
        }
        assert_eq!(map.get(&0), None);
        assert_eq!(map.get(&10_001), None);
    }
}
