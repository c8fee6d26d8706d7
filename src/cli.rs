//! Flag syntax for `engine run`, `engine inspect` and `engine serve`: raw values only, no
//! precedence and no script loading (that is `options::consolidate`'s job).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "engine",
    version,
    about = "A load engine that runs k6-style load-test scripts written in Lua"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a load test script.
    Run(RunArgs),
    /// Serve the reference funnel server (tracking + dashboard API) on loopback.
    Serve(ServeArgs),
    /// Print a script's resolved options (after CLI/env overrides and scaling) as JSON.
    Inspect(InspectArgs),
    /// Merge the result parts of a split test (`engine run --out part=FILE`) into one
    /// summary, thresholds and exports.
    Merge(MergeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct MergeArgs {
    /// Result parts written by `engine run --out part=FILE`.
    #[arg(required = true, value_name = "PART")]
    pub parts: Vec<PathBuf>,
    /// Write the merged summary in k6's legacy export format.
    #[arg(long = "summary-export", value_name = "FILE")]
    pub summary_export: Option<PathBuf>,
    /// Outputs of the merged results: web-dashboard=export=FILE (the HTML report).
    #[arg(short = 'o', long = "out", value_name = "TYPE=ARGS")]
    pub out: Vec<String>,
    /// Run this script's handleSummary(data) on the merged data.
    #[arg(long, value_name = "SCRIPT")]
    pub script: Option<PathBuf>,
    /// Merge even if the parts' segments do not cover the whole plan.
    #[arg(long = "allow-partial")]
    pub allow_partial: bool,
    /// Do not print the summary.
    #[arg(long = "no-summary")]
    pub no_summary: bool,
    /// Do not evaluate the thresholds.
    #[arg(long = "no-thresholds")]
    pub no_thresholds: bool,
}

#[derive(Args, Debug, Clone)]
pub struct InspectArgs {
    /// Also print the plan's maximum VUs and total duration.
    #[arg(long = "execution-requirements")]
    pub execution_requirements: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub listen: String,
    /// SQLite file for the event log (default: in memory, gone when the server stops).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// How long an exit stays a pending (reversible) bounce before it is final.
    #[arg(long = "bounce-ttl", default_value = "30m", value_name = "DURATION")]
    pub bounce_ttl: String,
    /// How long a silent session stays live.
    #[arg(long = "session-ttl", default_value = "60s", value_name = "DURATION")]
    pub session_ttl: String,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// The Lua script to run.
    pub script: PathBuf,
    /// Number of VUs to run concurrently.
    #[arg(
        short = 'u',
        long = "vus",
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub vus: Option<String>,
    /// Test duration, e.g. 30s, 5m, 1h30m.
    #[arg(
        short = 'd',
        long = "duration",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub duration: Option<String>,
    /// Total iterations, shared among the VUs.
    #[arg(
        short = 'i',
        long = "iterations",
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub iterations: Option<String>,
    /// A ramping stage [duration]:[target], e.g. 30s:100; repeatable.
    #[arg(short = 's', long = "stage", value_name = "DURATION:TARGET")]
    pub stages: Vec<String>,
    /// An environment variable for the script's __ENV, KEY=VALUE; repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Pass the real system environment to __ENV (k6's default for run).
    #[arg(long = "include-system-env-vars", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub include_system_env_vars: bool,
    /// Make every VU's random stream depend only on this seed and the VU's number.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// This instance's share of the plan, k6's syntax: 0:1/4, 25%:50%, 1/2:1 (default 0:1).
    #[arg(long = "execution-segment", value_name = "FROM:TO")]
    pub execution_segment: Option<String>,
    /// All instances' segments, k6's syntax: 0,1/4,1/2,1 (checked against --execution-segment).
    #[arg(long = "execution-segment-sequence", value_name = "POINTS")]
    pub execution_segment_sequence: Option<String>,
    /// This instance is segment I of --segment-count equal segments (default: Kubernetes'
    /// JOB_COMPLETION_INDEX).
    #[arg(long = "segment-index", value_name = "I")]
    pub segment_index: Option<u64>,
    /// Split the plan into N equal segments (with --segment-index).
    #[arg(long = "segment-count", value_name = "N")]
    pub segment_count: Option<u64>,
    /// Initialise, then wait until this wall-clock time to start the test: RFC 3339
    /// (2026-12-04T10:00:00Z) or +30s from now.
    #[arg(long = "start-at", value_name = "TIME")]
    pub start_at: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Accept any TLS certificate (k6's insecureSkipTLSVerify).
    #[arg(long = "insecure-skip-tls-verify")]
    pub insecure_skip_tls_verify: bool,
    /// Trust the CA certificates in this PEM file beside the system roots.
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Speak HTTP/2 to http:// URLs from the first byte (h2c with prior knowledge).
    #[arg(long)]
    pub h2c: bool,
    /// Connection policy: shared (one keep-alive pool per worker), per-vu (k6's), per-iteration, per-request.
    #[arg(long, value_name = "POLICY", default_value = "shared")]
    pub connections: String,
    /// Most sockets the shared pools may open in all (default: what the open-file limit
    /// allows, less a reserve, halved with --serve).
    #[arg(long = "max-connections", value_name = "N")]
    pub max_connections: Option<usize>,
    /// No live progress on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Stream every sample to a file: json=FILE (k6's JSON lines) or csv=FILE; repeatable.
    #[arg(short = 'o', long = "out", value_name = "TYPE=FILE")]
    pub out: Vec<String>,
    /// Do not print the end-of-test summary.
    #[arg(long = "no-summary")]
    pub no_summary: bool,
    /// Write the end-of-test summary as JSON (k6's legacy export format) to FILE.
    #[arg(long = "summary-export", value_name = "FILE")]
    pub summary_export: Option<PathBuf>,
    /// Trend statistics in the summary, e.g. avg,min,med,max,p(90),p(95),p(99).
    #[arg(long = "summary-trend-stats", value_name = "STATS")]
    pub summary_trend_stats: Option<String>,
    /// Divide every duration (stages, scenario durations, graceful stops) and every sleep by X.
    #[arg(long = "time-scale", value_name = "X", default_value_t = 1.0)]
    pub time_scale: f64,
    /// Multiply every VU count and stage target by X (at least 1 VU where there was one).
    #[arg(long = "vu-scale", value_name = "X", default_value_t = 1.0)]
    pub vu_scale: f64,
    /// Start the reference funnel server in-process on a free port and point the script's
    /// TRACKING_URL and DASHBOARD_API_URL at it.
    #[arg(long)]
    pub serve: bool,
    /// Do not evaluate thresholds.
    #[arg(long = "no-thresholds")]
    pub no_thresholds: bool,
    /// Do not run setup().
    #[arg(long = "no-setup")]
    pub no_setup: bool,
    /// Do not run teardown().
    #[arg(long = "no-teardown")]
    pub no_teardown: bool,
    /// Most memory the script's Lua heaps may use in all, e.g. 2GB (default: half the
    /// machine's memory); split evenly between the worker threads and the main thread.
    #[arg(long = "max-memory", value_name = "SIZE")]
    pub max_memory: Option<String>,
    /// Give scripts the whole Lua standard library: os.execute, io.popen, file writes,
    /// package.loadlib, debug, binary chunks (removed by default).
    #[arg(long = "unsafe-lua")]
    pub unsafe_lua: bool,
    /// Failed requests raise an error in the script instead of returning (k6's `throw`).
    #[arg(short = 'w', long)]
    pub throw: bool,
}
