//! `ramping-arrival-rate`: the rate (iterations per `timeUnit`) goes linearly from
//! `startRate` through `stages`; VUs as for `constant-arrival-rate`.
//!
//! Iteration `i` (0-based) starts when the integral of the rate reaches `i + 1`, as in k6: a
//! ramp from 0 starts its first iteration once one whole iteration has "arrived".

use super::arrival::{self, Pool, Schedule};
use super::{duration_json, scale_count, scale_stages, stages_json, ExecEnv, Executor, Invalid};
use crate::error::Result;
use crate::exec::{ScenarioRun, VuFactory};
use crate::options::duration;
use crate::options::reader::ScenarioReader;
use crate::options::Stage;
use serde_json::{Map, Value};
use std::rc::Rc;
use std::time::Duration;

/// From `startRate` through `stages` (targets in iterations per `timeUnit`).
#[derive(Debug, Clone, PartialEq)]
pub struct RampingArrivalRate {
    pub start_rate: u64,
    pub time_unit: Duration,
    pub stages: Vec<Stage>,
    pub pre_allocated_vus: u64,
    pub max_vus: u64,
}

impl Executor for RampingArrivalRate {
    const NAME: &'static str = "ramping-arrival-rate";
    const OPTIONS: &'static [&'static str] = &[
        "startRate",
        "timeUnit",
        "stages",
        "preAllocatedVUs",
        "maxVUs",
    ];

    fn parse(opts: &ScenarioReader) -> Result<Self> {
        let pre_allocated_vus = opts.count("preAllocatedVUs", None)?;
        Ok(RampingArrivalRate {
            start_rate: opts.count("startRate", Some(0))?,
            time_unit: opts.duration("timeUnit", Some(Duration::from_secs(1)))?,
            stages: opts.stages("stages")?,
            pre_allocated_vus,
            max_vus: opts.count("maxVUs", Some(pre_allocated_vus))?,
        })
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.stages.is_empty() {
            return Err(("stages", "at least one stage is required".into()));
        }
        if self.stages.iter().all(|s| s.duration.is_zero()) {
            return Err(("stages", "the stages must last longer than 0s".into()));
        }
        self.pool().validate(self.time_unit)
    }

    // As constant-arrival-rate: rates are load, timeUnit is time.
    fn scale(&mut self, time: f64, vus: f64) {
        scale_count(&mut self.start_rate, vus);
        self.time_unit = self.time_unit.div_f64(time);
        scale_stages(&mut self.stages, time, vus);
        scale_count(&mut self.pre_allocated_vus, vus);
        scale_count(&mut self.max_vus, vus);
    }

    fn max_vus(&self) -> u64 {
        self.max_vus
    }

    fn max_duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    fn describe(&self) -> String {
        let peak = self.stages.iter().map(|s| s.target).max().unwrap_or(0);
        format!(
            "Up to {}.00 iterations/{} for {} over {} stages (maxVUs: {}-{}",
            peak.max(self.start_rate),
            arrival::rate_unit(self.time_unit),
            duration::format(self.max_duration()),
            self.stages.len(),
            self.pre_allocated_vus,
            self.max_vus
        )
    }

    fn to_json(&self, out: &mut Map<String, Value>) {
        out.insert("startRate".into(), self.start_rate.into());
        out.insert("timeUnit".into(), duration_json(self.time_unit));
        out.insert("stages".into(), stages_json(&self.stages));
        out.insert("preAllocatedVUs".into(), self.pre_allocated_vus.into());
        out.insert("maxVUs".into(), self.max_vus.into());
    }

    async fn run<F: VuFactory>(
        &self,
        sc: Rc<ScenarioRun>,
        env: ExecEnv<'_, F>,
    ) -> Result<(), String> {
        let schedule = Ramping::new(self.start_rate, self.time_unit, &self.stages);
        arrival::run(schedule, self.pool(), sc, env).await
    }
}

impl RampingArrivalRate {
    fn pool(&self) -> Pool {
        Pool::new(self.pre_allocated_vus, self.max_vus)
    }
}

/// A stage as rates per second, with the iterations that arrived before it.
struct Piece {
    at: f64,
    len: f64,
    from: f64,
    to: f64,
    before: f64,
}

pub struct Ramping {
    pieces: Vec<Piece>,
    total: Duration,
}

impl Ramping {
    pub fn new(start_rate: u64, time_unit: Duration, stages: &[Stage]) -> Ramping {
        let per_sec = |r: u64| r as f64 / time_unit.as_secs_f64();
        let (mut at, mut from, mut before) = (0.0, per_sec(start_rate), 0.0);
        let mut pieces = Vec::with_capacity(stages.len());
        for s in stages {
            let len = s.duration.as_secs_f64();
            let to = per_sec(s.target);
            pieces.push(Piece {
                at,
                len,
                from,
                to,
                before,
            });
            before += (from + to) / 2.0 * len;
            at += len;
            from = to;
        }
        Ramping {
            pieces,
            total: stages.iter().map(|s| s.duration).sum(),
        }
    }
}

impl Schedule for Ramping {
    fn start_of(&self, i: u64) -> Option<Duration> {
        let need = i as f64 + 1.0;
        for p in &self.pieces {
            let arrived = (p.from + p.to) / 2.0 * p.len;
            if need > p.before + arrived {
                continue;
            }
            // Solve from*t + (to-from)*t^2/(2*len) = x for t in [0, len], in the form that
            // stays exact when the rate is flat.
            let x = need - p.before;
            let a = (p.to - p.from) / (2.0 * p.len);
            let root = (p.from * p.from + 4.0 * a * x).max(0.0).sqrt();
            let t = if p.from + root > 0.0 {
                2.0 * x / (p.from + root)
            } else {
                0.0
            };
            let at = Duration::from_secs_f64(p.at + t.min(p.len));
            return (at < self.total).then_some(at);
        }
        None
    }

    fn duration(&self) -> Duration {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(secs: u64, target: u64) -> Stage {
        Stage {
            duration: Duration::from_secs(secs),
            target,
        }
    }

    fn starts(r: &Ramping) -> Vec<f64> {
        (0..)
            .map_while(|i| r.start_of(i))
            .map(|d| d.as_secs_f64())
            .collect()
    }

    #[test]
    fn flat_rate_starts_evenly_after_the_first_arrival() {
        let s = starts(&Ramping::new(10, Duration::from_secs(1), &[st(2, 10)]));
        assert_eq!(s.len(), 19); // the 20th arrives exactly at the end
        assert!((s[0] - 0.1).abs() < 1e-9 && (s[18] - 1.9).abs() < 1e-9);
    }

    #[test]
    fn linear_ramp_follows_the_integral() {
        // 0 -> 1/s over 6 s: t^2/12 iterations, the first at sqrt(12) s.
        let s = starts(&Ramping::new(0, Duration::from_secs(1), &[st(6, 1)]));
        assert_eq!(s.len(), 2);
        assert!((s[0] - 12f64.sqrt()).abs() < 1e-9);
        assert!((s[1] - 24f64.sqrt()).abs() < 1e-9);
        // Up 0 -> 100/s over 2 s, hold 2 s, down to 0 over 2 s: 100 + 200 + 100 arrivals.
        let s = starts(&Ramping::new(
            0,
            Duration::from_secs(1),
            &[st(2, 100), st(2, 100), st(2, 0)],
        ));
        assert!((399..=400).contains(&s.len()));
        assert!(s.windows(2).all(|w| w[0] <= w[1]));
    }
}
