//! `engine run`: load the script, build the plan, start the workers, run setup, the
//! scenarios and teardown, then report. Each step is a function of its own.

use crate::cli::RunArgs;
use crate::error::{Error, ExitCode, Result};
use crate::exec::{self, RunState, Stop, WorkerSetup};
use crate::http::ConnectionPolicy;
use crate::metrics::{Aggregator, AggregatorHandle, Builtins, Registry, Snapshot, TagInterner};
use crate::options::{self, ExecSettings, Plan, Stage};
use crate::report;
use crate::script::{CallError, LuaFactory, Script, Shared, WorkerConfig};
use crate::thresholds::{self, Threshold, Verdict};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs a test; returns the exit code (0, or 99/105/108 as k6 would).
pub fn run(args: RunArgs) -> Result<u8> {
    let started = Instant::now();
    if !args.script.is_file() {
        return Err(Error::script(format!(
            "cannot read script {}: no such file",
            args.script.display()
        )));
    }
    if !(args.time_scale > 0.0 && args.time_scale.is_finite()) {
        return Err(Error::config(format!(
            "--time-scale {}: must be a positive number",
            args.time_scale
        )));
    }
    if !(args.vu_scale > 0.0 && args.vu_scale.is_finite()) {
        return Err(Error::config(format!(
            "--vu-scale {}: must be a positive number",
            args.vu_scale
        )));
    }
    let segment = execution_segment(&args)?;
    let mut env = script_env(&args)?;
    let cli = cli_settings(&args)?;
    let server = if args.serve {
        Some(crate::serve::Background::start(args.time_scale)?)
    } else {
        None
    };
    if let Some(srv) = &server {
        // -e values given by the user still win.
        for key in ["TRACKING_URL", "DASHBOARD_API_URL"] {
            if !args.env.iter().any(|p| p.starts_with(&format!("{key}="))) {
                env.insert(key.to_string(), srv.url.clone());
            }
        }
        eprintln!("engine: reference funnel server on {} (--serve)", srv.url);
    }
    let policy = parse_policy(&args.connections)?;
    let registry = Arc::new(Registry::default());
    let builtins = Builtins::register(&registry);
    let interner = Arc::new(TagInterner::default());
    let agg = Aggregator::spawn(registry.clone(), interner.clone(), builtins);
    let run = RunState::new(agg.gauges.clone());
    let mut cfg = WorkerConfig {
        script_path: args.script.clone(),
        env: env.clone().into_iter().collect(),
        seed: args.seed,
        policy,
        user_agent: format!("engine/{}", env!("CARGO_PKG_VERSION")),
        discard_response_bodies: false,
        no_cookies_reset: false,
        registry,
        builtins,
        run: run.clone(),
        started,
        time_scale: args.time_scale,
        stamp_samples: !args.out.is_empty(),
        snapshots: Some(agg.requester()),
        net: make_net(&args, &options::NetOptions::default())?,
        max_connections: None,
    };

    // The main thread's own state reads the options and later runs setup and teardown.
    let main_script = Script::load(cfg.clone(), agg.tx.clone(), interner.clone(), usize::MAX)?;
    let plan = build_plan(&main_script, &args, &env, cli)?;
    let threshold_texts: BTreeMap<String, Vec<String>> = plan
        .thresholds
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.iter()
                    .filter_map(|t| {
                        t.as_str()
                            .or_else(|| t.get("threshold")?.as_str())
                            .map(String::from)
                    })
                    .collect(),
            )
        })
        .collect();
    let outputs = args
        .out
        .iter()
        .map(|o| report::outputs::open(o, &threshold_texts))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::config)?;
    agg.add_outputs(outputs);
    let thresholds = if args.no_thresholds {
        Vec::new()
    } else {
        thresholds::parse_all(&plan.thresholds, &cfg.registry).map_err(Error::config)?
    };
    let before = (
        cfg.user_agent.clone(),
        cfg.discard_response_bodies,
        cfg.no_cookies_reset,
        cfg.policy,
    );
    cfg.user_agent = plan.user_agent.clone();
    cfg.discard_response_bodies = plan.discard_response_bodies;
    cfg.no_cookies_reset = plan.no_cookies_reset;
    if plan.no_connection_reuse {
        cfg.policy = ConnectionPolicy::NoReuse;
    } else if plan.no_vu_connection_reuse && cfg.policy != ConnectionPolicy::NoReuse {
        cfg.policy = ConnectionPolicy::PerIteration;
    }
    check_fd_budget(cfg.policy, plan.max_vus_in(segment), args.serve)?;
    let net_changed = !plan.net.is_default();
    if net_changed {
        cfg.net = make_net(&args, &plan.net)?;
    }
    if let Some(tier) = plan.shape_overridden_by {
        eprintln!("WARN  \"{tier}\" level configuration overrode scenarios configuration entirely");
    }
    let mut worker_cfg = cfg.clone();
    worker_cfg.snapshots = None; // only the main thread (teardown) reads run totals
                                 // Options that shape the HTTP client and VUs are known only after init ran once.
    let main_script = if before
        == (
            cfg.user_agent.clone(),
            cfg.discard_response_bodies,
            cfg.no_cookies_reset,
            cfg.policy,
        )
        && !net_changed
    {
        main_script
    } else {
        // Dropped now, not at the end of run(): its metric sender would keep the aggregator
        // waiting forever.
        drop(main_script);
        Script::load(cfg.clone(), agg.tx.clone(), interner.clone(), usize::MAX)?
    };

    let worker_count = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    if worker_cfg.policy == ConnectionPolicy::Shared {
        worker_cfg.max_connections = Some(connection_budget(
            args.max_connections,
            worker_count,
            args.serve,
        ));
    }
    let shared = exec::share_scenarios(&plan.scenarios);
    let workers = start_workers(
        (worker_count, segment),
        &worker_cfg,
        &agg,
        &interner,
        shared.clone(),
    )?;
    if let Err(e) = workers.wait_ready() {
        workers.start(None);
        let _ = workers.join();
        return Err(e);
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::generic(e.to_string()))?;
    let local = tokio::task::LocalSet::new();
    let setup_data = if args.no_setup {
        None
    } else {
        local.block_on(
            &rt,
            lifecycle(&main_script, "setup", None, plan.setup_timeout),
        )
    };
    let setup_data = match setup_data {
        Some(Err(e)) => {
            workers.start(None);
            let _ = workers.join();
            return Err(e);
        }
        Some(Ok(v)) => v,
        None => serde_json::Value::Null,
    };
    let setup_data = Arc::new(setup_data);

    if !args.quiet && !args.no_summary {
        report::summary::banner(
            &mut std::io::stdout(),
            &args.script,
            &plan,
            segment,
            worker_count,
        );
    }
    agg.start_clock();
    workers.start(Some(setup_data.clone()));
    let progress = report::progress::Progress::start(run.clone(), &plan, args.quiet);
    let watch = watch_thresholds(&agg, &thresholds, &run);
    let workers_result = local.block_on(&rt, wait_with_signals(workers, run.clone(), watch));
    progress.stop();
    agg.stop_clock();
    workers_result?;

    if !args.no_teardown {
        if let Some(Err(e)) = local.block_on(
            &rt,
            lifecycle(
                &main_script,
                "teardown",
                Some(&setup_data),
                plan.teardown_timeout,
            ),
        ) {
            eprintln!("ERRO  teardown: {e}");
        }
    }
    main_script.ctx.buffer.borrow_mut().flush();
    let suppressed = main_script.ctx.errors.suppressed.get();
    if suppressed > 0 {
        eprintln!("WARN  {suppressed} more iteration errors were not printed");
    }
    let snapshot = agg.snapshot();
    let verdicts = thresholds::evaluate(&thresholds, &snapshot);
    let trend_stats = match &args.summary_trend_stats {
        Some(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
        None => plan.summary_trend_stats.clone(),
    };
    let data = report::export::handle_summary_data(
        &snapshot,
        &verdicts,
        &trend_stats,
        &setup_data,
        stdout_is_tty(),
    );
    let custom = local.block_on(
        &rt,
        lifecycle(
            &main_script,
            "handleSummary",
            Some(&data),
            Duration::from_secs(120),
        ),
    );
    let custom_summary = match custom {
        None => false,
        Some(Ok(outputs)) => {
            write_summary_outputs(&outputs);
            true
        }
        Some(Err(e)) => {
            // k6 falls back to the default summary when handleSummary fails.
            eprintln!("ERRO  handleSummary: {e}");
            false
        }
    };
    drop(main_script);
    drop(agg.finish());
    drop(server);
    finish_report(
        &args,
        &snapshot,
        &verdicts,
        &trend_stats,
        custom_summary,
        &run,
    )
}

