//! One file per executor, each holding its config (k6's options, typed), how it reads,
//! checks and scales them, what it needs (VUs, time), how the banner and `inspect` show it,
//! and its runner, behind the [`Executor`] trait. [`ExecutorConfig`] is the closed set of
//! them, with one delegating `match`; the pieces the runners share live here.

mod arrival;
mod constant_arrival_rate;
mod constant_vus;
mod per_vu_iterations;
mod ramping_arrival_rate;
mod ramping_vus;
mod shared_iterations;

pub use constant_arrival_rate::ConstantArrivalRate;
pub use constant_vus::ConstantVus;
pub use per_vu_iterations::PerVuIterations;
pub use ramping_arrival_rate::RampingArrivalRate;
pub use ramping_vus::RampingVus;
pub use shared_iterations::SharedIterations;

use super::shutdown::{reached, RunState, Stop};
use super::vu_task::VuSet;
use super::{ScenarioRun, Segment, VuFactory};
use crate::error::Result;
use crate::options::duration;
use crate::options::reader::ScenarioReader;
use crate::options::Stage;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// k6's default gracefulStop and gracefulRampDown.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// k6's default maxDuration of the iteration-count executors.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(600);

/// An option that fails a check, and why.
pub type Invalid = (&'static str, String);

/// One executor: its options and its runner.
pub trait Executor: Sized {
    /// k6's name, as in `executor = "constant-vus"`.
    const NAME: &'static str;
    /// Its own option names (besides every scenario's: exec, startTime, gracefulStop, ...).
    const OPTIONS: &'static [&'static str];
    /// Reads the executor's own options from a scenario's table.
    fn parse(opts: &ScenarioReader) -> Result<Self>;
    /// Checks the options together.
    fn validate(&self) -> Result<(), Invalid>;
    /// See [`crate::options::Plan::scale`]: durations divided by `time`, VU counts and
    /// rates multiplied by `vus`.
    fn scale(&mut self, time: f64, vus: f64);
    /// The most VUs it can have at once (whole plan, before any segment's share).
    fn max_vus(&self) -> u64;
    /// Scheduled duration without the graceful stop (gracefulRampDown included).
    fn max_duration(&self) -> Duration;
    /// How long it is scheduled to run, without any graceful period (progress bars).
    fn scheduled(&self) -> Duration {
        self.max_duration()
    }
    /// One line like k6's scenario banner (the caller closes the parenthesis).
    fn describe(&self) -> String;
    /// Its options in k6's names, as `engine inspect` prints them.
    fn to_json(&self, out: &mut Map<String, Value>);
    /// Runs this worker's share of the scenario to its end.
    fn run<F: VuFactory>(
        &self,
        sc: Rc<ScenarioRun>,
        env: ExecEnv<'_, F>,
    ) -> impl Future<Output = Result<(), String>>;
}

/// Every executor the engine has.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorConfig {
    SharedIterations(SharedIterations),
    PerVuIterations(PerVuIterations),
    ConstantVus(ConstantVus),
    RampingVus(RampingVus),
    ConstantArrivalRate(ConstantArrivalRate),
    RampingArrivalRate(RampingArrivalRate),
}

/// The one delegating match: `$body` runs with `$e` bound to the executor inside.
macro_rules! each {
    ($self:expr, $e:ident => $body:expr) => {
        match $self {
            ExecutorConfig::SharedIterations($e) => $body,
            ExecutorConfig::PerVuIterations($e) => $body,
            ExecutorConfig::ConstantVus($e) => $body,
            ExecutorConfig::RampingVus($e) => $body,
            ExecutorConfig::ConstantArrivalRate($e) => $body,
            ExecutorConfig::RampingArrivalRate($e) => $body,
        }
    };
}

fn name_of<E: Executor>(_: &E) -> &'static str {
    E::NAME
}

impl ExecutorConfig {
    /// Reads the executor named `name`; `None` when no executor has that name.
    pub fn parse(name: &str, opts: &ScenarioReader) -> Result<Option<ExecutorConfig>> {
        fn read<E: Executor>(
            opts: &ScenarioReader,
            wrap: fn(E) -> ExecutorConfig,
        ) -> Result<Option<ExecutorConfig>> {
            opts.check_keys(E::NAME, E::OPTIONS)?;
            E::parse(opts).map(|e| Some(wrap(e)))
        }
        match name {
            SharedIterations::NAME => read(opts, ExecutorConfig::SharedIterations),
            PerVuIterations::NAME => read(opts, ExecutorConfig::PerVuIterations),
            ConstantVus::NAME => read(opts, ExecutorConfig::ConstantVus),
            RampingVus::NAME => read(opts, ExecutorConfig::RampingVus),
            ConstantArrivalRate::NAME => read(opts, ExecutorConfig::ConstantArrivalRate),
            RampingArrivalRate::NAME => read(opts, ExecutorConfig::RampingArrivalRate),
            _ => Ok(None),
        }
    }

