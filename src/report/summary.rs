//! The end-of-test summary in k6's v1 "compact" shape, and the banner before the run.

use super::format::{self, trend_stat};
use crate::exec::RunState;
use crate::metrics::{MetricDef, MetricType, Sink, Snapshot};
use crate::options::{duration, Plan};
use crate::thresholds::Verdict;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;

const NAME_WIDTH: usize = 35;

/// The block k6 prints before a run: script, scenarios and their executors.
pub fn banner(
    out: &mut impl Write,
    script: &Path,
    plan: &Plan,
    segment: crate::exec::Segment,
    workers: usize,
    outputs: &[String],
) {
    let scenarios = &plan.scenarios;
    let output = if outputs.is_empty() {
        "-".to_string()
    } else {
        outputs.join("\n             ")
    };
    let _ = writeln!(
        out,
        "\n  execution: local ({workers} workers)\n     script: {}\n     output: {output}\n",
        script.display()
    );
    let _ = writeln!(
        out,
        "  scenarios: ({:.2}%) {} scenario{}, {} max VUs, {} max duration (incl. graceful stop):",
        segment.percent(),
        scenarios.len(),
        if scenarios.len() == 1 { "" } else { "s" },
        plan.max_vus_in(segment),
        duration::format(plan.max_duration())
    );
    for s in scenarios {
        let start = if s.start_time.is_zero() {
            String::new()
        } else {
            format!("startTime: {}, ", duration::format(s.start_time))
        };
        let _ = writeln!(
            out,
            "           * {}: {}, {start}gracefulStop: {}) (exec: {})",
            s.name,
            s.executor.describe().trim_end_matches(" ("),
            duration::format(s.graceful_stop),
            s.exec
        );
    }
    let _ = writeln!(out);
    let _ = out.flush();
}

/// Writes the summary. Write errors (a closed stdout) are not the run's failure.
pub fn write(
    out: &mut impl Write,
    snap: &Snapshot,
    verdicts: &[Verdict],
    trend_stats: &[String],
    run: &RunState,
) {
    let _ = try_write(out, snap, verdicts, trend_stats, run);
}

