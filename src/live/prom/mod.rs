//! Prometheus remote write (`--out experimental-prometheus-rw`), mapped as k6 maps it: every
//! series prefixed `k6_`; counters `_total`, rates `_rate` (the ratio), gauges by name,
//! trends one gauge per stat (`_p99`, `_avg`, ...); time in seconds, data in bytes; tags as
//! labels except the high-cardinality `url`, `vu` and `iter`. Values are cumulative over the
//! run, as k6's sinks are, so a dropped push loses a point in time, never a count.
//!
//! - `proto.rs`: the protobuf messages.
//! - `push.rs`: the pushing threads (bounded queue, retries, dropped batches counted).

mod proto;
mod push;

pub use push::Pusher;

use crate::metrics::{MetricType, Sink, Snapshot, ValueType};
use crate::report::format::trend_stat;
use proto::{Label, Sample, TimeSeries, WriteRequest};
use std::collections::BTreeMap;

/// Tags k6 does not index (one series per URL or VU would swamp the receiver).
const DROPPED_TAGS: [&str; 3] = ["url", "vu", "iter"];

/// `p(99)` -> `p99`, `p(99.9)` -> `p999`, `avg` -> `avg`; None for an unknown stat.
pub fn stat_suffix(stat: &str) -> Option<String> {
    match stat {
        "count" | "sum" | "min" | "max" | "avg" | "med" => Some(stat.to_string()),
        _ => {
            let p = stat.strip_prefix("p(")?.strip_suffix(')')?;
            let x: f64 = p.parse().ok()?;
            (0.0..=100.0)
                .contains(&x)
                .then(|| format!("p{}", p.replace('.', "")))
        }
    }
}

