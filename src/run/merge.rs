//! `engine merge PART...`: the whole test's summary, thresholds (exit 99) and exports from
//! the parts its processes wrote, exactly as one unsplit run would report them.

use super::lifecycle::MainThread;
use crate::cli::MergeArgs;
use crate::error::{Error, Result};
use crate::exec::RunState;
use crate::live::OutputSpec;
use crate::metrics::{Builtins, TagInterner, VuGauges};
use crate::part;
use crate::report;
use crate::script::hooks::Hook;
use crate::script::{Script, ScriptConfig};
use crate::thresholds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn merge(args: MergeArgs) -> Result<u8> {
    let outputs = crate::live::spec::parse_all(&args.out, &|_| None).map_err(Error::config)?;
    let mut parts = Vec::new();
    for path in &args.parts {
        parts.push((path.clone(), part::read(path).map_err(Error::config)?));
    }
    let m = part::merge::merge(&parts, args.allow_partial).map_err(Error::config)?;
    let first = &parts[0].1;
    eprintln!(
        "engine merge: {} parts of {} ({}), {:.2}% of the plan{}",
        parts.len(),
        first.script,
        first.fingerprint.get(..12).unwrap_or(""),
        m.coverage * 100.0,
        m.max_skew_ms
            .map(|s| format!(", start skew at most {s:.1} ms"))
            .unwrap_or_default()
    );
    if !m.missing.is_empty() {
        eprintln!(
            "WARN  partial merge: missing {} of the plan ({})",
            format_args!("{:.2}%", (1.0 - m.coverage) * 100.0),
            m.missing.join(", ")
        );
    }
    let thresholds = if args.no_thresholds {
        Vec::new()
    } else {
        thresholds::parse_all(&first.thresholds, &m.registry).map_err(Error::config)?
    };
    let snap = &m.snapshot;
    let verdicts = thresholds::evaluate(&thresholds, snap);
    let run = RunState::new(Arc::new(VuGauges {
        active: AtomicU64::new(0),
        max: AtomicU64::new(m.vus_max),
    }));
    run.complete.store(m.complete, Ordering::Relaxed);
    run.interrupted.store(m.interrupted, Ordering::Relaxed);
    let trend_stats = &first.trend_stats;
    let custom = match &args.script {
        Some(script) => handle_summary(script, snap, &verdicts, trend_stats, &m.registry)?,
        None => None,
    };
    if let Some(outputs) = &custom {
        super::finish::write_summary_outputs(outputs);
    }
    if !args.no_summary && custom.is_none() {
        report::summary::write(&mut std::io::stdout(), snap, &verdicts, trend_stats, &run);
    }
    if let Some(path) = &args.summary_export {
        let text = report::export::summary_json(snap, &verdicts, trend_stats);
        std::fs::write(path, text)
            .map_err(|e| Error::generic(format!("--summary-export {}: {e}", path.display())))?;
    }
    for spec in &outputs {
        match spec {
            OutputSpec::WebDashboard(cfg) if cfg.export.is_some() => {
                let path = cfg.export.as_deref().unwrap_or_default();
                let meta = serde_json::json!({
                    "engine": format!("engine {} (merge of {} parts)", env!("CARGO_PKG_VERSION"), parts.len()),
                    "script": first.script, "seed": first.seed, "segment": "0:1",
                    "workers": parts.len(), "time_scale": 1, "options": {"thresholds": first.thresholds},
                    "max_vus": m.vus_max, "max_duration_ms": snap.elapsed.as_millis() as u64,
                    "started_ms": parts.iter().map(|(_, p)| p.started_ms).min(), "funnel": null,
                });
                let st = crate::live::state::state(snap, &verdicts, trend_stats, None, true);
                let html = crate::live::report::report_page(&[("meta", &meta), ("state", &st)]);
                std::fs::write(path, html).map_err(|e| {
                    Error::generic(format!("--out web-dashboard export {path}: {e}"))
                })?;
            }
            other => {
                return Err(Error::config(format!(
                    "engine merge --out: only web-dashboard=export=FILE is supported, not {other:?}"
                )))
            }
        }
    }
    Ok(super::finish::thresholds_exit_code(&verdicts))
}

/// The script's handleSummary(data) on the merged data (its init code runs first, as in a
/// run; it sends no requests from there unless it did in the run too).
fn handle_summary(
    script: &std::path::Path,
    snap: &crate::metrics::Snapshot,
    verdicts: &[thresholds::Verdict],
    trend_stats: &[String],
    registry: &Arc<crate::metrics::Registry>,
) -> Result<Option<serde_json::Value>> {
    let data = report::export::handle_summary_data(
        snap,
        verdicts,
        trend_stats,
        &serde_json::Value::Null,
        false,
    );
    let (tx, _rx) = crossbeam_channel::unbounded();
    let cfg = ScriptConfig {
        script_path: script.to_path_buf(),
        env: std::env::vars().collect(),
        seed: None,
        registry: registry.clone(),
        builtins: Builtins::register(registry),
        run: RunState::new(Arc::default()),
        started: Instant::now(),
        stamp_samples: false,
        time_scale: 1.0,
        snapshots: None,
        unsafe_lua: false,
        memory_limit: usize::MAX,
    };
    let lua = Script::load(cfg, tx, Arc::new(TagInterner::default()), usize::MAX)?;
    let main = MainThread::new()?;
    match main.block_on(lua.call_hook(Hook::HandleSummary, Some(&data), Duration::from_secs(120))) {
        None => Err(Error::config(format!(
            "--script {}: defines no handleSummary function",
            script.display()
        ))),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(e)) => {
            eprintln!("ERRO  handleSummary: {e}");
            Ok(None)
        }
    }
}
