//! The main thread's part of a run: a current-thread runtime for setup(), teardown() and
//! handleSummary(), which run on the main state while the workers wait or are done.

use super::prepare::Prepared;
use super::signals::Signals;
use crate::error::{Error, ExitCode, Result};
use crate::exec::{Stop, StopCause};
use crate::script::hooks::Hook;
use std::future::Future;
use std::time::Duration;

/// handleSummary gets as long as k6 gives it.
const HANDLE_SUMMARY_TIMEOUT: Duration = Duration::from_secs(120);

/// The main thread's runtime (a LocalSet: Lua states are not `Send`).
pub struct MainThread {
    rt: tokio::runtime::Runtime,
    local: tokio::task::LocalSet,
}

impl MainThread {
    pub fn new() -> Result<MainThread> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::generic(format!("cannot start the main runtime: {e}")))?;
        Ok(MainThread {
            rt,
            local: tokio::task::LocalSet::new(),
        })
    }

    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.local.block_on(&self.rt, f)
    }
}

/// Runs setup() unless disabled or undefined; its return value (null without one), or
/// `None` when a signal stopped it.
pub fn setup(
    main: &MainThread,
    test: &Prepared,
    signals: &Signals,
) -> Result<Option<serde_json::Value>> {
    if !test.plan.run_setup {
        return Ok(Some(serde_json::Value::Null));
    }
    let timeout = test.plan.options.setup_timeout;
    let hook = test.main.call_hook(Hook::Setup, None, timeout);
    match main.block_on(signals.or_next(hook)) {
        None => {
            eprintln!("\nstopped during setup(): no scenario runs, and no teardown (setup did not finish)");
            Ok(None)
        }
        Some(None) => Ok(Some(serde_json::Value::Null)),
        Some(Some(result)) => result.map(Some),
    }
}

/// Runs teardown(data) unless disabled or undefined. A failure is logged and its exit code
/// returned (107 for an error, 101 for a timeout, 108 for exec.test.abort): the report
/// still follows, as in k6, but the run fails.
/// A signal cuts it short (the run then ends with 105).
pub fn teardown(
    main: &MainThread,
    test: &Prepared,
    data: &serde_json::Value,
    signals: &Signals,
) -> Option<ExitCode> {
    if !test.plan.run_teardown {
        return None;
    }
    let timeout = test.plan.options.teardown_timeout;
    let hook = test.main.call_hook(Hook::Teardown, Some(data), timeout);
    let Some(done) = main.block_on(signals.or_next(hook)) else {
        eprintln!("\nstopped during teardown()");
        test.run.stop(StopCause::Signal, Stop::Hard);
        return None;
    };
    match done? {
        Ok(_) => None,
        Err(e) => {
            eprintln!("ERRO  teardown: {e}");
            Some(e.code)
        }
    }
}

/// Runs handleSummary(data) if defined: its outputs, or `None` to print the default summary
/// (also when it fails, as in k6).
pub fn handle_summary(
    main: &MainThread,
    test: &Prepared,
    data: &serde_json::Value,
    signals: &Signals,
) -> Option<serde_json::Value> {
    let hook = test
        .main
        .call_hook(Hook::HandleSummary, Some(data), HANDLE_SUMMARY_TIMEOUT);
    let Some(done) = main.block_on(signals.or_next(hook)) else {
        eprintln!("\nstopped during handleSummary(): the default summary follows");
        test.run.stop(StopCause::Signal, Stop::Hard);
        return None;
    };
    match done? {
        Ok(outputs) => Some(outputs),
        Err(e) => {
            eprintln!("ERRO  handleSummary: {e}");
            None
        }
    }
}