fn stdout_is_tty() -> bool {
    // SAFETY: isatty only reads the descriptor's state.
    unsafe { libc::isatty(1) == 1 }
}

/// handleSummary's return value: {stdout = text, stderr = text, ["path"] = text}.
fn write_summary_outputs(outputs: &serde_json::Value) {
    let Some(map) = outputs.as_object() else {
        eprintln!("ERRO  handleSummary must return a table of {{ stdout = text, [\"file.json\"] = text }}");
        return;
    };
    for (dest, content) in map {
        let text = match content {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let result = match dest.as_str() {
            "stdout" => std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()),
            "stderr" => std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes()),
            path => std::fs::write(path, text.as_bytes()),
        };
        if let Err(e) = result {
            eprintln!("ERRO  handleSummary: cannot write {dest}: {e}");
        }
    }
}

/// Requests in flight per worker: `--max-connections` split across workers, or what the
/// open-file limit allows (raised to its hard maximum first), less a reserve, halved
/// because a pool holds up to as many idle sockets as busy ones, and halved again when the
/// reference server runs in this process (it holds the other end of every socket).
fn connection_budget(total: Option<usize>, workers: usize, serve: bool) -> usize {
    let total = total.unwrap_or_else(|| {
        let usable = open_file_limit().saturating_sub(256).max(64) / 2;
        if serve {
            usable / 2
        } else {
            usable
        }
    });
    (total / workers).max(1)
}

