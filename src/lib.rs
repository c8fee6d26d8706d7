//! `engine`: a load engine with a Rust core that runs k6-style load-test scripts in Lua.
//!
//! # Layout
//!
//! - [`cli`]: flag syntax only.
//! - [`options`]: the test plan model and the one precedence function (CLI > env > script).
//! - [`script`]: the Lua side: state per worker, k6 modules, `require`, VU coroutines.
//! - [`exec`]: worker threads, executors (one file each), segments, stop signals.
//! - [`http`]: the HTTP client: pools, redirects, cookies, k6 error codes.
//! - [`metrics`]: registry, worker buffers, the aggregator, HDR sinks, snapshots.
//! - [`report`]: end-of-test summary and its JSON export.
//! - [`target`]: the reference funnel server (`engine serve`), standalone.
//! - [`run`]: wires the above into `engine run`; [`serve`] into `engine serve`.

pub mod cli;
pub mod error;
pub mod exec;
pub mod fasthash;
pub mod http;
pub mod metrics;
pub mod options;
pub mod report;
pub mod run;
pub mod script;
pub mod serve;
pub mod target;
pub mod thresholds;
pub mod timefmt;

/// Runs one CLI command; returns the process exit code.
pub fn main_command(cli: cli::Cli) -> error::Result<u8> {
    match cli.command {
        cli::Command::Run(args) => run::run(args),
        cli::Command::Serve(args) => serve::serve(args),
        cli::Command::Inspect(args) => run::inspect(args),
    }
}
