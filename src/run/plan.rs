//! The resolved run plan: everything a run needs, resolved once from the command line, the
//! `K6_*` environment and the script's `options` (precedence, lowest first: defaults <
//! script < env < CLI; `options::consolidate` owns that order for the test's shape). `run`
//! and `inspect` both start from it, and nothing re-reads a flag later.

use super::limits;
use crate::cli::RunArgs;
use crate::error::{Error, Result};
use crate::exec::Segment;
use crate::http::{self, ConnectionPolicy};
use crate::live::{state::FunnelSpec, OutputSpec};
use crate::options::{self, ExecSettings, Plan, Stage};
use crate::script::Script;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The command line, checked: every value that can be wrong without the script is rejected
/// here, with the flag's name, before anything starts.
pub struct Flags {
    pub args: RunArgs,
    pub segment: Segment,
    /// The script's `__ENV`: the process environment (unless disabled), then `-e` pairs.
    pub env: BTreeMap<String, String>,
    /// The CLI tier of the test's shape.
    exec: ExecSettings,
    policy: ConnectionPolicy,
    tls_ca_pem: Option<String>,
    trend_stats: Option<Vec<String>>,
    /// `--out` and `K6_WEB_DASHBOARD`, checked.
    pub outputs: Vec<OutputSpec>,
    /// `--start-at`, read before the script runs (`+30s` counts from the launch).
    start_at: Option<std::time::SystemTime>,
    /// Bytes each Lua state may use: `--max-memory` (default half the machine's memory)
    /// split between the workers and the main thread.
    pub memory_per_state: usize,
}

impl Flags {
    pub fn read(args: &RunArgs) -> Result<Flags> {
        if !args.script.is_file() {
            return Err(Error::script(format!(
                "cannot read script {}: no such file",
                args.script.display()
            )));
        }
        for (flag, x) in [
            ("--time-scale", args.time_scale),
            ("--vu-scale", args.vu_scale),
        ] {
            if !(x > 0.0 && x.is_finite()) {
                return Err(Error::config(format!(
                    "{flag} {x}: must be a positive number"
                )));
            }
        }
        if args.workers == Some(0) {
            return Err(Error::config("--workers 0: must be at least 1"));
        }
        let tls_ca_pem = match &args.tls_ca {
            None => None,
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| Error::config(format!("--tls-ca {}: {e}", path.display())))?,
            ),
        };
        let total = match &args.max_memory {
            Some(text) => options::parse_size(text)
                .map_err(|e| Error::config(format!("--max-memory: {e}")))?,
            None => limits::physical_memory() / 2,
        };
        let states = args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            + 1;
        Ok(Flags {
            memory_per_state: (total / states as u64).max(1 << 20) as usize,
            segment: execution_segment(args)?,
            env: script_env(args)?,
            exec: cli_settings(args)?,
            policy: parse_policy(&args.connections)?,
            tls_ca_pem,
            outputs: crate::live::spec::parse_all(&args.out, &|k| std::env::var(k).ok())
                .map_err(Error::config)?,
            start_at: args.start_at.as_deref().map(start_at).transpose()?,
            trend_stats: args
                .summary_trend_stats
                .as_ref()
                .map(|s| s.split(',').map(|x| x.trim().to_string()).collect()),
            args: args.clone(),
        })
    }

    /// Points the script's TRACKING_URL and DASHBOARD_API_URL at the in-process server
    /// (`--serve`); `-e` values given by the user still win.
    pub fn point_at_server(&mut self, url: &str) {
        for key in ["TRACKING_URL", "DASHBOARD_API_URL"] {
            let prefix = format!("{key}=");
            if !self.args.env.iter().any(|p| p.starts_with(&prefix)) {
                self.env.insert(key.to_string(), url.to_string());
            }
        }
    }
}

/// Everything a run needs, resolved.
pub struct RunPlan {
    pub script: PathBuf,
    pub env: BTreeMap<String, String>,
    pub seed: Option<u64>,
    /// This process's share of the plan (`--execution-segment`).
    pub segment: Segment,
    pub workers: usize,
    pub time_scale: f64,
    /// Scenarios, thresholds and timeouts, scaled (`--time-scale`, `--vu-scale`).
    pub options: Plan,
    pub http: http::Settings,
    /// Trend statistics of the summary and its exports.
    pub trend_stats: Vec<String>,
    /// `--out` specs, checked.
    pub outputs: Vec<OutputSpec>,
    /// SHA-256 of what makes two processes parts of one test: the script's content, the
    /// resolved options, the `-e` pairs, the scale flags and the seed.
    pub fingerprint: String,
    /// `--start-at`: when the test proper starts (wall clock).
    pub start_at: Option<std::time::SystemTime>,
    /// `options.funnel`: the dashboard's funnel panel.
    pub funnel: Option<FunnelSpec>,
    /// The reference funnel server runs in this process (`--serve`).
    pub serve: bool,
    pub quiet: bool,
    pub summary: bool,
    pub summary_export: Option<PathBuf>,
    pub evaluate_thresholds: bool,
    pub run_setup: bool,
    pub run_teardown: bool,
}

