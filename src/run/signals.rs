//! While the scenarios run: SIGINT/SIGTERM (the first stops new iterations, the second ends
//! the run at once) and the thresholds that abort on failure (judged every 2 s, k6's rate).

use super::workers::SetupData;
use crate::error::{Error, Result};
use crate::exec::{self, RunState, Stop, StopCause};
use crate::metrics::AggregatorHandle;
use crate::thresholds::{self, Threshold};
use std::sync::Arc;
use std::time::Duration;

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
) -> Result<Ended> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        // The receiver only goes away if the main thread is already exiting.
        let _ = tx.send(workers.join());
    });
    let signals = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        next_signal(&mut term).await;
        eprintln!(
            "\nstopping: no new iterations; running ones get {}s (press Ctrl-C again to exit at once)",
            exec::executors::SIGNAL_GRACE.as_secs()
        );
        run.stop(StopCause::Signal, Stop::Graceful);
        next_signal(&mut term).await;
    };
    tokio::select! {
        r = rx => r
            .unwrap_or_else(|_| Err(Error::generic("worker supervisor thread died")))
            .map(|()| Ended::Joined),
        _ = signals => Ok(Ended::Now),
        _ = watch_thresholds(agg, thresholds, &run) => unreachable!("the threshold watch never ends by itself"),
    }
}

async fn next_signal(term: &mut Option<tokio::signal::unix::Signal>) {
    match term.as_mut() {
        Some(t) => tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = t.recv() => {} },
        None => {
            // Without a SIGTERM handler, Ctrl-C alone stops the run; an error means no handler
            // could be installed, and then there is nothing to wait for.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
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
