//! Random streams for `Math.random`-like primitives: wyrand, one `u64` of state.
//!
//! rand's `SmallRng` (xoshiro256++) keeps 32 bytes of state and sat in a `RefCell` in every
//! VU: 40 of the ~200 bytes of per-VU Rust state. wyrand passes PractRand and BigCrush and
//! is one multiply per number; a VU's stream is a `Cell<u64>`.

use rand::rand_core::impls::fill_bytes_via_next;
use rand::{RngCore, SeedableRng};
use std::cell::Cell;

/// The generator, as rand's traits see it (`random`, `random_range`, `fill`).
#[derive(Clone, Copy, Debug)]
pub struct WyRand(u64);

impl RngCore for WyRand {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0).wrapping_mul(u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db));
        ((t >> 64) as u64) ^ (t as u64)
    }

    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        fill_bytes_via_next(self, dst)
    }
}

impl SeedableRng for WyRand {
    type Seed = [u8; 8];

    fn from_seed(seed: [u8; 8]) -> WyRand {
        WyRand(u64::from_le_bytes(seed))
    }
}

/// A stream kept in a `Cell`: borrowed as a generator for the length of one call.
#[derive(Debug)]
pub struct Stream(Cell<u64>);

impl Stream {
    pub fn new(rng: WyRand) -> Stream {
        Stream(Cell::new(rng.0))
    }

    /// Runs `f` on the stream; what it draws advances the stream.
    pub fn with<R>(&self, f: impl FnOnce(&mut WyRand) -> R) -> R {
        let mut rng = WyRand(self.0.get());
        let out = f(&mut rng);
        self.0.set(rng.0);
        out
    }

    /// `randomSeed(s)`: the stream starts over from `s`.
    pub fn reseed(&self, seed: u64) {
        self.0.set(WyRand::seed_from_u64(seed).0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn a_seeded_stream_repeats_and_advances() {
        let a = Stream::new(WyRand::seed_from_u64(7));
        let b = Stream::new(WyRand::seed_from_u64(7));
        let first: Vec<u64> = (0..4).map(|_| a.with(|r| r.next_u64())).collect();
        let again: Vec<u64> = (0..4).map(|_| b.with(|r| r.next_u64())).collect();
        assert_eq!(first, again);
        assert!(first.windows(2).all(|w| w[0] != w[1]));
        b.reseed(7);
        assert_eq!(b.with(|r| r.next_u64()), first[0]);
    }

    #[test]
    fn floats_and_ranges_cover_their_interval_evenly() {
        let s = Stream::new(WyRand::seed_from_u64(1));
        let mut buckets = [0u32; 10];
        for _ in 0..100_000 {
            let x: f64 = s.with(|r| r.random());
            assert!((0.0..1.0).contains(&x));
            buckets[(x * 10.0) as usize] += 1;
        }
        // 10,000 expected per bucket; 5 standard deviations is ~475.
        assert!(
            buckets.iter().all(|&n| n.abs_diff(10_000) < 500),
            "{buckets:?}"
        );
        let mut seen = [false; 6];
        for _ in 0..1_000 {
            seen[s.with(|r| r.random_range(1..=6)) as usize - 1] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
