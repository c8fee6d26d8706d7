//! `per-vu-iterations`: each VU runs its own count of iterations, cut at `maxDuration`.

use super::{
    duration_json, finish, pace_start, scale_count, ExecEnv, Executor, Invalid,
    DEFAULT_MAX_DURATION,
};
use crate::error::Result;
use crate::exec::vu_task::{VuSet, VuTask};
use crate::exec::{ScenarioRun, VuFactory};
use crate::options::duration;
use crate::options::reader::ScenarioReader;
use serde_json::{Map, Value};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use tokio::time::Instant;

/// Each of `vus` runs `iterations`, cut at `maxDuration`.
#[derive(Debug, Clone, PartialEq)]
pub struct PerVuIterations {
    pub vus: u64,
    pub iterations: u64,
    pub max_duration: Duration,
}

impl Executor for PerVuIterations {
    const NAME: &'static str = "per-vu-iterations";
    const OPTIONS: &'static [&'static str] = &["vus", "iterations", "maxDuration"];

    fn parse(opts: &ScenarioReader) -> Result<Self> {
        Ok(PerVuIterations {
            vus: opts.count("vus", Some(1))?,
            iterations: opts.count("iterations", Some(1))?,
            max_duration: opts.duration("maxDuration", Some(DEFAULT_MAX_DURATION))?,
        })
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.vus == 0 {
            return Err(("vus", "must be at least 1".into()));
        }
        if self.iterations == 0 {
            return Err(("iterations", "must be at least 1".into()));
        }
        Ok(())
    }

    fn scale(&mut self, time: f64, vus: f64) {
        scale_count(&mut self.vus, vus);
        self.max_duration = self.max_duration.div_f64(time);
    }

    fn max_vus(&self) -> u64 {
        self.vus
    }

    fn max_duration(&self) -> Duration {
        self.max_duration
    }

    fn describe(&self) -> String {
        format!(
            "{} iterations for each of {} VUs (maxDuration: {}",
            self.iterations,
            self.vus,
            duration::format(self.max_duration)
        )
    }

    fn to_json(&self, out: &mut Map<String, Value>) {
        out.insert("vus".into(), self.vus.into());
        out.insert("iterations".into(), self.iterations.into());
        out.insert("maxDuration".into(), duration_json(self.max_duration));
    }

    async fn run<F: VuFactory>(
        &self,
        sc: Rc<ScenarioRun>,
        env: ExecEnv<'_, F>,
    ) -> Result<(), String> {
        let local = env.segment.scale(self.vus) as usize;
        let owned = env.segment.owned_ids(self.vus);
        let end = Instant::now() + self.max_duration;
        let mut tasks = VuSet::new(sc.clone(), env.run.clone());
        let mut counters = Vec::with_capacity(local);
        for i in 0..local {
            let vu = env.vu(&sc, &owned, i)?;
            let left = Rc::new(Cell::new(self.iterations));
            counters.push(left.clone());
            VuTask::spawn(&mut tasks, vu, move || {
                let n = left.get();
                if n == 0 || Instant::now() >= end {
                    return false;
                }
                left.set(n - 1);
                true
            });
            pace_start(i).await;
        }
        finish(tasks, end + env.graceful_stop, env.graceful_stop, &env.run).await;
        let dropped: u64 = counters.iter().map(|c| c.get()).sum();
        if dropped > 0 {
            env.factory.dropped(&sc, dropped);
        }
        Ok(())
    }
}