/// The open-file limit, after raising the soft limit to the hard one.
fn open_file_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur as usize
}

/// Under a socket-per-VU policy, checks before anything starts that the plan's VUs fit the
/// open-file limit (the shared policy bounds its sockets by it instead).
fn check_fd_budget(policy: ConnectionPolicy, vus: u64, serve: bool) -> Result<()> {
    let name = match policy {
        ConnectionPolicy::Shared => return Ok(()),
        ConnectionPolicy::PerVu => "per-vu",
        ConnectionPolicy::PerIteration => "per-iteration",
        ConnectionPolicy::NoReuse => "per-request",
    };
    // Each VU holds a socket; an in-process server holds the other end of each.
    let spare = 128;
    let needed = vus as usize * if serve { 2 } else { 1 } + spare;
    let limit = open_file_limit();
    if needed > limit {
        return Err(Error::config(format!(
            "--connections {name}: up to {vus} VUs with a connection each need about {needed} open files, but the limit is {limit} (raise `ulimit -n` or use --connections shared)"
        )));
    }
    Ok(())
}

/// The run's resolver and TLS settings: the script's options with the CLI flags on top.
fn make_net(args: &RunArgs, opts: &options::NetOptions) -> Result<Arc<crate::http::Net>> {
    let mut tls = opts.tls.clone();
    tls.insecure_skip_verify |= args.insecure_skip_tls_verify;
    if let Some(path) = &args.tls_ca {
        tls.extra_ca_pem = Some(
            std::fs::read_to_string(path)
                .map_err(|e| Error::config(format!("--tls-ca {}: {e}", path.display())))?,
        );
    }
    let tls = crate::http::Tls::new(tls).map_err(Error::config)?;
    let resolver = crate::http::Resolver::new(opts.hosts.clone().into_iter().collect())
        .map_err(Error::config)?;
    Ok(Arc::new(crate::http::Net {
        resolver,
        tls,
        h2c: opts.h2c || args.h2c,
    }))
}

/// `--execution-segment`, checked against `--execution-segment-sequence` when both are given.
fn execution_segment(args: &RunArgs) -> Result<exec::Segment> {
    let segment = match &args.execution_segment {
        None => exec::Segment::WHOLE,
        Some(text) => exec::Segment::parse(text)
            .map_err(|e| Error::config(format!("--execution-segment: {e}")))?,
    };
    if let Some(seq) = &args.execution_segment_sequence {
        segment
            .check_in_sequence(seq)
            .map_err(|e| Error::config(format!("--execution-segment-sequence: {e}")))?;
    }
    Ok(segment)
}

