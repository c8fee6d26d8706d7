//! Scheduling: worker threads, executors, segments, VU start/stop and graceful/hard stop.
//! No Lua here: executors drive anything that implements [`Vu`].
//!
//! VU lifecycle, per scenario:
//!
//! | state      | event                                   | next                          |
//! |------------|-----------------------------------------|-------------------------------|
//! | idle       | executor wants it                       | looping (runner started)      |
//! | looping    | iteration ends, executor still wants it | looping (next iteration)      |
//! | looping    | executor stops wanting it               | finishes its iteration, idle  |
//! | looping    | grace (gracefulStop / gracefulRampDown) runs out | interrupted, idle    |
//! | any        | hard stop (2nd Ctrl-C, test.abort)      | interrupted, gone             |

pub mod executors;
mod segment;
mod shutdown;
mod sleeps;
mod vu_task;
mod worker;

pub use segment::Segment;
pub use shutdown::{RunState, Stop, StopCause};
pub use sleeps::SleepQueue;
pub use worker::{
    run_scenarios, share_scenarios, spawn_workers, SharedScenario, WorkerSetup, Workers,
};

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Instant;

/// How one iteration ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed,
    /// The iteration threw (an error, `fail()`): it ran to its end, so it counts as
    /// complete, as in k6 v1.1; the VU goes on.
    Failed,
    /// `exec.test.abort()`: the whole run stops.
    Aborted(String),
}

/// One virtual user as the executors see it: a step machine. Each call runs the VU's script
/// up to its next wait and says what it waits for; whoever drives it does the waiting.
/// A VU that sleeps is parked in its worker's [`SleepQueue`] with no task of its own (see
/// vu_task.rs); one that waits for a request has a task while it waits.
pub trait Vu {
    /// What its [`Next::Wait`] futures give back, to be passed to [`Vu::advance`].
    type Reply: 'static;

    /// Starts an iteration, or goes on with the current one, up to its next wait or its end.
    /// The scenario comes as the executor's `Rc`: a VU keeps a clone of the pointer, not of
    /// the scenario.
    fn advance(&mut self, input: Input<'_, Self::Reply>) -> Next<Self::Reply>;

    /// The worker's sleep queue, where this VU's sleeps wait.
    fn sleeps(&self) -> &std::rc::Rc<SleepQueue>;

    /// Runs one iteration to its end, waiting in place (arrival-rate executors, tests).
    fn iterate(&mut self, scenario: &std::rc::Rc<ScenarioRun>) -> impl Future<Output = Outcome>
    where
        Self: Sized,
    {
        async move {
            let mut next = self.advance(Input::Start(scenario));
            loop {
                next = match next {
                    Next::Done(outcome) => return outcome,
                    Next::Sleep(due) => {
                        let sleeps = self.sleeps().clone();
                        sleeps.sleep_until(due).await;
                        self.advance(Input::Woke(due))
                    }
                    Next::Wait(reply) => {
                        let reply = reply.await;
                        self.advance(Input::Reply(reply))
                    }
                }
            }
        }
    }
}

/// What a VU is advanced with.
pub enum Input<'a, R> {
    /// Start an iteration of this scenario.
    Start(&'a std::rc::Rc<ScenarioRun>),
    /// Its sleep, due then, is over (the VU measures how late it woke).
    Woke(tokio::time::Instant),
    /// What its wait gave.
    Reply(R),
}

/// What a VU does next.
pub enum Next<R> {
    /// The iteration ended.
    Done(Outcome),
    /// It sleeps until then (tokio's clock).
    Sleep(tokio::time::Instant),
    /// It waits for this (a request); the output goes back as [`Input::Reply`].
    Wait(Pin<Box<dyn Future<Output = R>>>),
}

/// Creates VUs on a worker; `id_in_test` is the VU's global number (1-based).
pub trait VuFactory {
    type V: Vu + 'static;
    fn create(&self, id_in_test: u64, scenario: &ScenarioRun) -> Result<Self::V, String>;
    /// Records iterations an executor could not start (k6's `dropped_iterations`).
    fn dropped(&self, scenario: &ScenarioRun, count: u64);
    /// How late an arrival-rate iteration started against its schedule (the generator's
    /// own lag, next to the oversleep of `sleep`).
    fn started_late(&self, _scenario: &ScenarioRun, _late: std::time::Duration) {}
}

/// A scenario as one worker runs it.
#[derive(Debug)]
pub struct ScenarioRun {
    pub index: usize,
    pub name: String,
    pub executor: &'static str,
    pub exec: String,
    pub tags: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    /// Shared by every worker, so `iterationInTest` is unique in this process.
    pub iterations_in_test: Arc<AtomicU64>,
    /// Set by the first worker that warns about running out of VUs (one warning per run).
    pub warned_short_of_vus: Arc<AtomicBool>,
    /// Global VU numbers of this scenario start after this offset.
    pub vu_offset: u64,
    pub started: std::cell::Cell<Option<Instant>>,
}

/// Polls futures side by side on this thread (no `Send` needed), returning results in order.
pub async fn join_all<T>(futs: Vec<impl Future<Output = T>>) -> Vec<T> {
    let mut futs: Vec<Pin<Box<_>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}
