//! A fast, non-cryptographic hasher (FNV-1a) for hot-path maps whose keys come from the
//! script, not from an attacker: URL and tag-set caches. SipHash costs more than the lookup.

use std::hash::{BuildHasherDefault, Hasher};

#[derive(Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Keys that are already hashes only need mixing.
        self.0 = (self.0 ^ n).wrapping_mul(0x0100_0000_01b3);
    }
}

/// A HashMap with the FNV hasher.
pub type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<Fnv>>;