impl RunPlan {
    /// Resolves the plan from the checked flags and the script's options (read from its
    /// main state, which has run the init code).
    pub fn resolve(flags: Flags, script: &Script) -> Result<RunPlan> {
        let Flags {
            args,
            segment,
            env,
            exec,
            policy,
            tls_ca_pem,
            trend_stats,
            outputs,
            start_at,
            ..
        } = flags;
        let script_options = script.options()?;
        let funnel = FunnelSpec::from_options(&script_options).map_err(Error::config)?;
        let mut options = options::consolidate(&script_options, &env, exec)?;
        options.scale(args.time_scale, args.vu_scale);
        let fingerprint = fingerprint(&args, &options)?;
        for sc in &options.scenarios {
            if !script.defines(&sc.exec) {
                let what = if sc.exec == "default" {
                    "function default() is not defined".to_string()
                } else {
                    format!("exec function {:?} is not defined", sc.exec)
                };
                return Err(Error::config(format!(
                    "scenario {}: {what} in {}",
                    sc.name,
                    args.script.display()
                )));
            }
        }
        let workers = args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let policy = if options.no_connection_reuse {
            ConnectionPolicy::NoReuse
        } else if options.no_vu_connection_reuse && policy != ConnectionPolicy::NoReuse {
            ConnectionPolicy::PerIteration
        } else {
            policy
        };
        let max_connections = (policy == ConnectionPolicy::Shared)
            .then(|| limits::connections_per_worker(args.max_connections, workers, args.serve));
        let http = http::Settings {
            policy,
            user_agent: options.user_agent.clone(),
            discard_response_bodies: options.discard_response_bodies,
            no_cookies_reset: options.no_cookies_reset,
            net: make_net(&args, &options.net, tls_ca_pem)?,
            max_connections,
            throw: args.throw || options.throw,
            max_redirects: options.max_redirects,
        };
        Ok(RunPlan {
            script: args.script,
            env,
            seed: args.seed,
            segment,
            workers,
            time_scale: args.time_scale,
            trend_stats: trend_stats.unwrap_or_else(|| options.summary_trend_stats.clone()),
            options,
            http,
            outputs,
            funnel,
            fingerprint,
            start_at,
            serve: args.serve,
            quiet: args.quiet,
            summary: !args.no_summary,
            summary_export: args.summary_export,
            evaluate_thresholds: !args.no_thresholds,
            run_setup: !args.no_setup,
            run_teardown: !args.no_teardown,
        })
    }

    /// The threshold expressions as written, per metric key (for outputs that list them).
    pub fn threshold_texts(&self) -> BTreeMap<String, Vec<String>> {
        self.options
            .thresholds
            .iter()
            .map(|(k, v)| {
                let texts = v
                    .iter()
                    .filter_map(|t| {
                        t.as_str()
                            .or_else(|| t.get("threshold")?.as_str())
                            .map(String::from)
                    })
                    .collect();
                (k.clone(), texts)
            })
            .collect()
    }
}

/// The run's resolver and TLS settings: the script's options with the CLI flags on top.
fn make_net(
    args: &RunArgs,
    opts: &options::NetOptions,
    tls_ca_pem: Option<String>,
) -> Result<Arc<http::Net>> {
    let mut tls = opts.tls.clone();
    tls.insecure_skip_verify |= args.insecure_skip_tls_verify;
    if tls_ca_pem.is_some() {
        tls.extra_ca_pem = tls_ca_pem;
    }
    let tls = http::Tls::new(tls).map_err(Error::config)?;
    let resolver =
        http::Resolver::new(opts.hosts.clone().into_iter().collect()).map_err(Error::config)?;
    Ok(Arc::new(http::Net {
        resolver,
        tls,
        h2c: opts.h2c || args.h2c,
    }))
}

/// `--execution-segment`, checked against `--execution-segment-sequence` when both are given.
fn execution_segment(args: &RunArgs) -> Result<Segment> {
    if let Some(n) = args.segment_count {
        return segment_by_index(args, n);
    }
    if args.segment_index.is_some() {
        return Err(Error::config("--segment-index needs --segment-count"));
    }
    let segment = match &args.execution_segment {
        None => Segment::WHOLE,
        Some(text) => {
            Segment::parse(text).map_err(|e| Error::config(format!("--execution-segment: {e}")))?
        }
    };
    if let Some(seq) = &args.execution_segment_sequence {
        segment
            .check_in_sequence(seq)
            .map_err(|e| Error::config(format!("--execution-segment-sequence: {e}")))?;
    }
    Ok(segment)
}

