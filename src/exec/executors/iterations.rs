//! `shared-iterations` (a pool of iterations shared by the VUs) and `per-vu-iterations`
//! (each VU runs its own count), both cut at `maxDuration`.

use super::{finish, ExecEnv};
use crate::exec::vu_task::VuTask;
use crate::exec::{ScenarioRun, VuFactory};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub async fn run_shared<F: VuFactory>(
    vus: u64,
    iterations: u64,
    max_duration: Duration,
    sc: Rc<ScenarioRun>,
    env: ExecEnv<'_, F>,
) -> Result<(), String> {
    let local = env.segment.scale(vus) as usize;
    let owned = env.segment.owned_ids(vus);
    // This worker's share of the pool; its VUs claim from it before each iteration.
    let left = Rc::new(Cell::new(env.segment.scale(iterations)));
    let end = Instant::now() + max_duration;
    let mut tasks = JoinSet::new();
    for i in 0..local {
        let vu = env.vu(&sc, &owned, i)?;
        let left = left.clone();
        VuTask::spawn(&mut tasks, vu, sc.clone(), env.run.clone(), move || {
            let n = left.get();
            if n == 0 || Instant::now() >= end {
                return false;
            }
            left.set(n - 1);
            true
        });
    }
    finish(tasks, end + env.graceful_stop, &env.run).await;
    if left.get() > 0 {
        env.factory.dropped(&sc, left.get());
    }
    Ok(())
}

pub async fn run_per_vu<F: VuFactory>(
    vus: u64,
    iterations: u64,
    max_duration: Duration,
    sc: Rc<ScenarioRun>,
    env: ExecEnv<'_, F>,
) -> Result<(), String> {
    let local = env.segment.scale(vus) as usize;
    let owned = env.segment.owned_ids(vus);
    let end = Instant::now() + max_duration;
    let mut tasks = JoinSet::new();
    let mut counters = Vec::with_capacity(local);
    for i in 0..local {
        let vu = env.vu(&sc, &owned, i)?;
        let left = Rc::new(Cell::new(iterations));
        counters.push(left.clone());
        VuTask::spawn(&mut tasks, vu, sc.clone(), env.run.clone(), move || {
            let n = left.get();
            if n == 0 || Instant::now() >= end {
                return false;
            }
            left.set(n - 1);
            true
        });
    }
    finish(tasks, end + env.graceful_stop, &env.run).await;
    let dropped: u64 = counters.iter().map(|c| c.get()).sum();
    if dropped > 0 {
        env.factory.dropped(&sc, dropped);
    }
    Ok(())
}
