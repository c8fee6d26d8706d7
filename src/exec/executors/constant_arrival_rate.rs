//! `constant-arrival-rate`: `rate` iterations per `timeUnit` for `duration`, the first at the
//! start (k6's timing), on `preAllocatedVUs` growing up to `maxVUs`.

use super::arrival::Schedule;
use std::time::Duration;

/// Iteration `i` starts at `i * timeUnit / rate`.
pub struct Constant {
    pub rate: u64,
    pub time_unit: Duration,
    pub duration: Duration,
}

impl Schedule for Constant {
    fn start_of(&self, i: u64) -> Option<Duration> {
        let nanos = i as u128 * self.time_unit.as_nanos() / self.rate as u128;
        let at = Duration::from_nanos(u64::try_from(nanos).ok()?);
        (at < self.duration).then_some(at)
    }

    fn duration(&self) -> Duration {
        self.duration
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_rate_times_duration_iterations() {
        let s = Constant {
            rate: 10,
            time_unit: Duration::from_secs(1),
            duration: Duration::from_secs(2),
        };
        let starts: Vec<_> = (0..).map_while(|i| s.start_of(i)).collect();
        assert_eq!(starts.len(), 20);
        assert_eq!(starts[0], Duration::ZERO);
        assert_eq!(starts[19], Duration::from_millis(1900));
        let per_minute = Constant {
            rate: 3,
            time_unit: Duration::from_secs(60),
            duration: Duration::from_secs(60),
        };
        assert_eq!(per_minute.start_of(1), Some(Duration::from_secs(20)));
        assert_eq!(per_minute.start_of(3), None);
    }
}
