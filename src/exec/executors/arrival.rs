//! What both arrival-rate executors share (open model): iterations start on a schedule whether
//! or not earlier ones finished, each on a free VU; with no free VU and none left to create,
//! the iteration is dropped and counted (k6's `dropped_iterations`), so a slow target shows up
//! as dropped work instead of a lower rate (no coordinated omission).
//!
//! Splitting: global iteration `g` (1-based) belongs to the segment that owns VU
//! `(g-1) mod maxVUs + 1`, so each worker or instance starts the share of iterations that
//! matches its share of VUs, and segments that tile (0, 1] start every iteration exactly once.

use super::{finish, sleep_or_stop, ExecEnv};
use crate::exec::shutdown::RunState;
use crate::exec::{ScenarioRun, Stop, Vu, VuFactory};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// When each iteration starts, from the scenario's start.
pub trait Schedule {
    /// Start offset of iteration `i` (0-based, counted over all segments); `None` once it
    /// would start at or after the end of the scenario.
    fn start_of(&self, i: u64) -> Option<Duration>;
    /// Length of the schedule; iterations still running then get the graceful stop.
    fn duration(&self) -> Duration;
}

/// VU counts of an arrival-rate scenario (whole plan, before the segment's share).
pub struct Pool {
    pub pre_allocated: u64,
    pub max: u64,
}

impl Pool {
    pub fn new(pre_allocated: u64, max: u64) -> Pool {
        Pool { pre_allocated, max }
    }

    /// Checks shared by the arrival-rate executors.
    pub fn validate(&self, time_unit: Duration) -> Result<(), super::Invalid> {
        if time_unit.is_zero() {
            return Err(("timeUnit", "must be greater than 0".into()));
        }
        if self.max < self.pre_allocated {
            let why = format!(
                "must be at least preAllocatedVUs ({}), got {}",
                self.pre_allocated, self.max
            );
            return Err(("maxVUs", why));
        }
        if self.max == 0 {
            return Err(("maxVUs", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// `s` for a one-second time unit, else the unit itself (k6 prints "10.00 iterations/s").
pub fn rate_unit(unit: Duration) -> String {
    if unit == Duration::from_secs(1) {
        "s".into()
    } else {
        crate::options::duration::format(unit)
    }
}

pub async fn run<F: VuFactory>(
    schedule: impl Schedule,
    pool: Pool,
    sc: Rc<ScenarioRun>,
    env: ExecEnv<'_, F>,
) -> Result<(), String> {
    let owned = env.segment.owned_ids(pool.max);
    let local_max = owned.len();
    let mut free: Vec<Rc<RefCell<F::V>>> = Vec::with_capacity(local_max);
    for i in 0..env.segment.scale(pool.pre_allocated) as usize {
        free.push(env.vu(&sc, &owned, i)?);
    }
    let free = Rc::new(RefCell::new(free));
    let mut allocated = free.borrow().len();
    // k6 counts an arrival-rate scenario's allocated VUs as active for its whole run.
    let active = &env.run.gauges.active;
    active.fetch_add(allocated as u64, Ordering::Relaxed);

    let start = Instant::now();
    let mut tasks = JoinSet::new();
    let mut g: u64 = 0; // iterations considered so far (global count)
    let mut yielded = false;
    while env.run.stop_level() == Stop::Running {
        // Start every iteration of this segment that is due, then wait for the next one.
        let mut dropped = 0;
        let next = loop {
            if local_max == 0 {
                break Next::Done;
            }
            let Some(at) = schedule.start_of(g) else {
                break Next::Done;
            };
            if !env.segment.owns(g % pool.max + 1) {
                g += 1;
                continue;
            }
            if start + at > Instant::now() {
                break Next::At(at);
            }
            let vu = free.borrow_mut().pop();
            let vu = match vu {
                Some(vu) => vu,
                // Iterations that ended may not have handed their VU back yet: let them run
                // once before growing the pool (else a burst allocates every VU at once).
                None if !yielded => break Next::Yield,
                None if allocated < local_max => {
                    let vu = env.vu(&sc, &owned, allocated)?;
                    allocated += 1;
                    active.fetch_add(1, Ordering::Relaxed);
                    yielded = false;
                    vu
                }
                None => {
                    dropped += 1;
                    g += 1;
                    continue;
                }
            };
            g += 1;
            let late = Instant::now().saturating_duration_since(start + at);
            env.factory.started_late(&sc, late);
            spawn_iteration(&mut tasks, vu, free.clone(), sc.clone(), env.run.clone());
        };
        if dropped > 0 {
            env.factory.dropped(&sc, dropped);
            if !sc.warned_short_of_vus.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "WARN Insufficient VUs, reached {} active VUs and cannot initialize more  executor={} scenario={}",
                    pool.max, sc.executor, sc.name
                );
            }
        }
        while tasks.try_join_next().is_some() {}
        match next {
            Next::At(at) => {
                yielded = false;
                sleep_or_stop(start + at, &env.run).await;
            }
            Next::Yield => {
                yielded = true;
                tokio::task::yield_now().await;
            }
            Next::Done => break,
        }
    }
    let end = (start + schedule.duration()).max(Instant::now());
    finish(tasks, end + env.graceful_stop, env.graceful_stop, &env.run).await;
    active.fetch_sub(allocated as u64, Ordering::Relaxed);
    Ok(())
}

/// What the scheduler does after starting the iterations that were due.
enum Next {
    /// Sleep until the next iteration of this segment is due.
    At(Duration),
    /// No free VU: let running iterations finish before allocating another.
    Yield,
    /// The schedule is over.
    Done,
}

/// Runs one iteration on `vu` as its own task; the VU goes back to `free` when it ends.
#[allow(clippy::await_holding_refcell_ref)]
fn spawn_iteration<V: Vu + 'static>(
    tasks: &mut JoinSet<()>,
    vu: Rc<RefCell<V>>,
    free: Rc<RefCell<Vec<Rc<RefCell<V>>>>>,
    sc: Rc<ScenarioRun>,
    run: Arc<RunState>,
) {
    tasks.spawn_local(async move {
        let guard = Unfinished {
            run: run.clone(),
            done: Cell::new(false),
        };
        let outcome = {
            // Only this task holds the VU until it is back in `free`.
            let mut v = vu.borrow_mut();
            v.iterate(&sc).await
        };
        guard.done.set(true);
        run.record(outcome);
        free.borrow_mut().push(vu);
    });
}

/// Counts the iteration as interrupted when its task is dropped before it ended.
struct Unfinished {
    run: Arc<RunState>,
    done: Cell<bool>,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.done.get() {
            self.run.count(false);
        }
    }
}