/// A label name as Prometheus allows it (`[a-zA-Z_][a-zA-Z0-9_]*`).
fn label_name(tag: &str) -> String {
    let mut s: String = tag
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Every series of the snapshot as remote-write time series, stamped `at_ms`.
pub fn map_snapshot(
    snap: &Snapshot,
    trend_stats: &[String],
    extra: &[(String, String)],
    at_ms: i64,
) -> WriteRequest {
    // Merge the series that differ only in dropped tags.
    let mut grouped: BTreeMap<(u32, Vec<(String, String)>), Sink> = BTreeMap::new();
    for s in &snap.series {
        let labels: Vec<(String, String)> = s
            .tags
            .iter()
            .filter(|(k, _)| !DROPPED_TAGS.contains(&k.as_str()))
            .map(|(k, v)| (label_name(k), v.clone()))
            .chain(extra.iter().map(|(k, v)| (label_name(k), v.clone())))
            .collect();
        grouped
            .entry((s.metric.0, labels))
            .and_modify(|acc| acc.merge(&s.sink))
            .or_insert_with(|| s.sink.clone());
    }
    let mut timeseries = Vec::new();
    for ((metric, labels), sink) in &grouped {
        let def = &snap.defs[*metric as usize];
        let seconds = def.contains == ValueType::Time;
        let mut push = |name: String, value: f64| {
            let mut l: Vec<Label> = labels
                .iter()
                .filter(|(k, _)| k != "__name__")
                .map(|(k, v)| Label {
                    name: k.clone(),
                    value: v.clone(),
                })
                .collect();
            l.push(Label {
                name: "__name__".into(),
                value: name,
            });
            l.sort_by(|a, b| a.name.cmp(&b.name));
            l.dedup_by(|a, b| a.name == b.name);
            timeseries.push(TimeSeries {
                labels: l,
                samples: vec![Sample {
                    value,
                    timestamp: at_ms,
                }],
            });
        };
        let base = format!("k6_{}", def.name);
        match (def.kind, sink) {
            (MetricType::Counter, Sink::Counter { sum }) => push(format!("{base}_total"), *sum),
            (
                MetricType::Gauge,
                Sink::Gauge {
                    last, seen: true, ..
                },
            ) => {
                if seconds {
                    push(format!("{base}_seconds"), last / 1000.0)
                } else {
                    push(base, *last)
                }
            }
            (MetricType::Rate, Sink::Rate { trues, total }) if *total > 0 => {
                push(format!("{base}_rate"), *trues as f64 / *total as f64)
            }
            (MetricType::Trend, s @ Sink::Trend(t)) if t.count > 0 => {
                for st in trend_stats {
                    let (Some(suffix), Some(v)) = (stat_suffix(st), trend_stat(s, st)) else {
                        continue;
                    };
                    let scaled = if seconds && st != "count" {
                        v / 1000.0
                    } else {
                        v
                    };
                    push(format!("{base}_{suffix}"), scaled);
                }
            }
            _ => {}
        }
    }
    WriteRequest { timeseries }
}

/// The same series with Prometheus's stale marker, so queries stop at the end of the run.
pub fn stale(req: &WriteRequest, at_ms: i64) -> WriteRequest {
    let mut out = req.clone();
    for ts in &mut out.timeseries {
        ts.samples = vec![Sample {
            value: f64::from_bits(proto::STALE_NAN),
            timestamp: at_ms,
        }];
    }
    out
}

/// Protobuf, then snappy's block format, as the remote-write spec asks.
pub fn encode(req: &WriteRequest) -> Vec<u8> {
    let raw = prost::Message::encode_to_vec(req);
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compresses any input below 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Builtins, MetricId, Registry, SeriesSnapshot};
    use std::sync::Arc;

    fn series(metric: MetricId, tags: &[(&str, &str)], sink: Sink) -> SeriesSnapshot {
        SeriesSnapshot {
            metric,
            tags: Arc::new(
                tags.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            sink,
            first_seen: 0,
        }
    }

    #[test]
    fn maps_as_k6_does() {
        let r = Registry::default();
        let b = Builtins::register(&r);
        let mut dur = Sink::new(MetricType::Trend);
        for v in [100.0, 200.0, 300.0] {
            dur.add(v);
        }
        let snap = Snapshot {
            defs: r.all(),
            series: vec![
                series(
                    b.http_reqs,
                    &[("url", "http://a/1"), ("status", "200")],
                    Sink::Counter { sum: 2.0 },
                ),
                series(
                    b.http_reqs,
                    &[("url", "http://a/2"), ("status", "200")],
                    Sink::Counter { sum: 3.0 },
                ),
                series(
                    b.checks,
                    &[("check", "ok")],
                    Sink::Rate { trues: 3, total: 4 },
                ),
                series(b.http_req_duration, &[("expected-response", "true")], dur),
            ],
            elapsed: std::time::Duration::from_secs(1),
        };
        let req = map_snapshot(
            &snap,
            &["p(99)".into(), "count".into(), "max".into()],
            &[],
            42,
        );
        let flat: Vec<(String, f64)> = req
            .timeseries
            .iter()
            .map(|t| {
                let l: Vec<String> = t
                    .labels
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect();
                (l.join(","), t.samples[0].value)
            })
            .collect();
        assert!(
            flat.contains(&("__name__=k6_http_reqs_total,status=200".into(), 5.0)),
            "{flat:?}"
        );
        assert!(
            flat.contains(&("__name__=k6_checks_rate,check=ok".into(), 0.75)),
            "{flat:?}"
        );
        assert!(flat.contains(&(
            "__name__=k6_http_req_duration_count,expected_response=true".into(),
            3.0
        )));
        assert!(flat.contains(&(
            "__name__=k6_http_req_duration_max,expected_response=true".into(),
            0.3
        )));
        assert_eq!(req.timeseries.len(), 5);
        assert!(req.timeseries.iter().all(|t| t.samples[0].timestamp == 42));
        // What Prometheus receives decodes back to the same request.
        let body = encode(&req);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let back: WriteRequest = prost::Message::decode(raw.as_slice()).unwrap();
        assert_eq!(back, req);
        assert!(stale(&req, 43).timeseries[0].samples[0].value.is_nan());
    }

    #[test]
    fn stat_suffixes() {
        assert_eq!(stat_suffix("p(99)").as_deref(), Some("p99"));
        assert_eq!(stat_suffix("p(99.9)").as_deref(), Some("p999"));
        assert_eq!(stat_suffix("med").as_deref(), Some("med"));
        assert_eq!(stat_suffix("p99"), None);
        assert_eq!(stat_suffix("p(101)"), None);
    }
}
