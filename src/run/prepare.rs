//! Everything before the workers start: check the flags, start the in-process server
//! (`--serve`), start the metrics pipeline, run the script's init code once on the main
//! thread's state, resolve the plan, open the outputs and parse the thresholds.

use super::limits;
use super::plan::{Flags, RunPlan};
use crate::cli::RunArgs;
use crate::error::{Error, Result};
use crate::exec::RunState;
use crate::live::{self, LiveOutputs, OutputSpec};
use crate::metrics::timeseries::{SeriesRules, TimeSeries};
use crate::metrics::{Aggregator, AggregatorHandle, Builtins, Registry, TagInterner};
use crate::report;
use crate::script::{Script, ScriptConfig};
use crate::thresholds::{self, Threshold};
use std::sync::Arc;
use std::time::Instant;

/// A run ready to start its workers.
pub struct Prepared {
    pub plan: RunPlan,
    /// The main thread's state: it ran the init code and later runs setup, teardown and
    /// handleSummary.
    pub main: Script,
    pub agg: AggregatorHandle,
    pub interner: Arc<TagInterner>,
    pub run: Arc<RunState>,
    pub thresholds: Vec<Threshold>,
    pub server: Option<crate::serve::Background>,
    /// The dashboard and remote write, running until finish.
    pub live: LiveOutputs,
    /// When the test proper started (ms since the epoch) and how late against
    /// `--start-at`; set once, by run().
    pub started: std::sync::OnceLock<(u64, Option<f64>)>,
    script_cfg: ScriptConfig,
}

impl Prepared {
    /// The init settings of a worker's state (only the main state reads run totals).
    pub fn worker_cfg(&self) -> ScriptConfig {
        ScriptConfig {
            snapshots: None,
            ..self.script_cfg.clone()
        }
    }
}

pub fn prepare(args: &RunArgs) -> Result<Prepared> {
    let started = Instant::now();
    let mut flags = Flags::read(args)?;
    let server = if args.serve {
        Some(crate::serve::Background::start(args.time_scale)?)
    } else {
        None
    };
    if let Some(srv) = &server {
        flags.point_at_server(&srv.url);
        eprintln!("engine: reference funnel server on {} (--serve)", srv.url);
    }
    let registry = Arc::new(Registry::default());
    let builtins = Builtins::register(&registry);
    let interner = Arc::new(TagInterner::default());
    let agg = Aggregator::spawn(registry.clone(), interner.clone(), builtins);
    let run = RunState::new(agg.gauges.clone());
    let script_cfg = ScriptConfig {
        script_path: args.script.clone(),
        env: flags.env.clone().into_iter().collect(),
        seed: args.seed,
        registry: registry.clone(),
        builtins,
        run: run.clone(),
        started,
        stamp_samples: flags
            .outputs
            .iter()
            .any(|o| matches!(o, OutputSpec::Json(_) | OutputSpec::Csv(_))),
        time_scale: args.time_scale,
        snapshots: Some(agg.requester()),
        unsafe_lua: args.unsafe_lua,
        memory_limit: flags.memory_per_state,
    };
    let main = Script::load(
        script_cfg.clone(),
        agg.tx.clone(),
        interner.clone(),
        usize::MAX,
    )?;
    let plan = RunPlan::resolve(flags, &main)?;
    main.connect(plan.http.clone())?;
    let texts = plan.threshold_texts();
    let mut outputs = Vec::new();
    for spec in &plan.outputs {
        outputs.extend(report::outputs::open(spec, &texts).map_err(Error::config)?);
    }
    agg.add_outputs(outputs);
    let thresholds = if plan.evaluate_thresholds {
        thresholds::parse_all(&plan.options.thresholds, &registry).map_err(Error::config)?
    } else {
        Vec::new()
    };
    if live::needs_series(&plan.outputs) {
        agg.keep_series(TimeSeries::new(
            series_rules(&plan),
            plan.options.max_duration(),
        ));
    }
    let live = LiveOutputs::start(
        &plan.outputs,
        &agg.requester(),
        &thresholds,
        live::state::meta(&plan, plan.funnel.as_ref()),
        plan.funnel.clone(),
        &plan.trend_stats,
    )?;
    let vus = plan.options.max_vus_in(plan.segment);
    limits::check_fd_budget(plan.http.policy, vus, plan.serve)?;
    for warning in &plan.options.unknown_options {
        eprintln!("WARN  {warning}");
    }
    if let Some(tier) = plan.options.shape_overridden_by {
        eprintln!("WARN  \"{tier}\" level configuration overrode scenarios configuration entirely");
    }
    Ok(Prepared {
        plan,
        main,
        agg,
        interner,
        run,
        thresholds,
        server,
        live,
        started: std::sync::OnceLock::new(),
        script_cfg,
    })
}

/// The time series worth keeping: per scenario when there are several, and the funnel.
fn series_rules(plan: &RunPlan) -> SeriesRules {
    SeriesRules {
        by_scenario: plan.options.scenarios.len() > 1,
        splits: plan
            .funnel
            .iter()
            .map(|f| (f.metric.clone(), f.tag.clone()))
            .collect(),
    }
}

/// `engine inspect`'s half of [`prepare`]: the plan and its parsed thresholds, with no
/// server, no aggregator and no outputs.
pub fn plan_only(args: &RunArgs) -> Result<RunPlan> {
    let flags = Flags::read(args)?;
    let registry = Arc::new(Registry::default());
    let builtins = Builtins::register(&registry);
    // Init code may record samples; nobody reads them.
    let (tx, _rx) = crossbeam_channel::unbounded();
    let cfg = ScriptConfig {
        script_path: args.script.clone(),
        env: flags.env.clone().into_iter().collect(),
        seed: args.seed,
        registry: registry.clone(),
        builtins,
        run: RunState::new(Arc::default()),
        started: Instant::now(),
        stamp_samples: false,
        time_scale: args.time_scale,
        snapshots: None,
        unsafe_lua: args.unsafe_lua,
        memory_limit: flags.memory_per_state,
    };
    let script = Script::load(cfg, tx, Arc::new(TagInterner::default()), usize::MAX)?;
    let plan = RunPlan::resolve(flags, &script)?;
    thresholds::parse_all(&plan.options.thresholds, &registry).map_err(Error::config)?;
    Ok(plan)
}
