//! `constant-arrival-rate`: `rate` iterations per `timeUnit` for `duration`, the first at the
//! start (k6's timing), on `preAllocatedVUs` growing up to `maxVUs`.

use super::arrival::{self, Pool, Schedule};
use super::{duration_json, scale_count, ExecEnv, Executor, Invalid};
use crate::error::Result;
use crate::exec::{ScenarioRun, VuFactory};
use crate::options::duration;
use crate::options::reader::ScenarioReader;
use serde_json::{Map, Value};
use std::rc::Rc;
use std::time::Duration;

/// `rate` iterations per `timeUnit` for `duration` (open model).
#[derive(Debug, Clone, PartialEq)]
pub struct ConstantArrivalRate {
    pub rate: u64,
    pub time_unit: Duration,
    pub duration: Duration,
    pub pre_allocated_vus: u64,
    pub max_vus: u64,
}

impl Executor for ConstantArrivalRate {
    const NAME: &'static str = "constant-arrival-rate";
    const OPTIONS: &'static [&'static str] =
        &["rate", "timeUnit", "duration", "preAllocatedVUs", "maxVUs"];

    fn parse(opts: &ScenarioReader) -> Result<Self> {
        let pre_allocated_vus = opts.count("preAllocatedVUs", None)?;
        Ok(ConstantArrivalRate {
            rate: opts.count("rate", None)?,
            time_unit: opts.duration("timeUnit", Some(Duration::from_secs(1)))?,
            duration: opts.duration("duration", None)?,
            pre_allocated_vus,
            max_vus: opts.count("maxVUs", Some(pre_allocated_vus))?,
        })
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.rate == 0 {
            return Err(("rate", "must be greater than 0".into()));
        }
        if self.duration.is_zero() {
            return Err(("duration", "must be greater than 0".into()));
        }
        self.pool().validate(self.time_unit)
    }

    // Rates are load (scaled like VUs); timeUnit is time, so a faster clock raises the rate
    // per real second just as it shortens each iteration's sleeps.
    fn scale(&mut self, time: f64, vus: f64) {
        scale_count(&mut self.rate, vus);
        self.time_unit = self.time_unit.div_f64(time);
        self.duration = self.duration.div_f64(time);
        scale_count(&mut self.pre_allocated_vus, vus);
        scale_count(&mut self.max_vus, vus);
    }

    fn max_vus(&self) -> u64 {
        self.max_vus
    }

    fn max_duration(&self) -> Duration {
        self.duration
    }

    fn describe(&self) -> String {
        format!(
            "{} iterations/{} for {} (maxVUs: {}-{}",
            self.rate,
            arrival::rate_unit(self.time_unit),
            duration::format(self.duration),
            self.pre_allocated_vus,
            self.max_vus
        )
    }

    fn to_json(&self, out: &mut Map<String, Value>) {
        out.insert("rate".into(), self.rate.into());
        out.insert("timeUnit".into(), duration_json(self.time_unit));
        out.insert("duration".into(), duration_json(self.duration));
        out.insert("preAllocatedVUs".into(), self.pre_allocated_vus.into());
        out.insert("maxVUs".into(), self.max_vus.into());
    }

    async fn run<F: VuFactory>(
        &self,
        sc: Rc<ScenarioRun>,
        env: ExecEnv<'_, F>,
    ) -> Result<(), String> {
        let schedule = Constant {
            rate: self.rate,
            time_unit: self.time_unit,
            duration: self.duration,
        };
        arrival::run(schedule, self.pool(), sc, env).await
    }
}

impl ConstantArrivalRate {
    fn pool(&self) -> Pool {
        Pool::new(self.pre_allocated_vus, self.max_vus)
    }
}

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
