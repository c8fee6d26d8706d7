//! The one stop signal of a run, shared by every worker, plus run-wide counters.

use crate::metrics::VuGauges;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    Running,
    /// Start no new iterations; running ones get a short grace (first Ctrl-C).
    Graceful,
    /// Interrupt everything now (second Ctrl-C, `exec.test.abort()`, abortOnFail).
    Hard,
}

/// Shared by all workers: the stop signal, progress counters and the abort reason.
pub struct RunState {
    stop: watch::Sender<Stop>,
    pub complete: AtomicU64,
    pub interrupted: AtomicU64,
    pub gauges: Arc<VuGauges>,
    abort_reason: Mutex<Option<String>>,
}

impl RunState {
    pub fn new(gauges: Arc<VuGauges>) -> Arc<RunState> {
        Arc::new(RunState {
            stop: watch::Sender::new(Stop::Running),
            complete: AtomicU64::new(0),
            interrupted: AtomicU64::new(0),
            gauges,
            abort_reason: Mutex::new(None),
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<Stop> {
        self.stop.subscribe()
    }

    pub fn stop_level(&self) -> Stop {
        *self.stop.borrow()
    }

    /// Raises the stop level (it never goes back down).
    pub fn request_stop(&self, level: Stop) {
        self.stop.send_if_modified(|s| {
            if level > *s {
                *s = level;
                true
            } else {
                false
            }
        });
    }

    /// Stops the run at once and remembers why (the first reason wins).
    pub fn abort(&self, reason: String) {
        self.abort_reason
            .lock()
            .expect("abort lock")
            .get_or_insert(reason);
        self.request_stop(Stop::Hard);
    }

    /// Records why the run stops without raising the stop level.
    pub fn abort_reason_if_none(&self, reason: &str) {
        self.abort_reason
            .lock()
            .expect("abort lock")
            .get_or_insert_with(|| reason.to_string());
    }

    pub fn abort_reason(&self) -> Option<String> {
        self.abort_reason.lock().expect("abort lock").clone()
    }

    /// Counts how an iteration ended; an abort stops the run.
    pub fn record(&self, outcome: super::Outcome) {
        match outcome {
            super::Outcome::Completed => self.count(true),
            super::Outcome::Failed => self.count(false),
            super::Outcome::Aborted(reason) => {
                self.count(false);
                self.abort(reason);
            }
        }
    }

    pub fn count(&self, completed: bool) {
        let c = if completed {
            &self.complete
        } else {
            &self.interrupted
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Resolves when the stop level reaches `level`.
pub async fn reached(rx: &mut watch::Receiver<Stop>, level: Stop) {
    // An error means the sender (RunState) is gone, which only happens after the run.
    let _ = rx.wait_for(|s| *s >= level).await;
}
