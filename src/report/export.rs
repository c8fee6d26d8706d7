//! `--summary-export`: k6's legacy summary JSON (root_group with checks, flattened metrics).

use super::format::trend_stat;
use super::groups::Group;
use crate::metrics::{MetricType, Sink, Snapshot};
use crate::thresholds::Verdict;
use serde_json::{json, Map, Value};

/// The export document, 4-space indented as k6 writes it.
pub fn summary_json(snap: &Snapshot, verdicts: &[Verdict], trend_stats: &[String]) -> String {
    let secs = snap.elapsed.as_secs_f64().max(1e-9);
    let mut metrics = Map::new();
    for (i, def) in snap.defs.iter().enumerate() {
        let Some(sink) = snap.total(crate::metrics::MetricId(i as u32)) else {
            continue;
        };
        metrics.insert(def.name.clone(), values(def.kind, &sink, trend_stats, secs));
    }
    // Sub-metrics named by thresholds get their own entry; every threshold is listed under
    // its key with k6's legacy boolean: true when the threshold FAILED.
    for v in verdicts {
        let t = &v.threshold;
        let Some(id) = snap.id(&t.metric) else {
            continue;
        };
        if !metrics.contains_key(&t.key) {
            let def = snap.def(id);
            let sink = snap
                .matching(id, &t.tags)
                .unwrap_or_else(|| crate::metrics::Sink::new(def.kind));
            metrics.insert(t.key.clone(), values(def.kind, &sink, trend_stats, secs));
        }
        if let Some(Value::Object(m)) = metrics.get_mut(&t.key) {
            let th = m.entry("thresholds").or_insert_with(|| json!({}));
            th[&t.source] = json!(!v.ok);
        }
    }
    let mut doc = json!({
        "root_group": Group::tree(snap).legacy_json(),
        "metrics": metrics,
    });
    whole_numbers_as_integers(&mut doc);
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(&doc, &mut ser).expect("a JSON value always serialises");
    String::from_utf8(buf).expect("serde_json writes UTF-8")
}

/// Flattened values per type, as in k6's export.
pub fn values(kind: MetricType, sink: &Sink, trend_stats: &[String], secs: f64) -> Value {
    match (kind, sink) {
        (MetricType::Trend, s) => {
            let mut m = Map::new();
            for st in trend_stats {
                if let Some(v) = trend_stat(s, st) {
                    m.insert(st.clone(), json!(v));
                }
            }
            Value::Object(m)
        }
        (_, Sink::Counter { sum }) => json!({"count": sum, "rate": sum / secs}),
        (_, Sink::Gauge { last, min, max, .. }) => json!({"value": last, "min": min, "max": max}),
        (_, Sink::Rate { trues, total }) => json!({
            "passes": trues,
            "fails": total - trues,
            "value": if *total == 0 { 0.0 } else { *trues as f64 / *total as f64 },
        }),
        _ => Value::Null,
    }
}

/// The `data` argument of `handleSummary(data)`, in k6's shape: root_group (checks as a
/// list), options, state, metrics (type, contains, values, thresholds {expr: {ok}}), setup_data.
pub fn handle_summary_data(
    snap: &Snapshot,
    verdicts: &[Verdict],
    trend_stats: &[String],
    setup_data: &Value,
    stdout_tty: bool,
) -> Value {
    let secs = snap.elapsed.as_secs_f64().max(1e-9);
    let mut metrics = Map::new();
    let entry = |kind: MetricType, contains: &str, sink: &Sink| {
        let mut vals = values(kind, sink, trend_stats, secs);
        if let (MetricType::Rate, Value::Object(m)) = (kind, &mut vals) {
            // handleSummary names the ratio `rate` (the legacy export calls it `value`).
            if let Some(v) = m.remove("value") {
                m.insert("rate".into(), v);
            }
        }
        json!({ "type": kind.name(), "contains": contains, "values": vals })
    };
    for (i, def) in snap.defs.iter().enumerate() {
        let Some(sink) = snap.total(crate::metrics::MetricId(i as u32)) else {
            continue;
        };
        metrics.insert(
            def.name.clone(),
            entry(def.kind, def.contains.name(), &sink),
        );
    }
    for v in verdicts {
        let t = &v.threshold;
        let Some(id) = snap.id(&t.metric) else {
            continue;
        };
        let def = snap.def(id);
        if !metrics.contains_key(&t.key) {
            let sink = snap
                .matching(id, &t.tags)
                .unwrap_or_else(|| Sink::new(def.kind));
            metrics.insert(t.key.clone(), entry(def.kind, def.contains.name(), &sink));
        }
        if let Some(Value::Object(m)) = metrics.get_mut(&t.key) {
            let th = m.entry("thresholds").or_insert_with(|| json!({}));
            th[&t.source] = json!({ "ok": v.ok });
        }
    }
    let mut data = json!({
        "root_group": Group::tree(snap).data_json(),
        "options": {"summaryTrendStats": trend_stats, "summaryTimeUnit": "", "noColor": false},
        "state": {"isStdOutTTY": stdout_tty, "isStdErrTTY": false, "testRunDurationMs": snap.elapsed.as_secs_f64() * 1000.0},
        "metrics": metrics,
        "setup_data": setup_data,
    });
    whole_numbers_as_integers(&mut data);
    data
}

/// Writes whole numbers as JSON integers (`3`, not `3.0`), as k6's Go encoder does for
/// every float64: counts, passes and fails, and any stat that happens to be whole.
pub fn whole_numbers_as_integers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
                    *v = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}