    /// k6's executor name.
    pub fn name(&self) -> &'static str {
        each!(self, e => name_of(e))
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        each!(self, e => e.validate())
    }

    pub fn scale(&mut self, time: f64, vus: f64) {
        each!(self, e => e.scale(time, vus))
    }

    pub fn max_vus(&self) -> u64 {
        each!(self, e => e.max_vus())
    }

    pub fn max_duration(&self) -> Duration {
        each!(self, e => e.max_duration())
    }

    pub fn scheduled(&self) -> Duration {
        each!(self, e => e.scheduled())
    }

    pub fn describe(&self) -> String {
        each!(self, e => e.describe())
    }

    pub fn to_json(&self, out: &mut Map<String, Value>) {
        out.insert("executor".into(), self.name().into());
        each!(self, e => e.to_json(out))
    }

    /// Runs one scenario on this worker to its end.
    pub async fn run<F: VuFactory>(
        &self,
        sc: Rc<ScenarioRun>,
        env: ExecEnv<'_, F>,
    ) -> Result<(), String> {
        sc.started.set(Some(std::time::Instant::now()));
        each!(self, e => e.run(sc, env).await)
    }
}

/// A duration in k6's notation, as JSON.
fn duration_json(d: Duration) -> Value {
    Value::String(duration::format(d))
}

/// Multiplies a VU count or rate by `factor`, keeping at least 1 where there was one.
fn scale_count(x: &mut u64, factor: f64) {
    if *x > 0 {
        *x = ((*x as f64) * factor).round().max(1.0) as u64;
    }
}

/// What every executor on a worker gets.
pub struct ExecEnv<'a, F: VuFactory> {
    pub factory: &'a F,
    pub segment: Segment,
    pub run: Arc<RunState>,
    pub graceful_stop: Duration,
}

/// VUs started between two turns of the worker's other tasks (see [`pace_start`]).
const START_BATCH: usize = 32;

/// Called after starting the `n`-th VU (0-based) of a batch started at once: every
/// [`START_BATCH`] VUs, lets the worker's other tasks run (responses, sleeps coming due).
/// A VU runs up to its first wait when it starts (vu_task.rs). Creating 50,000 VUs first
/// and running their first iterations after put their first sleeps' ends only a first
/// iteration apart; waking one costs more (the iteration's end, the next one's start), so
/// the herd of first wakeups queued behind itself (10-30 ms oversleep at the end of it).
pub async fn pace_start(n: usize) {
    if n % START_BATCH == START_BATCH - 1 {
        tokio::task::yield_now().await;
    }
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

/// What an executor waits for at its end: VU loops ([`VuSet`]) or iteration tasks.
pub trait Running {
    /// Resolves when all ended by themselves.
    fn all_ended(&mut self) -> impl Future<Output = ()>;
    /// Interrupts the rest.
    fn stop_all(self) -> impl Future<Output = ()>;
}

impl Running for VuSet {
    async fn all_ended(&mut self) {
        VuSet::all_ended(self).await
    }

    async fn stop_all(self) {
        VuSet::stop_all(&self)
    }
}

impl Running for JoinSet<()> {
    async fn all_ended(&mut self) {
        while self.join_next().await.is_some() {}
    }

    async fn stop_all(mut self) {
        self.shutdown().await
    }
}

/// Waits for VU loops to end by themselves until `hard_deadline`, then interrupts the rest.
/// A graceful stop (the first signal) gives them `graceful_stop` from then, as k6 gives
/// each scenario's gracefulStop; a hard stop ends the wait at once.
pub async fn finish(
    mut tasks: impl Running,
    hard_deadline: Instant,
    graceful_stop: Duration,
    run: &RunState,
) {
    let mut stop = run.subscribe();
    let mut stop2 = run.subscribe();
    tokio::select! {
        _ = tasks.all_ended() => {}
        _ = tokio::time::sleep_until(hard_deadline) => {}
        _ = async { reached(&mut stop, Stop::Graceful).await; tokio::time::sleep(graceful_stop).await } => {}
        _ = reached(&mut stop2, Stop::Hard) => {}
    }
    tasks.stop_all().await;
}

/// Sleeps until `deadline` or until the run is told to stop, whichever comes first.
pub async fn sleep_or_stop(deadline: Instant, run: &RunState) {
    let mut stop = run.subscribe();
    tokio::select! {
        _ = tokio::time::sleep_until(deadline) => {}
        _ = reached(&mut stop, Stop::Graceful) => {}
    }
}

/// Scales a ramp: targets are load (VUs or rates), durations are time.
fn scale_stages(stages: &mut [Stage], time: f64, vus: f64) {
    for st in stages {
        scale_count(&mut st.target, vus);
        st.duration = st.duration.div_f64(time);
    }
}

fn stages_json(stages: &[Stage]) -> Value {
    stages
        .iter()
        .map(|x| serde_json::json!({"duration": duration::format(x.duration), "target": x.target}))
        .collect()
}

#[cfg(test)]
mod tests;
