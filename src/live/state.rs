//! The documents the dashboard page draws, shared by the live page and the HTML report:
//! `meta` (the resolved plan, once), `series` (time series, from the aggregator) and `state`
//! (the cumulative results: metrics, checks, thresholds and the funnel, each period).

use crate::metrics::{Sink, Snapshot};
use crate::report::export::handle_summary_data;
use crate::thresholds::Verdict;
use serde_json::{json, Value};

/// The funnel panel: a Counter or Rate split by one tag, steps in the script's order
/// (`options.funnel = { metric = "funnel_entry_success", tag = "page", steps = {...} }`).
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelSpec {
    pub metric: String,
    pub tag: String,
    pub steps: Vec<String>,
}

impl FunnelSpec {
    /// Reads `options.funnel`; None when absent.
    pub fn from_options(options: &Value) -> Result<Option<FunnelSpec>, String> {
        let Some(f) = options.get("funnel").filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let text = |k: &str| {
            f.get(k)
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| format!("option funnel: {k} must be a string"))
        };
        let steps = match f.get("steps") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(String::from)
                        .ok_or_else(|| format!("option funnel: steps must be strings, got {s}"))
                })
                .collect::<Result<_, _>>()?,
            // An empty Lua table arrives as an object.
            Some(Value::Object(m)) if m.is_empty() => Vec::new(),
            Some(other) => return Err(format!("option funnel: steps must be a list, got {other}")),
        };
        Ok(Some(FunnelSpec {
            metric: text("metric")?,
            tag: text("tag")?,
            steps,
        }))
    }
}

/// The resolved plan as the page shows it.
pub fn meta(plan: &crate::run::plan::RunPlan, funnel: Option<&FunnelSpec>) -> Value {
    json!({
        "engine": format!("engine {}", env!("CARGO_PKG_VERSION")),
        "script": plan.script.display().to_string(),
        "seed": plan.seed,
        "segment": plan.segment.to_string(),
        "workers": plan.workers,
        "time_scale": plan.time_scale,
        "options": plan.options.to_json(),
        "max_vus": plan.options.max_vus_in(plan.segment),
        "max_duration_ms": plan.options.max_duration().as_millis() as u64,
        "started_ms": crate::metrics::now_us() / 1000,
        "funnel": funnel.map(|f| json!({"metric": f.metric, "tag": f.tag, "steps": f.steps})),
    })
}

/// The cumulative results at this moment (k6's handleSummary shape for metrics and checks,
/// plus the thresholds with their live verdicts and the funnel's totals per step).
pub fn state(
    snap: &Snapshot,
    verdicts: &[Verdict],
    trend_stats: &[String],
    funnel: Option<&FunnelSpec>,
    done: bool,
) -> Value {
    let data = handle_summary_data(snap, verdicts, trend_stats, &Value::Null, false);
    let thresholds: Vec<Value> = verdicts
        .iter()
        .map(|v| {
            json!({
                "key": v.threshold.key,
                "source": v.threshold.source,
                "ok": v.ok,
                "value": v.value,
            })
        })
        .collect();
    json!({
        "elapsed_ms": snap.elapsed.as_millis() as u64,
        "done": done,
        "metrics": data["metrics"],
        "root_group": data["root_group"],
        "thresholds": thresholds,
        "funnel": funnel.map(|f| funnel_totals(snap, f)),
    })
}

/// Per step (the spec's order, then values it does not list, as first seen): samples and
/// passes for a Rate, the sum for a Counter.
fn funnel_totals(snap: &Snapshot, f: &FunnelSpec) -> Value {
    let Some(id) = snap.id(&f.metric) else {
        return json!({"steps": []});
    };
    let mut steps: Vec<(String, Option<Sink>)> =
        f.steps.iter().map(|s| (s.clone(), None)).collect();
    for s in snap.in_first_seen_order(id) {
        let Some((_, value)) = s.tags.iter().find(|(k, _)| *k == f.tag) else {
            continue;
        };
        let i = match steps.iter().position(|(n, _)| n == value) {
            Some(i) => i,
            None => {
                steps.push((value.clone(), None));
                steps.len() - 1
            }
        };
        match &mut steps[i].1 {
            Some(acc) => acc.merge(&s.sink),
            slot => *slot = Some(s.sink.clone()),
        }
    }
    let rows: Vec<Value> = steps
        .iter()
        .map(|(name, sink)| match sink {
            Some(Sink::Rate { trues, total }) => {
                json!({"step": name, "count": total, "passes": trues})
            }
            Some(Sink::Counter { sum }) => json!({"step": name, "count": sum}),
            _ => json!({"step": name, "count": 0}),
        })
        .collect();
    json!({"steps": rows})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MetricType, Registry, SeriesSnapshot, ValueType};
    use std::sync::Arc;

    #[test]
    fn funnel_lists_steps_in_the_scripts_order_then_unlisted_ones() {
        let r = Registry::default();
        let id = r
            .register("entries", MetricType::Rate, ValueType::Default)
            .unwrap();
        let s = |page: &str, trues, total, first_seen| SeriesSnapshot {
            metric: id,
            tags: Arc::new(vec![("page".into(), page.into())]),
            sink: Sink::Rate { trues, total },
            first_seen,
        };
        let snap = Snapshot {
            defs: r.all(),
            series: vec![s("b", 3, 4, 0), s("extra", 1, 1, 1), s("a", 5, 5, 2)],
            elapsed: std::time::Duration::from_secs(1),
        };
        let spec = FunnelSpec::from_options(&json!({"funnel": {
            "metric": "entries", "tag": "page", "steps": ["a", "b", "c"]}}))
        .unwrap()
        .unwrap();
        let t = funnel_totals(&snap, &spec);
        let names: Vec<&str> = t["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["step"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c", "extra"]);
        assert_eq!(t["steps"][1], json!({"step": "b", "count": 4, "passes": 3}));
        assert_eq!(t["steps"][2]["count"], 0);
        assert!(FunnelSpec::from_options(&json!({"funnel": {"metric": 1}})).is_err());
        assert_eq!(FunnelSpec::from_options(&json!({})).unwrap(), None);
    }
}
