//! `engine`: a load engine with a Rust core that runs k6-style load-test scripts in Lua.
//!
//! # Layout
//!
//! - [`cli`]: flag syntax only.
//! - [`run`]: `engine run` and `engine inspect`, in the order a run happens: the flags
//!   checked and one [`run::plan::RunPlan`] resolved, then prepare, workers, lifecycle,
//!   signals, finish.
//! - [`options`]: the test plan model: durations, stages, scenarios, the one precedence
//!   function (CLI > env > script); no I/O, no Lua.
//! - [`script`]: the Lua side (the only user of mlua): a state per worker, the prelude,
//!   one file per k6 module, `require`, VU coroutines and their driver.
//! - [`exec`]: worker threads, executors (one file each, behind a trait), segments, the
//!   stop signal and its cause.
//! - [`http`]: the HTTP client: pools, redirects, cookies, k6 error codes.
//! - [`metrics`]: registry, worker buffers, the aggregator, HDR sinks, snapshots.
//! - [`thresholds`]: threshold expressions and their verdicts.
//! - [`report`]: banner, end-of-test summary, exports, progress, sample outputs.
//! - [`target`]: the reference funnel server (`engine serve`), standalone; [`serve`] wires
//!   it into the command.
//!
//! Only `main.rs` exits the process: everything here returns an exit code or an [`error::Error`].

pub mod alloc;
pub mod cli;
pub mod error;
pub mod exec;
pub mod fasthash;
pub mod http;
pub mod live;
pub mod metrics;
pub mod options;
pub mod part;
pub mod report;
pub mod run;
pub mod script;
pub mod serve;
pub mod target;
pub mod thresholds;
pub mod timefmt;

#[cfg(test)]
mod proptests;

/// Runs one CLI command; returns the process exit code.
pub fn main_command(cli: cli::Cli) -> error::Result<u8> {
    match cli.command {
        cli::Command::Run(args) => run::run(args),
        cli::Command::Serve(args) => serve::serve(args),
        cli::Command::Inspect(args) => run::inspect(args),
        cli::Command::Merge(args) => run::merge(args),
    }
}
