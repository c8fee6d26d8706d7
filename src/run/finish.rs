//! After teardown: judge the thresholds, run handleSummary or print the summary, write the
//! exports, and choose the exit code (the stop cause's, else 99 for crossed thresholds).

use super::lifecycle::{self, MainThread};
use super::prepare::Prepared;
use super::signals::Signals;
use crate::error::{Error, ExitCode, Result};
use crate::report;
use crate::thresholds::{self, Verdict};

/// Reports the run and returns its exit code.
pub fn finish(
    test: Prepared,
    setup_data: &serde_json::Value,
    main: &MainThread,
    teardown_failed: Option<ExitCode>,
    signals: &Signals,
) -> Result<u8> {
    test.main.flush_metrics();
    test.main.report_suppressed_errors();
    let snapshot = test.agg.snapshot();
    let verdicts = thresholds::evaluate(&test.thresholds, &snapshot);
    let data = report::export::handle_summary_data(
        &snapshot,
        &verdicts,
        &test.plan.trend_stats,
        setup_data,
        stdout_is_tty(),
    );
    let custom = lifecycle::handle_summary(main, &test, &data, signals);
    if let Some(outputs) = &custom {
        write_summary_outputs(outputs);
    }
    let Prepared {
        plan,
        main: script,
        agg,
        run,
        server,
        live,
        started,
        ..
    } = test;
    // Before the aggregator finishes: the dashboard reads its last time series.
    live.finish(&snapshot, &verdicts);
    for spec in &plan.outputs {
        if let crate::live::OutputSpec::Part(path) = spec {
            let (started_ms, start_skew_ms) = started.get().copied().unwrap_or((0, None));
            let id = crate::part::RunIdentity {
                fingerprint: &plan.fingerprint,
                script: &plan.script,
                segment: plan.segment,
                seed: plan.seed,
                started_ms,
                ended_ms: started_ms + snapshot.elapsed.as_millis() as u64,
                start_skew_ms,
                trend_stats: &plan.trend_stats,
                thresholds: &plan.options.thresholds,
                complete: run.complete.load(std::sync::atomic::Ordering::Relaxed),
                interrupted: run.interrupted.load(std::sync::atomic::Ordering::Relaxed),
            };
            let series = agg.requester().series_json(0, false);
            let part = crate::part::from_run(&id, &snapshot, series);
            crate::part::write(std::path::Path::new(path), &part).map_err(Error::generic)?;
        }
    }
    // The main state holds a metric sender: it goes first, or the aggregator would wait
    // for it forever.
    drop(script);
    drop(agg.finish());
    drop(server);
    if plan.summary && custom.is_none() {
        report::summary::write(
            &mut std::io::stdout(),
            &snapshot,
            &verdicts,
            &plan.trend_stats,
            &run,
        );
    }
    if let Some(path) = &plan.summary_export {
        let text = report::export::summary_json(&snapshot, &verdicts, &plan.trend_stats);
        std::fs::write(path, text)
            .map_err(|e| Error::generic(format!("--summary-export {}: {e}", path.display())))?;
    }
    Ok(exit_code(&run, teardown_failed, &verdicts))
}

/// The stop cause's code if the run stopped early, else teardown's failure, else 99 if a
/// threshold failed, else 0.
fn exit_code(
    run: &crate::exec::RunState,
    teardown_failed: Option<ExitCode>,
    verdicts: &[Verdict],
) -> u8 {
    if let Some(cause) = run.cause() {
        eprintln!("engine: test aborted: {cause}");
        return cause.exit_code() as u8;
    }
    if let Some(code) = teardown_failed {
        eprintln!("engine: teardown() failed");
        return code as u8;
    }
    thresholds_exit_code(verdicts)
}

/// 99 with a line naming the crossed thresholds' metrics, or 0 (a run's and a merge's).
pub(super) fn thresholds_exit_code(verdicts: &[Verdict]) -> u8 {
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|v| !v.ok)
        .map(|v| v.threshold.key.as_str())
        .collect();
    if failed.is_empty() {
        return 0;
    }
    eprintln!(
        "engine: thresholds on metrics {} have been crossed",
        failed.join(", ")
    );
    ExitCode::ThresholdsFailed as u8
}

fn stdout_is_tty() -> bool {
    // SAFETY: isatty only reads the descriptor's state.
    unsafe { libc::isatty(1) == 1 }
}

/// handleSummary's return value: {stdout = text, stderr = text, ["path"] = text}.
pub(super) fn write_summary_outputs(outputs: &serde_json::Value) {
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
