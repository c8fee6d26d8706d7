//! `ramping-vus`: the VU count follows linear stages; VUs removed on a ramp-down finish their
//! iteration within `gracefulRampDown`, then are interrupted.

use super::{
    duration_json, finish, pace_start, scale_count, scale_stages, stages_json, ExecEnv, Executor,
    Invalid, DEFAULT_GRACE,
};
use crate::error::Result;
use crate::exec::vu_task::{VuSet, VuTask};
use crate::exec::{ScenarioRun, Vu, VuFactory};
use crate::options::duration;
use crate::options::reader::ScenarioReader;
use crate::options::Stage;
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use tokio::time::Instant;

/// From `startVUs` through `stages`; removed VUs get `gracefulRampDown`.
#[derive(Debug, Clone, PartialEq)]
pub struct RampingVus {
    pub start_vus: u64,
    pub stages: Vec<Stage>,
    pub graceful_ramp_down: Duration,
}

impl Executor for RampingVus {
    const NAME: &'static str = "ramping-vus";
    const OPTIONS: &'static [&'static str] = &["startVUs", "stages", "gracefulRampDown"];

    fn parse(opts: &ScenarioReader) -> Result<Self> {
        Ok(RampingVus {
            start_vus: opts.count("startVUs", Some(1))?,
            stages: opts.stages("stages")?,
            graceful_ramp_down: opts.duration("gracefulRampDown", Some(DEFAULT_GRACE))?,
        })
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.stages.is_empty() {
            return Err(("stages", "at least one stage is required".into()));
        }
        Ok(())
    }

    fn scale(&mut self, time: f64, vus: f64) {
        scale_count(&mut self.start_vus, vus);
        scale_stages(&mut self.stages, time, vus);
        self.graceful_ramp_down = self.graceful_ramp_down.div_f64(time);
    }

    fn max_vus(&self) -> u64 {
        self.stages
            .iter()
            .map(|s| s.target)
            .max()
            .unwrap_or(0)
            .max(self.start_vus)
    }

    fn max_duration(&self) -> Duration {
        self.scheduled() + self.graceful_ramp_down
    }

    fn scheduled(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    fn describe(&self) -> String {
        format!(
            "Up to {} looping VUs for {} over {} stages (gracefulRampDown: {}",
            self.max_vus(),
            duration::format(self.scheduled()),
            self.stages.len(),
            duration::format(self.graceful_ramp_down)
        )
    }

    fn to_json(&self, out: &mut Map<String, Value>) {
        out.insert("startVUs".into(), self.start_vus.into());
        out.insert("stages".into(), stages_json(&self.stages));
        out.insert(
            "gracefulRampDown".into(),
            duration_json(self.graceful_ramp_down),
        );
    }

    async fn run<F: VuFactory>(
        &self,
        sc: Rc<ScenarioRun>,
        env: ExecEnv<'_, F>,
    ) -> Result<(), String> {
        let max = self.max_vus();
        drive(self, max, sc, env).await
    }
}

/// How often the controller re-reads the target (VU changes land within this).
const TICK: Duration = Duration::from_millis(10);

/// The global VU target `t` after the start: linear within each stage. The change is
/// truncated toward the stage's start value, so a ramp reaches each count at the exact moment
/// the line crosses it.
pub fn target_at(start_vus: u64, stages: &[Stage], t: Duration) -> u64 {
    let mut from = start_vus;
    let mut at = Duration::ZERO;
    for s in stages {
        if t < at + s.duration {
            let frac = (t - at).as_secs_f64() / s.duration.as_secs_f64();
            let delta = (s.target as f64 - from as f64) * frac;
            return (from as f64 + delta.trunc()) as u64;
        }
        at += s.duration;
        from = s.target;
    }
    from
}

struct Slot<V> {
    vu: Rc<RefCell<V>>,
    wanted: Rc<Cell<bool>>,
    task: Option<VuTask>,
    unwanted_since: Option<Instant>,
}

/// Starts and stops VUs every [`TICK`] to follow the target.
async fn drive<F: VuFactory>(
    cfg: &RampingVus,
    max: u64,
    sc: Rc<ScenarioRun>,
    env: ExecEnv<'_, F>,
) -> Result<(), String> {
    let (start_vus, stages, graceful_ramp_down) =
        (cfg.start_vus, &cfg.stages[..], cfg.graceful_ramp_down);
    let owned = env.segment.owned_ids(max);
    let total: Duration = stages.iter().map(|s| s.duration).sum();
    let start = Instant::now();
    let end = start + total;
    let mut slots: Vec<Slot<F::V>> = Vec::new();
    let mut tasks = VuSet::new(sc.clone(), env.run.clone());
    loop {
        let now = Instant::now();
        if now >= end || env.run.stop_level() != crate::exec::Stop::Running {
            break;
        }
        let local_target = env.segment.scale(target_at(start_vus, stages, now - start)) as usize;
        let mut new = 0;
        while slots.len() < local_target {
            let vu = env.vu(&sc, &owned, slots.len())?;
            let mut slot = Slot {
                vu,
                wanted: Rc::new(Cell::new(false)),
                task: None,
                unwanted_since: None,
            };
            activate(&mut slot, &mut tasks, end);
            slots.push(slot);
            pace_start(new).await;
            new += 1;
        }
        for (i, slot) in slots.iter_mut().enumerate() {
            if i < local_target {
                activate(slot, &mut tasks, end);
            } else if slot.wanted.get() {
                slot.wanted.set(false);
                slot.unwanted_since = Some(now);
            } else if let (Some(since), Some(task)) = (slot.unwanted_since, &slot.task) {
                if task.is_running() && now >= since + graceful_ramp_down {
                    task.abort();
                }
            }
        }
        tokio::time::sleep(TICK).await;
    }
    for slot in &slots {
        slot.wanted.set(false);
    }
    finish(tasks, end + env.graceful_stop, env.graceful_stop, &env.run).await;
    Ok(())
}

fn activate<V: Vu + 'static>(slot: &mut Slot<V>, tasks: &mut VuSet, end: Instant) {
    slot.wanted.set(true);
    slot.unwanted_since = None;
    if slot.task.as_ref().is_some_and(VuTask::is_running) {
        return; // still finishing its last iteration: it simply goes on
    }
    let wanted = slot.wanted.clone();
    slot.task = Some(VuTask::spawn(tasks, slot.vu.clone(), move || {
        wanted.get() && Instant::now() < end
    }));
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

    #[test]
    fn interpolates_linearly() {
        let stages = [st(10, 10), st(10, 10), st(10, 0)];
        assert_eq!(target_at(0, &stages, Duration::from_secs(0)), 0);
        assert_eq!(target_at(0, &stages, Duration::from_millis(4_999)), 4);
        assert_eq!(target_at(0, &stages, Duration::from_secs(5)), 5);
        assert_eq!(target_at(0, &stages, Duration::from_secs(15)), 10);
        assert_eq!(target_at(0, &stages, Duration::from_millis(25_000)), 5);
        assert_eq!(target_at(0, &stages, Duration::from_secs(30)), 0);
    }
}
