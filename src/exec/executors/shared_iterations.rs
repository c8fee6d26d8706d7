//! `shared-iterations`: a pool of iterations shared by the VUs, cut at `maxDuration`.

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

/// `iterations` shared by `vus`, cut at `maxDuration`.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedIterations {
    pub vus: u64,
    pub iterations: u64,
    pub max_duration: Duration,
}

impl Executor for SharedIterations {
    const NAME: &'static str = "shared-iterations";
    const OPTIONS: &'static [&'static str] = &["vus", "iterations", "maxDuration"];

    fn parse(opts: &ScenarioReader) -> Result<Self> {
        Ok(SharedIterations {
            vus: opts.count("vus", Some(1))?,
            iterations: opts.count("iterations", Some(1))?,
            max_duration: opts.duration("maxDuration", Some(DEFAULT_MAX_DURATION))?,
        })
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.vus == 0 {
            return Err(("vus", "must be at least 1".into()));
        }
        if self.iterations < self.vus {
            return Err(("iterations", "must be at least the number of VUs".into()));
        }
        Ok(())
    }

    fn scale(&mut self, time: f64, vus: f64) {
        scale_count(&mut self.vus, vus);
        scale_count(&mut self.iterations, vus);
        self.iterations = self.iterations.max(self.vus);
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
            "{} iterations shared among {} VUs (maxDuration: {}",
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
        // This worker's share of the pool follows its VUs (iteration i belongs to VU i mod
        // vus), so a worker without VUs gets no iterations; its VUs claim from it before each.
        let left = Rc::new(Cell::new(share_of_iterations(
            self.iterations,
            self.vus,
            &owned,
        )));
        let end = Instant::now() + self.max_duration;
        let mut tasks = VuSet::new(sc.clone(), env.run.clone());
        for i in 0..local {
            let vu = env.vu(&sc, &owned, i)?;
            let left = left.clone();
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
        if left.get() > 0 {
            env.factory.dropped(&sc, left.get());
        }
        Ok(())
    }
}

/// Iterations of a pool of `iterations` dealt round-robin to `vus` VUs that land on the VUs
/// numbered in `owned` (1-based).
fn share_of_iterations(iterations: u64, vus: u64, owned: &[u64]) -> u64 {
    owned
        .iter()
        .map(|&g| iterations / vus + u64::from(g - 1 < iterations % vus))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Segment;

    #[test]
    fn iteration_shares_follow_vus_and_add_up() {
        for (iters, vus) in [(3u64, 1u64), (50, 5), (7, 3), (10, 10)] {
            let total: u64 = (0..2)
                .map(|w| share_of_iterations(iters, vus, &Segment::nth(w, 2).owned_ids(vus)))
                .sum();
            assert_eq!(total, iters);
        }
        assert_eq!(
            share_of_iterations(3, 1, &Segment::nth(0, 2).owned_ids(1)),
            0
        );
    }
}
