//! One file per executor. Each takes its typed config, the worker's segment and VU factory,
//! and starts and stops iterations; the shared pieces live here.

mod arrival;
mod constant_arrival_rate;
mod constant_vus;
mod iterations;
mod ramping_arrival_rate;
mod ramping_vus;

use super::shutdown::{reached, RunState, Stop};
use super::{ScenarioRun, Segment, VuFactory};
use crate::options::ExecutorConfig;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long running iterations get after the first Ctrl-C.
pub const SIGNAL_GRACE: Duration = Duration::from_secs(3);

/// What every executor on a worker gets.
pub struct ExecEnv<'a, F: VuFactory> {
    pub factory: &'a F,
    pub segment: Segment,
    pub run: Arc<RunState>,
    pub graceful_stop: Duration,
}

impl<F: VuFactory> ExecEnv<'_, F> {
    /// Creates this worker's `local`-th VU of the scenario (0-based), given the global ids it owns.
    fn vu(
        &self,
        sc: &ScenarioRun,
        owned: &[u64],
        local: usize,
    ) -> Result<Rc<RefCell<F::V>>, String> {
        let id = sc.vu_offset + owned[local];
        Ok(Rc::new(RefCell::new(self.factory.create(id, sc)?)))
    }
}

/// Runs one scenario on this worker to its end.
pub async fn run<F: VuFactory>(
    cfg: &ExecutorConfig,
    sc: Rc<ScenarioRun>,
    env: ExecEnv<'_, F>,
) -> Result<(), String> {
    sc.started.set(Some(std::time::Instant::now()));
    match cfg {
        ExecutorConfig::ConstantVus { vus, duration } => {
            constant_vus::run(*vus, *duration, sc, env).await
        }
        ExecutorConfig::SharedIterations {
            vus,
            iterations,
            max_duration,
        } => iterations::run_shared(*vus, *iterations, *max_duration, sc, env).await,
        ExecutorConfig::PerVuIterations {
            vus,
            iterations,
            max_duration,
        } => iterations::run_per_vu(*vus, *iterations, *max_duration, sc, env).await,
        ExecutorConfig::RampingVus {
            start_vus,
            stages,
            graceful_ramp_down,
        } => ramping_vus::run(*start_vus, stages, *graceful_ramp_down, sc, env).await,
        ExecutorConfig::ConstantArrivalRate {
            rate,
            time_unit,
            duration,
            pre_allocated_vus,
            max_vus,
        } => {
            let schedule = constant_arrival_rate::Constant {
                rate: *rate,
                time_unit: *time_unit,
                duration: *duration,
            };
            let pool = arrival::Pool {
                pre_allocated: *pre_allocated_vus,
                max: *max_vus,
            };
            arrival::run(schedule, pool, sc, env).await
        }
        ExecutorConfig::RampingArrivalRate {
            start_rate,
            time_unit,
            stages,
            pre_allocated_vus,
            max_vus,
        } => {
            let schedule = ramping_arrival_rate::Ramping::new(*start_rate, *time_unit, stages);
            let pool = arrival::Pool {
                pre_allocated: *pre_allocated_vus,
                max: *max_vus,
            };
            arrival::run(schedule, pool, sc, env).await
        }
    }
}

/// Waits for VU loops to end by themselves until `hard_deadline`, then interrupts the rest.
/// A first Ctrl-C shortens the wait to [`SIGNAL_GRACE`]; a hard stop ends it at once.
pub async fn finish(mut tasks: JoinSet<()>, hard_deadline: Instant, run: &RunState) {
    let mut stop = run.subscribe();
    let mut stop2 = run.subscribe();
    tokio::select! {
        _ = async { while tasks.join_next().await.is_some() {} } => {}
        _ = tokio::time::sleep_until(hard_deadline) => {}
        _ = async { reached(&mut stop, Stop::Graceful).await; tokio::time::sleep(SIGNAL_GRACE).await } => {}
        _ = reached(&mut stop2, Stop::Hard) => {}
    }
    tasks.shutdown().await;
}

/// Sleeps until `deadline` or until the run is told to stop, whichever comes first.
pub async fn sleep_or_stop(deadline: Instant, run: &RunState) {
    let mut stop = run.subscribe();
    tokio::select! {
        _ = tokio::time::sleep_until(deadline) => {}
        _ = reached(&mut stop, Stop::Graceful) => {}
    }
}
