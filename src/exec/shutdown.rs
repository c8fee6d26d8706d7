//! The one stop signal of a run, shared by every worker, why it stopped early, and run-wide
//! counters.

use crate::error::ExitCode;
use crate::metrics::VuGauges;
use std::fmt;
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

/// Why a run stopped before its plan ended; the first cause wins.
#[derive(Debug, Clone, PartialEq)]
pub enum StopCause {
    /// SIGINT or SIGTERM.
    Signal,
    /// A threshold with `abortOnFail` was crossed.
    Threshold { metric: String, expression: String },
    /// `exec.test.abort(reason)` in VU code.
    ScriptAbort(String),
}

impl StopCause {
    /// k6's exit code for a run that ended this way.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            StopCause::Signal => ExitCode::ExternalAbort,
            StopCause::Threshold { .. } => ExitCode::ThresholdsFailed,
            StopCause::ScriptAbort(_) => ExitCode::ScriptAborted,
        }
    }
}

impl fmt::Display for StopCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopCause::Signal => f.write_str("stopped by signal"),
            StopCause::Threshold { metric, expression } => {
                write!(
                    f,
                    "thresholds crossed (abortOnFail): {metric} '{expression}'"
                )
            }
            StopCause::ScriptAbort(reason) => f.write_str(reason),
        }
    }
}

/// Shared by all workers: the stop signal, progress counters and the stop cause.
pub struct RunState {
    stop: watch::Sender<Stop>,
    pub complete: AtomicU64,
    pub interrupted: AtomicU64,
    pub gauges: Arc<VuGauges>,
    cause: Mutex<Option<StopCause>>,
}

impl RunState {
    pub fn new(gauges: Arc<VuGauges>) -> Arc<RunState> {
        Arc::new(RunState {
            stop: watch::Sender::new(Stop::Running),
            complete: AtomicU64::new(0),
            interrupted: AtomicU64::new(0),
            gauges,
            cause: Mutex::new(None),
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

    /// Stops the run at `level` and remembers why (the first cause wins).
    pub fn stop(&self, cause: StopCause, level: Stop) {
        self.cause
            .lock()
            .expect("stop cause lock")
            .get_or_insert(cause);
        self.request_stop(level);
    }

    /// Why the run stopped early, if it did.
    pub fn cause(&self) -> Option<StopCause> {
        self.cause.lock().expect("stop cause lock").clone()
    }

    /// Counts how an iteration ended; an abort stops the run.
    pub fn record(&self, outcome: super::Outcome) {
        match outcome {
            super::Outcome::Completed => self.count(true),
            // It ran to its end: complete, as k6 v1.1 counts it.
            super::Outcome::Failed => self.count(true),
            super::Outcome::Aborted(reason) => {
                self.count(false);
                self.stop(StopCause::ScriptAbort(reason), Stop::Hard);
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
