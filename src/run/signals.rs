//! SIGINT and SIGTERM over the whole run, from before the init code to the last report, and
//! the thresholds that abort on failure (judged every 2 s, k6's rate) while the scenarios
//! run. The first signal stops the run where it is (no new iterations; running ones get
//! their scenario's gracefulStop; setup, teardown or handleSummary is cut short), teardown
//! runs if setup finished, the summary is printed, exit 105. A second signal ends the
//! process at once.

use super::workers::SetupData;
use crate::error::{Error, Result};
use crate::exec::{self, RunState, Stop, StopCause};
use crate::metrics::AggregatorHandle;
use crate::thresholds::{self, Threshold};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Counts SIGINT/SIGTERM from a thread of its own, so no phase can miss one.
pub struct Signals {
    count: watch::Receiver<u32>,
}

impl Signals {
    /// Installs the handlers and starts listening.
    pub fn listen() -> Result<Signals> {
        let (tx, rx) = watch::channel(0u32);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    use tokio::signal::unix::{signal, SignalKind};
                    let handlers = signal(SignalKind::interrupt())
                        .and_then(|i| Ok((i, signal(SignalKind::terminate())?)));
                    let (mut int, mut term) = match handlers {
                        Ok(h) => h,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    // The run waits for this before it starts anything.
                    let _ = ready_tx.send(Ok(()));
                    loop {
                        tokio::select! {
                            _ = int.recv() => {}
                            _ = term.recv() => {}
                        }
                        tx.send_modify(|n| *n += 1);
                    }
                });
            })
            .map_err(|e| Error::generic(format!("cannot start the signal listener: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Signals { count: rx }),
            Ok(Err(e)) => Err(Error::generic(format!("cannot listen for signals: {e}"))),
            Err(_) => Err(Error::generic("the signal listener died")),
        }
    }

    /// Signals received so far.
    pub fn received(&self) -> u32 {
        *self.count.borrow()
    }

    /// Resolves once `n` signals have been received in all.
    pub async fn reached(&self, n: u32) {
        let mut rx = self.count.clone();
        // An error means the listener is gone: no signal will come.
        if rx.wait_for(|c| *c >= n).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Runs `phase` unless the next signal comes first (`None` then).
    pub async fn or_next<T>(&self, phase: impl Future<Output = T>) -> Option<T> {
        let next = self.received() + 1;
        tokio::select! {
            v = phase => Some(v),
            _ = self.reached(next) => None,
        }
    }
}

/// How the scenarios ended.
pub enum Ended {
    /// Every worker finished (by the plan, a graceful stop or an abort).
    Joined,
    /// A second signal: exit now, without waiting for anything.
    Now,
}

/// Waits for the workers while listening for signals and judging aborting thresholds.
pub async fn wait(
    workers: exec::Workers<SetupData>,
    run: Arc<RunState>,
    agg: &AggregatorHandle,
    thresholds: &[Threshold],
    signals: &Signals,
) -> Result<Ended> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        // The receiver only goes away if the main thread is already exiting.
        let _ = tx.send(workers.join());
    });
    let stops = async {
        signals.reached(1).await;
        stopping(&run);
        signals.reached(2).await;
    };
    tokio::select! {
        r = rx => r
            .unwrap_or_else(|_| Err(Error::generic("worker supervisor thread died")))
            .map(|()| Ended::Joined),
        _ = stops => Ok(Ended::Now),
        _ = watch_thresholds(agg, thresholds, &run) => unreachable!("the threshold watch never ends by itself"),
    }
}

/// The first signal: no new iterations, running ones get their scenario's gracefulStop.
pub fn stopping(run: &RunState) {
    eprintln!(
        "\nstopping: no new iterations; running ones get their scenario's gracefulStop (press Ctrl-C again to exit at once)"
    );
    run.stop(StopCause::Signal, Stop::Graceful);
}

/// Every 2 s (k6's rate), judges the thresholds that may abort the run. Never returns.
async fn watch_thresholds(agg: &AggregatorHandle, thresholds: &[Threshold], run: &RunState) {
    let aborting: Vec<Threshold> = thresholds
        .iter()
        .filter(|t| t.abort_on_fail)
        .cloned()
        .collect();
    if aborting.is_empty() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let snap = agg.snapshot();
        let crossed = thresholds::evaluate(&aborting, &snap)
            .into_iter()
            .find(|v| !v.ok && snap.elapsed >= v.threshold.delay_abort_eval);
        if let Some(v) = crossed {
            let cause = StopCause::Threshold {
                metric: v.threshold.key.clone(),
                expression: v.threshold.source.clone(),
            };
            run.stop(cause, Stop::Hard);
            return std::future::pending().await;
        }
    }
}
