//! `constant-vus`: a fixed number of VUs loop for a duration (closed model).

use super::{duration_json, finish, pace_start, scale_count, ExecEnv, Executor, Invalid};
use crate::error::Result;
use crate::exec::vu_task::{VuSet, VuTask};
use crate::exec::{ScenarioRun, VuFactory};
use crate::options::duration;
use crate::options::reader::ScenarioReader;
use serde_json::{Map, Value};
use std::rc::Rc;
use std::time::Duration;
use tokio::time::Instant;

/// `vus` loop for `duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstantVus {
    pub vus: u64,
    pub duration: Duration,
}

impl Executor for ConstantVus {
    const NAME: &'static str = "constant-vus";
    const OPTIONS: &'static [&'static str] = &["vus", "duration"];

    fn parse(opts: &ScenarioReader) -> Result<Self> {
        Ok(ConstantVus {
            vus: opts.count("vus", Some(1))?,
            duration: opts.duration("duration", None)?,
        })
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.vus == 0 {
            return Err(("vus", "must be at least 1".into()));
        }
        if self.duration.is_zero() {
            return Err(("duration", "must be greater than 0".into()));
        }
        Ok(())
    }

    fn scale(&mut self, time: f64, vus: f64) {
        scale_count(&mut self.vus, vus);
        self.duration = self.duration.div_f64(time);
    }

    fn max_vus(&self) -> u64 {
        self.vus
    }

    fn max_duration(&self) -> Duration {
        self.duration
    }

    fn describe(&self) -> String {
        format!(
            "{} looping VUs for {} (",
            self.vus,
            duration::format(self.duration)
        )
    }

    fn to_json(&self, out: &mut Map<String, Value>) {
        out.insert("vus".into(), self.vus.into());
        out.insert("duration".into(), duration_json(self.duration));
    }

    async fn run<F: VuFactory>(
        &self,
        sc: Rc<ScenarioRun>,
        env: ExecEnv<'_, F>,
    ) -> Result<(), String> {
        let local = env.segment.scale(self.vus) as usize;
        let owned = env.segment.owned_ids(self.vus);
        let end = Instant::now() + self.duration;
        let mut tasks = VuSet::new(sc.clone(), env.run.clone());
        for i in 0..local {
            let vu = env.vu(&sc, &owned, i)?;
            VuTask::spawn(&mut tasks, vu, move || Instant::now() < end);
            pace_start(i).await;
        }
        finish(tasks, end + env.graceful_stop, env.graceful_stop, &env.run).await;
        Ok(())
    }
}