fn try_write(
    out: &mut impl Write,
    snap: &Snapshot,
    verdicts: &[Verdict],
    trend_stats: &[String],
    run: &RunState,
) -> std::io::Result<()> {
    let secs = snap.elapsed.as_secs_f64().max(1e-9);
    write_thresholds(out, snap, verdicts)?;
    writeln!(out, "\n  █ TOTAL RESULTS\n")?;
    write_checks(out, snap, secs)?;
    let mut sections: BTreeMap<usize, Vec<&MetricDef>> = BTreeMap::new();
    for (i, def) in snap.defs.iter().enumerate() {
        // k6's compact summary leaves the HTTP phase trends to the export and outputs.
        let phase = matches!(
            def.name.as_str(),
            "http_req_blocked"
                | "http_req_connecting"
                | "http_req_tls_handshaking"
                | "http_req_looking_up"
                | "http_req_sending"
                | "http_req_waiting"
                | "http_req_receiving"
        );
        if def.name == "checks" || phase || snap.total(crate::metrics::MetricId(i as u32)).is_none()
        {
            continue;
        }
        sections.entry(section_of(def)).or_default().push(def);
    }
    for (section, mut defs) in sections {
        defs.sort_by(|a, b| a.name.cmp(&b.name));
        writeln!(out, "    {}", SECTIONS[section])?;
        for def in defs {
            let id = snap.id(&def.name).expect("listed from the snapshot");
            let sink = snap.total(id).expect("filtered above");
            writeln!(
                out,
                "    {}: {}",
                dotted(&def.name, NAME_WIDTH),
                line(def, &sink, trend_stats, secs)
            )?;
            for (label, filter) in sub_metrics(def, verdicts) {
                let sink = snap
                    .matching(id, &filter)
                    .unwrap_or_else(|| Sink::new(def.kind));
                writeln!(
                    out,
                    "      {}: {}",
                    dotted(&label, NAME_WIDTH - 2),
                    line(def, &sink, trend_stats, secs)
                )?;
            }
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "\nrunning ({}), {}/{} VUs, {} complete and {} interrupted iterations",
        duration::format(snap.elapsed),
        run.gauges.active.load(Ordering::Relaxed),
        run.gauges.max.load(Ordering::Relaxed),
        run.complete.load(Ordering::Relaxed),
        run.interrupted.load(Ordering::Relaxed)
    )?;
    out.flush()
}

/// The sub-metrics listed under a metric, as k6 lists them: `{ expected_response:true }`
/// under http_req_duration, and every sub-metric a threshold names, sorted by label.
fn sub_metrics(def: &MetricDef, verdicts: &[Verdict]) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut add = |tags: Vec<(String, String)>| {
        let text: Vec<String> = tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let label = format!("{{ {} }}", text.join(","));
        if !out.iter().any(|(l, _)| *l == label) {
            out.push((label, tags));
        }
    };
    if def.name == "http_req_duration" {
        add(vec![("expected_response".into(), "true".into())]);
    }
    for v in verdicts {
        if v.threshold.metric == def.name && !v.threshold.tags.is_empty() {
            add(v.threshold.tags.clone());
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// k6's block: each metric key, then ✓/✗ 'expression' aggregation=value.
fn write_thresholds(
    out: &mut impl Write,
    snap: &Snapshot,
    verdicts: &[Verdict],
) -> std::io::Result<()> {
    if verdicts.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n  █ THRESHOLDS")?;
    let mut last_key = "";
    for v in verdicts {
        let t = &v.threshold;
        if t.key != last_key {
            writeln!(out, "\n    {}", t.key)?;
            last_key = &t.key;
        }
        let mark = if v.ok { "✓" } else { "✗" };
        let agg = t
            .source
            .split(['<', '>', '=', '!'])
            .next()
            .unwrap_or("")
            .trim();
        let shown = match (v.value, snap.id(&t.metric)) {
            (None, _) => "no samples (skipped)".to_string(),
            (Some(x), Some(id)) => {
                let def = snap.def(id);
                match def.kind {
                    MetricType::Rate => format!("{agg}={:.2}%", x * 100.0),
                    MetricType::Counter if agg == "rate" => {
                        format!("{agg}={}/s", format::number(x))
                    }
                    _ => format!("{agg}={}", format::value(def, x)),
                }
            }
            (Some(x), None) => format!("{agg}={x}"),
        };
        writeln!(out, "    {mark} '{}' {shown}", t.source)?;
    }
    Ok(())
}

const SECTIONS: [&str; 4] = ["CUSTOM", "HTTP", "EXECUTION", "NETWORK"];

fn section_of(def: &MetricDef) -> usize {
    if !def.builtin {
        0
    } else if def.name.starts_with("http_") {
        1
    } else if def.name.starts_with("data_") {
        3
    } else {
        2
    }
}

fn write_checks(out: &mut impl Write, snap: &Snapshot, secs: f64) -> std::io::Result<()> {
    let Some(id) = snap.id("checks") else {
        return Ok(());
    };
    let Some(Sink::Rate { trues, total }) = snap.total(id) else {
        return Ok(());
    };
    let pct = |n: u64| {
        if total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / total as f64
        }
    };
    writeln!(
        out,
        "    {}: {:<7} {}/s",
        dotted("checks_total", NAME_WIDTH),
        total,
        format::number(total as f64 / secs)
    )?;
    writeln!(
        out,
        "    {}: {:<7} {} out of {}",
        dotted("checks_succeeded", NAME_WIDTH),
        format!("{:.2}%", pct(trues)),
        trues,
        total
    )?;
    writeln!(
        out,
        "    {}: {:<7} {} out of {}\n",
        dotted("checks_failed", NAME_WIDTH),
        format!("{:.2}%", pct(total - trues)),
        total - trues,
        total
    )?;
    for (name, (pass, fail)) in check_counts(snap) {
        if fail == 0 {
            writeln!(out, "    ✓ {name}")?;
        } else {
            let p = pass * 100 / (pass + fail);
            writeln!(out, "    ✗ {name}\n      ↳  {p}% — ✓ {pass} / ✗ {fail}")?;
        }
    }
    writeln!(out)
}

/// Pass and fail counts per check name, in the order the checks were first seen (k6's).
pub fn check_counts(snap: &Snapshot) -> Vec<(String, (u64, u64))> {
    let mut out: Vec<(String, (u64, u64))> = Vec::new();
    let Some(id) = snap.id("checks") else {
        return out;
    };
    for s in snap.in_first_seen_order(id) {
        let Some((_, name)) = s.tags.iter().find(|(k, _)| k == "check") else {
            continue;
        };
        if let Sink::Rate { trues, total } = s.sink {
            let e = match out.iter().position(|(n, _)| n == name) {
                Some(i) => &mut out[i].1,
                None => {
                    out.push((name.clone(), (0, 0)));
                    &mut out.last_mut().expect("just pushed").1
                }
            };
            e.0 += trues;
            e.1 += total - trues;
        }
    }
    out
}

/// One metric's values, by type: Trend stats, Counter total and rate, Rate %, Gauge value.
pub fn line(def: &MetricDef, sink: &Sink, trend_stats: &[String], secs: f64) -> String {
    match (def.kind, sink) {
        (MetricType::Trend, s) => trend_stats
            .iter()
            .filter_map(|st| trend_stat(s, st).map(|v| format!("{st}={}", format::value(def, v))))
            .collect::<Vec<_>>()
            .join(" "),
        (MetricType::Counter, Sink::Counter { sum }) => {
            format!(
                "{:<7} {}/s",
                format::value(def, *sum),
                format::value(def, *sum / secs)
            )
        }
        (MetricType::Rate, Sink::Rate { trues, total }) => {
            let pct = if *total == 0 {
                0.0
            } else {
                *trues as f64 * 100.0 / *total as f64
            };
            format!("{pct:.2}%  {trues} out of {total}")
        }
        (MetricType::Gauge, Sink::Gauge { last, min, max, .. }) => format!(
            "{:<7} min={:<7} max={}",
            format::value(def, *last),
            format::value(def, *min),
            format::value(def, *max)
        ),
        _ => String::new(),
    }
}

fn dotted(name: &str, width: usize) -> String {
    let n = name.chars().count();
    if n >= width {
        return name.to_string();
    }
    format!("{name}{}", ".".repeat(width - n))
}