/// `--segment-index I --segment-count N`: the I-th of N equal segments; the index defaults
/// to Kubernetes' `JOB_COMPLETION_INDEX` (an Indexed Job's pods).
fn segment_by_index(args: &RunArgs, n: u64) -> Result<Segment> {
    if args.execution_segment.is_some() || args.execution_segment_sequence.is_some() {
        return Err(Error::config(
            "--segment-count replaces --execution-segment and --execution-segment-sequence; give one or the other",
        ));
    }
    if n == 0 {
        return Err(Error::config("--segment-count 0: must be at least 1"));
    }
    let i = match args.segment_index {
        Some(i) => i,
        None => {
            let v = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                Error::config("--segment-count needs --segment-index or JOB_COMPLETION_INDEX")
            })?;
            v.trim().parse().map_err(|_| {
                Error::config(format!("JOB_COMPLETION_INDEX={v:?}: expected a number"))
            })?
        }
    };
    if i >= n {
        return Err(Error::config(format!(
            "--segment-index {i}: must be below --segment-count {n}"
        )));
    }
    Ok(Segment::nth(i, n))
}

/// The plan's identity for result parts (see [`RunPlan::fingerprint`]). Flags that only
/// choose this process's share or its outputs (segments, `--out`, `--start-at`) are left out.
fn fingerprint(args: &RunArgs, options: &Plan) -> Result<String> {
    use ring::digest::{digest, SHA256};
    let hex = |d: ring::digest::Digest| -> String {
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    };
    let script = std::fs::read(&args.script)
        .map_err(|e| Error::script(format!("{}: {e}", args.script.display())))?;
    let mut env = args.env.clone();
    env.sort();
    let doc = serde_json::json!({
        "script_sha256": hex(digest(&SHA256, &script)),
        "options": options.to_json(),
        "env": env,
        "time_scale": args.time_scale,
        "vu_scale": args.vu_scale,
        "seed": args.seed,
    });
    Ok(hex(digest(&SHA256, doc.to_string().as_bytes())))
}

/// `--start-at`: RFC 3339 (`2026-12-04T10:00:00Z`, `...+01:00`, fractions allowed) or
/// `+DURATION` from now.
pub fn start_at(text: &str) -> Result<std::time::SystemTime> {
    let bad = |e: String| Error::config(format!("--start-at {text:?}: {e}"));
    if let Some(rel) = text.strip_prefix('+') {
        let d = options::duration::parse(rel).map_err(bad)?;
        return Ok(std::time::SystemTime::now() + d);
    }
    let ms = crate::timefmt::parse_rfc3339_ms(text).map_err(bad)?;
    Ok(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

/// The script's __ENV: the process environment (unless disabled), then `-e` pairs.
fn script_env(args: &RunArgs) -> Result<BTreeMap<String, String>> {
    let mut env: BTreeMap<String, String> = if args.include_system_env_vars {
        std::env::vars().collect()
    } else {
        BTreeMap::new()
    };
    for pair in &args.env {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Error::config(format!("--env {pair:?}: expected KEY=VALUE")))?;
        let valid = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::config(format!(
                "--env {pair:?}: invalid variable name {k:?}"
            )));
        }
        env.insert(k.to_string(), v.to_string());
    }
    Ok(env)
}

fn parse_policy(text: &str) -> Result<ConnectionPolicy> {
    match text {
        "shared" => Ok(ConnectionPolicy::Shared),
        "per-vu" => Ok(ConnectionPolicy::PerVu),
        "per-iteration" => Ok(ConnectionPolicy::PerIteration),
        "per-request" => Ok(ConnectionPolicy::NoReuse),
        other => Err(Error::config(format!(
            "--connections {other:?}: expected shared, per-vu, per-iteration or per-request"
        ))),
    }
}

/// CLI values -> the CLI tier of the plan, with errors naming the flag.
fn cli_settings(args: &RunArgs) -> Result<ExecSettings> {
    let count = |flag: &str, v: &Option<String>| -> Result<Option<u64>> {
        v.as_deref()
            .map(|t| {
                options::parse_count_text(t).map_err(|e| Error::config(format!("{flag}: {e}")))
            })
            .transpose()
    };
    let stages = if args.stages.is_empty() {
        None
    } else {
        let parsed = args.stages.iter().map(|s| {
            Stage::parse_cli(s).map_err(|e| Error::config(format!("--stage: {}", e.message)))
        });
        Some(parsed.collect::<Result<_>>()?)
    };
    Ok(ExecSettings {
        vus: count("--vus", &args.vus)?,
        duration: args
            .duration
            .as_deref()
            .map(|d| {
                options::duration::parse(d).map_err(|e| Error::config(format!("--duration: {e}")))
            })
            .transpose()?,
        iterations: count("--iterations", &args.iterations)?,
        stages,
        scenarios: None,
    })
}