/// `engine inspect`: the plan `engine run` would execute with the same flags, as JSON.
pub fn inspect(args: crate::cli::InspectArgs) -> Result<u8> {
    let run_args = args.run;
    if !run_args.script.is_file() {
        return Err(Error::script(format!(
            "cannot read script {}: no such file",
            run_args.script.display()
        )));
    }
    let segment = execution_segment(&run_args)?;
    let env = script_env(&run_args)?;
    let cli = cli_settings(&run_args)?;
    let registry = Arc::new(Registry::default());
    let builtins = Builtins::register(&registry);
    let (tx, _rx) = crossbeam_channel::unbounded();
    let gauges = Arc::new(crate::metrics::VuGauges::default());
    let cfg = WorkerConfig {
        script_path: run_args.script.clone(),
        env: env.clone().into_iter().collect(),
        seed: run_args.seed,
        policy: ConnectionPolicy::Shared,
        user_agent: String::new(),
        discard_response_bodies: false,
        no_cookies_reset: false,
        registry: registry.clone(),
        builtins,
        run: RunState::new(gauges),
        started: Instant::now(),
        time_scale: run_args.time_scale,
        stamp_samples: false,
        snapshots: None,
        net: make_net(&run_args, &options::NetOptions::default())?,
        max_connections: None,
    };
    let script = Script::load(cfg, tx, Arc::new(TagInterner::default()), usize::MAX)?;
    let plan = build_plan(&script, &run_args, &env, cli)?;
    thresholds::parse_all(&plan.thresholds, &registry).map_err(Error::config)?;
    let mut doc = plan.to_json();
    if args.execution_requirements {
        doc["maxVUs"] = plan.max_vus_in(segment).into();
        doc["executionSegment"] = segment.to_string().into();
        doc["totalDuration"] = options::duration::format(plan.max_duration()).into();
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("JSON values serialise")
    );
    Ok(0)
}

fn finish_report(
    args: &RunArgs,
    snap: &Snapshot,
    verdicts: &[Verdict],
    trend_stats: &[String],
    custom_summary: bool,
    run: &RunState,
) -> Result<u8> {
    if !args.no_summary && !custom_summary {
        report::summary::write(&mut std::io::stdout(), snap, verdicts, trend_stats, run);
    }
    if let Some(path) = &args.summary_export {
        let text = report::export::summary_json(snap, verdicts, trend_stats);
        std::fs::write(path, text)
            .map_err(|e| Error::generic(format!("--summary-export {}: {e}", path.display())))?;
    }
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|v| !v.ok)
        .map(|v| v.threshold.key.as_str())
        .collect();
    if let Some(reason) = run.abort_reason() {
        eprintln!("engine: test aborted: {reason}");
        if reason.starts_with(THRESHOLD_REASON) {
            return Ok(ExitCode::ThresholdsFailed as u8);
        }
        return Ok(if reason == SIGNAL_REASON {
            ExitCode::ExternalAbort
        } else {
            ExitCode::ScriptAborted
        } as u8);
    }
    if run.stop_level() != Stop::Running {
        return Ok(ExitCode::ExternalAbort as u8);
    }
    if !failed.is_empty() {
        eprintln!(
            "engine: thresholds on metrics {} have been crossed",
            failed.join(", ")
        );
        return Ok(ExitCode::ThresholdsFailed as u8);
    }
    Ok(0)
}

const SIGNAL_REASON: &str = "stopped by signal";
const THRESHOLD_REASON: &str = "thresholds crossed (abortOnFail)";

/// Every 2 s (k6's rate), judges the thresholds that may abort the run.
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
        for v in thresholds::evaluate(&aborting, &snap) {
            if !v.ok && snap.elapsed >= v.threshold.delay_abort_eval {
                run.abort(format!(
                    "{THRESHOLD_REASON}: {} '{}'",
                    v.threshold.key, v.threshold.source
                ));
                return std::future::pending().await;
            }
        }
    }
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
        stages: if args.stages.is_empty() {
            None
        } else {
            Some(
                args.stages
                    .iter()
                    .map(|s| {
                        Stage::parse_cli(s)
                            .map_err(|e| Error::config(format!("--stage: {}", e.message)))
                    })
                    .collect::<Result<_>>()?,
            )
        },
        scenarios: None,
    })
}

