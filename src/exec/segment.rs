//! Execution-segment arithmetic: which share of VUs and iterations a worker runs.
//!
//! A segment is the interval [from, to) of (0, 1]. For a count `n`, the segment runs
//! `floor(n*to) - floor(n*from)`; summed over segments that tile (0, 1] this is exactly `n`.
//! VU number `g` (1-based) belongs to the segment whose share grows when the count goes
//! from g-1 to g, so ramping to T VUs activates global VUs 1..=T however the plan is split.

/// A fraction interval, kept as integers to stay exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub from_num: u64,
    pub to_num: u64,
    pub den: u64,
}

impl Segment {
    /// The `i`-th of `n` equal segments.
    pub fn nth(i: u64, n: u64) -> Segment {
        Segment {
            from_num: i,
            to_num: i + 1,
            den: n,
        }
    }

    /// This segment's share of `n`.
    pub fn scale(&self, n: u64) -> u64 {
        floor_mul(n, self.to_num, self.den) - floor_mul(n, self.from_num, self.den)
    }

    /// Whether global VU number `g` (1-based) belongs to this segment.
    pub fn owns(&self, g: u64) -> bool {
        g > 0 && self.scale(g) > self.scale(g - 1)
    }

    /// The global numbers of this segment's first `count` VUs, in order.
    pub fn owned_ids(&self, total: u64) -> Vec<u64> {
        (1..=total).filter(|&g| self.owns(g)).collect()
    }
}

fn floor_mul(n: u64, num: u64, den: u64) -> u64 {
    ((n as u128 * num as u128) / den as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_exactly() {
        for n in [0u64, 1, 7, 100, 25_000] {
            for w in 1..=5u64 {
                let total: u64 = (0..w).map(|i| Segment::nth(i, w).scale(n)).sum();
                assert_eq!(total, n);
            }
        }
    }

    #[test]
    fn every_vu_has_exactly_one_owner() {
        for g in 1..200u64 {
            assert_eq!((0..3).filter(|&i| Segment::nth(i, 3).owns(g)).count(), 1);
        }
        let ids = Segment::nth(0, 2).owned_ids(6);
        assert_eq!(ids, vec![2, 4, 6]);
    }
}
