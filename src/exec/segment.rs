//! Execution-segment arithmetic: which share of VUs and iterations a worker runs.
//!
//! A segment is the interval [from, to) of (0, 1]. For a count `n`, the segment runs
//! `floor(n*to) - floor(n*from)`; summed over segments that tile (0, 1] this is exactly `n`.
//! VU number `g` (1-based) belongs to the segment whose share grows when the count goes
//! from g-1 to g, so ramping to T VUs activates global VUs 1..=T however the plan is split.

/// A fraction interval, kept as integers to stay exact. The whole plan is `0:1`.
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

    pub const WHOLE: Segment = Segment {
        from_num: 0,
        to_num: 1,
        den: 1,
    };

    /// The `i`-th of `n` equal parts of this segment (how a process splits its segment
    /// among its workers).
    pub fn part(&self, i: u64, n: u64) -> Segment {
        let width = self.to_num - self.from_num;
        Segment {
            from_num: self.from_num * n + width * i,
            to_num: self.from_num * n + width * (i + 1),
            den: self.den * n,
        }
    }

    /// The segment from one point to another, each a fraction (numerator, denominator).
    pub fn between(from: (u64, u64), to: (u64, u64)) -> Segment {
        let den = lcm(from.1, to.1);
        Segment {
            from_num: from.0 * (den / from.1),
            to_num: to.0 * (den / to.1),
            den,
        }
    }

    /// Parses k6's `--execution-segment` syntax: `from:to` or `to` (from 0), each point a
    /// fraction (`1/4`), a percentage (`25%`) or a decimal (`0.25`).
    pub fn parse(text: &str) -> Result<Segment, String> {
        let (from, to) = match text.split_once(':') {
            Some((a, b)) => (parse_point(a)?, parse_point(b)?),
            None => ((0, 1), parse_point(text)?),
        };
        let den = lcm(from.1, to.1);
        let seg = Segment {
            from_num: from.0 * (den / from.1),
            to_num: to.0 * (den / to.1),
            den,
        };
        if seg.to_num > seg.den {
            return Err(format!("segment {text:?} ends after 1"));
        }
        if seg.from_num >= seg.to_num {
            return Err(format!("segment {text:?} must start before it ends"));
        }
        Ok(seg)
    }

    /// Checks that this segment is one step of k6's `--execution-segment-sequence`
    /// (`0,1/3,2/3,1`). The split does not depend on the sequence: any segments that tile
    /// (0, 1] divide every count exactly, so the sequence only has to contain this segment.
    pub fn check_in_sequence(&self, sequence: &str) -> Result<(), String> {
        let points = sequence
            .split(',')
            .map(|p| parse_point(p.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if points
            .windows(2)
            .any(|w| w[0].0 * w[1].1 >= w[1].0 * w[0].1)
        {
            return Err(format!("sequence {sequence:?} must be increasing"));
        }
        if points.iter().any(|p| p.0 > p.1) {
            return Err(format!("sequence {sequence:?} goes past 1"));
        }
        let same =
            |p: (u64, u64), num: u64| p.0 as u128 * self.den as u128 == num as u128 * p.1 as u128;
        if points
            .windows(2)
            .any(|w| same(w[0], self.from_num) && same(w[1], self.to_num))
        {
            Ok(())
        } else {
            Err(format!(
                "segment {} is not one of the steps of sequence {sequence:?}",
                self
            ))
        }
    }

    /// The share of the plan as a percentage (for the banner).
    pub fn percent(&self) -> f64 {
        (self.to_num - self.from_num) as f64 * 100.0 / self.den as f64
    }

    /// This segment's share of `n` VUs: how many of VUs 1..=n it owns (see [`Self::owns`]).
    /// Never shrinks as `n` grows, and the shares of segments that tile 0:1 add up to `n`.
    pub fn scale(&self, n: u64) -> u64 {
        let (to, from) = (self.to_num as u128, self.from_num as u128);
        let den = self.den as u128;
        // VUs 1..=n are the points 1..n+1 of the sequence minus point 0.
        let upto = |c: u128| below(n.saturating_add(1), c, den) - below(1, c, den);
        upto(to) - upto(from)
    }

    /// Whether global VU number `g` (1-based) belongs to this segment: VU g sits at point
    /// vdc(g) of the base-2 van der Corput sequence (g's bits mirrored behind the binary
    /// point), and a segment owns the points in [from, to). So segments that tile 0:1 own
    /// every VU exactly once, a process's worker parts split exactly what it owns, and any
    /// first n VUs spread over the segments within O(log n) of their shares (exactly, for
    /// splits into powers of two).
    pub fn owns(&self, g: u64) -> bool {
        if g == 0 {
            return false;
        }
        let x = g.reverse_bits() as u128; // vdc(g) = x / 2^64, exactly
        let den = self.den as u128;
        (self.from_num as u128) << 64 <= x * den && x * den < (self.to_num as u128) << 64
    }

    /// The global numbers of this segment's VUs among the first `total`, in order.
    pub fn owned_ids(&self, total: u64) -> Vec<u64> {
        (1..=total).filter(|&g| self.owns(g)).collect()
    }
}

/// How many of the points vdc(0), ..., vdc(n-1) lie below num/den (O(log n)): the even
/// k = 2j sit at vdc(j)/2, the odd k = 2j+1 at 1/2 + vdc(j)/2.
fn below(n: u64, num: u128, den: u128) -> u64 {
    if n == 0 || num == 0 {
        return 0;
    }
    if num >= den {
        return n;
    }
    let (evens, odds) = (n.div_ceil(2), n / 2);
    if 2 * num <= den {
        below(evens, 2 * num, den)
    } else {
        evens + below(odds, 2 * num - den, den)
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let frac = |n: u64| {
            let g = gcd(n, self.den);
            match (n / g, self.den / g) {
                (n, 1) => n.to_string(),
                (n, d) => format!("{n}/{d}"),
            }
        };
        write!(f, "{}:{}", frac(self.from_num), frac(self.to_num))
    }
}

/// One point of a segment as (numerator, denominator).
fn parse_point(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("invalid segment point {text:?}: expected e.g. 1/4, 25% or 0.25");
    let t = text.trim();
    let (num, den) = if let Some(pct) = t.strip_suffix('%') {
        let (n, d) = parse_decimal(pct).ok_or_else(bad)?;
        (n, d.checked_mul(100).ok_or_else(bad)?)
    } else if let Some((n, d)) = t.split_once('/') {
        (
            n.trim().parse().map_err(|_| bad())?,
            d.trim().parse().map_err(|_| bad())?,
        )
    } else {
        parse_decimal(t).ok_or_else(bad)?
    };
    if den == 0 {
        return Err(bad());
    }
    if num > den {
        return Err(format!(
            "invalid segment point {text:?}: must be between 0 and 1"
        ));
    }
    let g = gcd(num, den);
    Ok((num / g, den / g))
}

/// `0.25` as (25, 100); no sign, no exponent.
fn parse_decimal(t: &str) -> Option<(u64, u64)> {
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 9 {
        return None;
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return None;
    }
    let den = 10u64.pow(frac.len() as u32);
    let int: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    Some((int.checked_mul(den)?.checked_add(frac)?, den))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: u64, b: u64) -> u64 {
    a / gcd(a, b) * b
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
    fn a_share_counts_the_owned_vus_never_shrinks_and_stays_near_proportional() {
        // The non-power-of-two splits that floor(n*to) - floor(n*from) got wrong: that
        // share of 1/3:1/2 went 1, 0, 1 for n = 2, 3, 4, and 2/5:3/5 went 1, 0 for 2, 3.
        let third = Segment::parse("1/3:2/3").unwrap();
        let segs = [
            Segment::parse("1/3:1/2").unwrap(),
            Segment::parse("2/5:3/5").unwrap(),
            third,
            third.part(0, 2),
            third.part(1, 2),
            Segment::nth(4, 7),
        ];
        for seg in segs {
            let mut prev = 0;
            for n in 0..3000u64 {
                let s = seg.scale(n);
                assert!(s >= prev, "{seg} shrank at {n}");
                assert_eq!(s, seg.owned_ids(n).len() as u64, "{seg} at {n}");
                let ideal = n as f64 * seg.percent() / 100.0;
                assert!(
                    (s as f64 - ideal).abs() <= 2.0 + (n as f64 + 1.0).log2(),
                    "{seg} at {n}: {s} vs {ideal}"
                );
                prev = s;
            }
        }
        // A process's worker parts split exactly what the process owns.
        for g in 1..500 {
            let parts = (third.part(0, 2).owns(g), third.part(1, 2).owns(g));
            assert_eq!(third.owns(g), parts.0 || parts.1);
            assert!(!(parts.0 && parts.1));
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

    #[test]
    fn parses_k6_segment_syntax() {
        let quarter = Segment::parse("0:1/4").unwrap();
        assert_eq!(quarter.to_string(), "0:1/4");
        assert_eq!(Segment::parse("25%:50%").unwrap().to_string(), "1/4:1/2");
        assert_eq!(Segment::parse("1/2").unwrap().to_string(), "0:1/2");
        assert_eq!(Segment::parse("0.5:1").unwrap().to_string(), "1/2:1");
        assert!(Segment::parse("1/2:1/4").is_err());
        assert!(Segment::parse("0:3/2").is_err());
        assert!(Segment::parse("x").is_err());
        assert!(quarter.check_in_sequence("0,1/4,1/2,1").is_ok());
        assert!(quarter.check_in_sequence("0,1/2,1").is_err());
    }

    #[test]
    fn segments_split_into_worker_parts_still_tile_exactly() {
        let halves = [
            Segment::parse("0:1/2").unwrap(),
            Segment::parse("1/2:1").unwrap(),
        ];
        for n in [1u64, 3, 10, 25_000] {
            let total: u64 = halves
                .iter()
                .flat_map(|h| (0..3).map(move |w| h.part(w, 3).scale(n)))
                .sum();
            assert_eq!(total, n);
        }
        assert_eq!(Segment::WHOLE.part(1, 2), Segment::nth(1, 2));
    }
}