fn build_plan(
    script: &Script,
    args: &RunArgs,
    env: &BTreeMap<String, String>,
    cli: ExecSettings,
) -> Result<Plan> {
    let mut plan = options::consolidate(&script.options()?, env, cli)?;
    plan.scale(args.time_scale, args.vu_scale);
    for sc in &plan.scenarios {
        if script.function(&sc.exec).is_none() {
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
    Ok(plan)
}

fn start_workers(
    (count, segment): (usize, exec::Segment),
    cfg: &WorkerConfig,
    agg: &AggregatorHandle,
    interner: &Arc<TagInterner>,
    shared: Arc<Vec<exec::SharedScenario>>,
) -> Result<exec::Workers<Arc<serde_json::Value>>> {
    let cfg = cfg.clone();
    let tx = agg.tx.clone();
    let interner = interner.clone();
    exec::spawn_workers(
        count,
        segment,
        move |setup: WorkerSetup<Arc<serde_json::Value>>| {
            let (cfg, tx, interner, shared) =
                (cfg.clone(), tx.clone(), interner.clone(), shared.clone());
            Box::pin(async move { worker_body(setup, cfg, tx, interner, shared).await })
        },
    )
}

async fn worker_body(
    setup: WorkerSetup<Arc<serde_json::Value>>,
    cfg: WorkerConfig,
    tx: crossbeam_channel::Sender<Vec<crate::metrics::Sample>>,
    interner: Arc<TagInterner>,
    shared: Arc<Vec<exec::SharedScenario>>,
) -> Result<()> {
    let run = cfg.run.clone();
    let loaded = Script::load(cfg, tx, interner, setup.index);
    let script = match loaded {
        Ok(s) => s,
        Err(e) => {
            setup.ready_and_wait(Err(e));
            return Ok(());
        }
    };
    let exec_fns = shared
        .iter()
        .map(|s| {
            script
                .function(&s.scenario.exec)
                .expect("checked by build_plan")
        })
        .collect();
    let Some(data) = setup.ready_and_wait(Ok(())) else {
        return Ok(());
    };
    let data = script.value_from_json(&data)?;
    let factory = LuaFactory {
        shared: std::rc::Rc::new(Shared {
            lua: script.lua.clone(),
            ctx: script.ctx.clone(),
            vu_main: script.vu_main.clone(),
            exec_fns,
            data,
        }),
    };
    // Ship samples at least every 100 ms, so thresholds and live outputs see a running test.
    let ctx = script.ctx.clone();
    let flusher = tokio::task::spawn_local(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            ctx.buffer.borrow_mut().flush();
        }
    });
    let result = exec::run_scenarios(&factory, setup.segment(), &shared, run).await;
    flusher.abort();
    script.ctx.buffer.borrow_mut().flush();
    let suppressed = script.ctx.errors.suppressed.get();
    if suppressed > 0 {
        eprintln!("WARN  {suppressed} more iteration errors were not printed");
    }
    result
}

/// Runs setup() or teardown() if the script defines it. `None` when it does not.
async fn lifecycle(
    script: &Script,
    name: &str,
    data: Option<&serde_json::Value>,
    timeout: Duration,
) -> Option<Result<serde_json::Value>> {
    let f = script.function(name)?;
    let arg = match data.map(|d| script.value_from_json(d)).transpose() {
        Ok(v) => v.unwrap_or(mlua::Value::Nil),
        Err(e) => return Some(Err(e)),
    };
    let mut vu = match script.lifecycle_vu(mlua::Value::Nil) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    let code_timeout = if name == "setup" {
        ExitCode::SetupTimeout
    } else {
        ExitCode::TeardownTimeout
    };
    let result = match tokio::time::timeout(timeout, vu.call(f, arg)).await {
        Err(_) => Err(Error::new(
            code_timeout,
            format!(
                "{name}() execution timed out after {}",
                options::duration::format(timeout)
            ),
        )),
        Ok(Ok(v)) if name != "teardown" => script.value_to_json(v),
        Ok(Ok(_)) => Ok(serde_json::Value::Null),
        Ok(Err(CallError::Abort(msg))) => Err(Error::new(
            ExitCode::ScriptAborted,
            format!("test aborted in {name}(): {msg}"),
        )),
        Ok(Err(CallError::Script(msg))) | Ok(Err(CallError::Engine(msg))) => {
            Err(Error::script(format!(
                "{name}() failed: {}",
                crate::script::vu::tidy_traceback(&msg)
            )))
        }
    };
    Some(result)
}

/// Waits for the workers while listening for SIGINT/SIGTERM: the first stops new
/// iterations, the second exits at once.
async fn wait_with_signals(
    workers: exec::Workers<Arc<serde_json::Value>>,
    run: Arc<RunState>,
    watch: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        // The receiver only goes away if the main thread is already exiting.
        let _ = tx.send(workers.join());
    });
    let signals = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        next_signal(&mut term).await;
        eprintln!("\nstopping: no new iterations; running ones get {}s (press Ctrl-C again to exit at once)", exec::executors::SIGNAL_GRACE.as_secs());
        run.abort_reason_if_none(SIGNAL_REASON);
        run.request_stop(Stop::Graceful);
        next_signal(&mut term).await;
        // A second signal means "now": nothing is left worth waiting for.
        std::process::exit(ExitCode::ExternalAbort as i32);
    };
    tokio::select! {
        r = rx => r.unwrap_or_else(|_| Err(Error::generic("worker supervisor thread died"))),
        _ = signals => unreachable!("the signal task exits the process"),
        _ = watch => unreachable!("the threshold watch never ends by itself"),
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
