//! `engine run` and `engine inspect`. The files read in the order a run happens:
//!
//! - `plan.rs`: the flags checked, then one [`plan::RunPlan`] resolved from them, the
//!   `K6_*` environment and the script's options.
//! - `prepare.rs`: the in-process server, the metrics pipeline, the main Lua state (init
//!   code runs once there), outputs and thresholds.
//! - `limits.rs`: open-file limit and socket budgets.
//! - `workers.rs`: worker threads, each with its own Lua state.
//! - `lifecycle.rs`: the main thread's runtime; setup(), teardown(), handleSummary().
//! - `signals.rs`: SIGINT/SIGTERM and aborting thresholds while the scenarios run.
//! - `finish.rs`: summary, exports and the exit code.

mod finish;
mod lifecycle;
mod limits;
mod merge;
pub mod plan;
mod prepare;
mod signals;
mod workers;

use crate::cli::{InspectArgs, RunArgs};
use crate::error::{ExitCode, Result};
use crate::exec::{Stop, StopCause};
use crate::options;
use crate::report;
use lifecycle::MainThread;
pub use merge::merge;
use signals::{Ended, Signals};
use std::sync::Arc;

/// Runs a test; returns the exit code (0, or 99/100/101/105/107/108 as k6 would).
pub fn run(args: RunArgs) -> Result<u8> {
    let signals = Signals::listen()?;
    let test = prepare::prepare(&args)?;
    let workers = workers::start(&test)?;
    if signals.received() > 0 {
        workers::cancel(workers);
        eprintln!("engine: stopped by signal before the test started");
        return Ok(ExitCode::ExternalAbort as u8);
    }
    let main = MainThread::new()?;
    let setup_data = match lifecycle::setup(&main, &test, &signals) {
        Ok(Some(data)) => Arc::new(data),
        Ok(None) => {
            // Stopped during setup(): no scenario and no teardown (setup did not finish).
            workers::cancel(workers);
            test.run.stop(StopCause::Signal, Stop::Hard);
            return finish::finish(test, &serde_json::Value::Null, &main, None, &signals);
        }
        Err(e) => {
            workers::cancel(workers);
            return Err(e);
        }
    };
    let plan = &test.plan;
    if !plan.quiet && plan.summary {
        let out = &mut std::io::stdout();
        let outputs = test.live.describe();
        report::summary::banner(
            out,
            &plan.script,
            &plan.options,
            plan.segment,
            plan.workers,
            &outputs,
        );
    }
    if let Some(at) = plan.start_at {
        if !wait_until(at, &signals) {
            workers::cancel(workers);
            test.run.stop(StopCause::Signal, Stop::Hard);
            return finish::finish(test, &setup_data, &main, None, &signals);
        }
    }
    let now_us = crate::metrics::now_us();
    let skew = plan.start_at.map(|at| {
        let at_ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        now_us as f64 / 1000.0 - at_ms as f64
    });
    if let Some(s) = skew {
        eprintln!("engine: started {s:.1} ms after --start-at");
    }
    let _ = test.started.set((now_us / 1000, skew));
    test.agg.start_clock();
    workers.start(Some(setup_data.clone()));
    let progress = report::progress::Progress::start(test.run.clone(), &plan.options, plan.quiet);
    let run = test.run.clone();
    let ended = main.block_on(signals::wait(
        workers,
        run,
        &test.agg,
        &test.thresholds,
        &signals,
    ));
    progress.stop();
    test.agg.stop_clock();
    let teardown_failed = match ended? {
        Ended::Joined => lifecycle::teardown(&main, &test, &setup_data, &signals),
        Ended::Now => None,
    };
    if signals.received() >= 2 {
        // A second signal: nothing is worth waiting for, not even the server's or the
        // workers' threads, which dropping `test` would join.
        std::mem::forget(test);
        return Ok(ExitCode::ExternalAbort as u8);
    }
    finish::finish(test, &setup_data, &main, teardown_failed, &signals)
}

/// Waits for `--start-at` (VUs are initialised, setup() has run); false if a signal came.
fn wait_until(at: std::time::SystemTime, signals: &Signals) -> bool {
    if let Ok(wait) = at.duration_since(std::time::SystemTime::now()) {
        eprintln!("engine: waiting {:.1}s for --start-at", wait.as_secs_f64());
    }
    loop {
        if signals.received() > 0 {
            return false;
        }
        let Ok(left) = at.duration_since(std::time::SystemTime::now()) else {
            return true;
        };
        // Short sleeps near the end: the start should be within a millisecond of `at`.
        let step_ms = if left.as_millis() > 50 { 20 } else { 1 };
        std::thread::sleep(left.min(std::time::Duration::from_millis(step_ms)));
    }
}

/// `engine inspect`: the plan `engine run` would execute with the same flags, as JSON.
pub fn inspect(args: InspectArgs) -> Result<u8> {
    let plan = prepare::plan_only(&args.run)?;
    let mut doc = plan.options.to_json();
    if args.execution_requirements {
        doc["maxVUs"] = plan.options.max_vus_in(plan.segment).into();
        doc["executionSegment"] = plan.segment.to_string().into();
        doc["totalDuration"] = options::duration::format(plan.options.max_duration()).into();
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("JSON values serialise")
    );
    Ok(0)
}
