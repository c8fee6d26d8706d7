//! A fast, non-cryptographic hasher for hot-path maps whose keys come from the script, not
//! from an attacker: URL and tag-set caches. SipHash costs more than the lookup; FNV-1a, the
//! hasher before this one, takes a multiply per byte (a journey request hashes its URL and
//! its tags: ~5 instructions per byte).

use std::hash::{BuildHasherDefault, Hasher};

/// Eight bytes at a time, each word folded in with a 64x64->128-bit multiply whose halves
/// are xored (wyhash's and foldhash's mixing step), so every input bit reaches every output
/// bit. The length of each write goes in first, so a zero-padded tail is not ambiguous.
#[derive(Clone, Copy)]
pub struct Fold(u64);

const SEED: u64 = 0xa076_1d64_78bd_642f;
const MULTIPLIER: u64 = 0xe703_7ed1_a0b4_28db;

fn fold(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

impl Default for Fold {
    fn default() -> Self {
        Fold(SEED)
    }
}

impl Hasher for Fold {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = fold(self.0 ^ bytes.len() as u64, MULTIPLIER);
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            h = fold(
                h ^ u64::from_le_bytes(w.try_into().expect("8 bytes")),
                MULTIPLIER,
            );
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut last = [0u8; 8];
            last[..tail.len()].copy_from_slice(tail);
            h = fold(h ^ u64::from_le_bytes(last), MULTIPLIER);
        }
        self.0 = h;
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = fold(self.0 ^ n, MULTIPLIER);
    }
}

/// A HashMap with the [`Fold`] hasher.
pub type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<Fold>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(parts: &[&[u8]]) -> u64 {
        let mut h = Fold::default();
        for p in parts {
            h.write(p);
        }
        h.finish()
    }

    #[test]
    fn writes_are_told_apart_by_length_order_and_every_byte() {
        assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"a", b"bc"]));
        assert_ne!(hash(&[b"a"]), hash(&[b"a\0"]));
        assert_ne!(hash(&[b"x", b"y"]), hash(&[b"y", b"x"]));
        assert_eq!(hash(&[b"same"]), hash(&[b"same"]));
        // Each bit of a 20-byte key changes the hash.
        let base = *b"http://127.0.0.1/a/b";
        let mut seen = std::collections::HashSet::new();
        seen.insert(hash(&[&base]));
        for i in 0..base.len() * 8 {
            let mut k = base;
            k[i / 8] ^= 1 << (i % 8);
            assert!(seen.insert(hash(&[&k])), "bit {i}");
        }
    }
}
