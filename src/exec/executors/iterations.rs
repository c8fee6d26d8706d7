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
    // This worker's share of the pool follows its VUs (iteration i belongs to VU i mod vus),
    // so a worker without VUs gets no iterations; its VUs claim from it before each one.
    let left = Rc::new(Cell::new(share_of_iterations(iterations, vus, &owned)));
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
