//! Result parts: what one process of a split test writes (`engine run --out part=FILE`) so
//! that `engine merge` can compute the whole test's summary, thresholds and report exactly.
//!
//! - `mod.rs`: the format (versioned JSON; see [`Part`]), written and read.
//! - `merge.rs`: the checks on a set of parts (same plan, segments that tile 0:1) and the
//!   merged snapshot.
//! - `engine merge` itself is `src/run/merge.rs` (it shares the run's reporting).
//!
//! Format, version 1: one JSON object. Sinks are exact: counters' sums, rates' passes and
//! totals, gauges' last, min and max, trends' count, sum, min and max with their HDR
//! histogram in HdrHistogram's V2 deflate encoding (base64), which is lossless, so merged
//! percentiles equal those of one unsplit run on the same values.

pub mod merge;

use crate::metrics::{MetricDef, MetricType, Sink, Snapshot, TrendSink, ValueType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The format's name, in every part.
pub const FORMAT: &str = "engine-result-part";
/// The newest version this engine writes and reads.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    pub format: String,
    pub version: u32,
    pub engine: String,
    /// SHA-256 of the plan: script content, resolved options, `-e` pairs, scale flags, seed.
    pub fingerprint: String,
    pub script: String,
    /// This process's share, k6's syntax (`1/3:2/3`).
    pub segment: String,
    pub seed: Option<u64>,
    /// Wall-clock start and end of the test proper (after setup), ms since the epoch.
    pub started_ms: u64,
    pub ended_ms: u64,
    /// How late the start was against `--start-at`, if one was given.
    pub start_skew_ms: Option<f64>,
    pub trend_stats: Vec<String>,
    /// The script's thresholds as written (objects for abortOnFail).
    pub thresholds: BTreeMap<String, Vec<Value>>,
    pub iterations_complete: u64,
    pub iterations_interrupted: u64,
    pub metrics: Vec<PartMetric>,
    pub series: Vec<PartSeries>,
    /// The dashboard's time series, when it ran (see `src/metrics/timeseries.rs`).
    #[serde(default)]
    pub timeseries: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartMetric {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub contains: String,
    pub builtin: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartSeries {
    pub metric: String,
    pub tags: Vec<(String, String)>,
    /// Order of first sight within the part (checks and groups are listed in it).
    pub first_seen: u32,
    pub sink: PartSink,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum PartSink {
    Counter {
        sum: f64,
    },
    Gauge {
        last: f64,
        min: f64,
        max: f64,
    },
    Rate {
        passes: u64,
        total: u64,
    },
    Trend {
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
        /// HdrHistogram V2 deflate, base64; values in µ-units (µs for time trends).
        histogram: String,
    },
}

impl PartSink {
    fn of(sink: &Sink) -> Option<PartSink> {
        Some(match sink {
            Sink::Counter { sum } => PartSink::Counter { sum: *sum },
            Sink::Gauge { seen: false, .. } => return None,
            Sink::Gauge { last, min, max, .. } => PartSink::Gauge {
                last: *last,
                min: *min,
                max: *max,
            },
            Sink::Rate { trues, total } => PartSink::Rate {
                passes: *trues,
                total: *total,
            },
            Sink::Trend(t) => PartSink::Trend {
                count: t.count,
                sum: t.sum,
                min: if t.count == 0 { 0.0 } else { t.min },
                max: if t.count == 0 { 0.0 } else { t.max },
                histogram: t.encode_histogram(),
            },
        })
    }

    /// The sink, checked against its metric's type.
    pub fn to_sink(&self, kind: MetricType) -> Result<Sink, String> {
        Ok(match (self, kind) {
            (PartSink::Counter { sum }, MetricType::Counter) => Sink::Counter { sum: *sum },
            (PartSink::Gauge { last, min, max }, MetricType::Gauge) => Sink::Gauge {
                last: *last,
                min: *min,
                max: *max,
                seen: true,
            },
            (PartSink::Rate { passes, total }, MetricType::Rate) if passes <= total => Sink::Rate {
                trues: *passes,
                total: *total,
            },
            (
                PartSink::Trend {
                    count,
                    sum,
                    min,
                    max,
                    histogram,
                },
                MetricType::Trend,
            ) => Sink::Trend(TrendSink::decode(*count, *sum, *min, *max, histogram)?),
            _ => return Err(format!("a sink that does not fit a {} metric", kind.name())),
        })
    }
}

pub fn metric_type(name: &str) -> Option<MetricType> {
    Some(match name {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "rate" => MetricType::Rate,
        "trend" => MetricType::Trend,
        _ => return None,
    })
}

pub fn value_type(name: &str) -> Option<ValueType> {
    Some(match name {
        "default" => ValueType::Default,
        "time" => ValueType::Time,
        "data" => ValueType::Data,
        _ => return None,
    })
}

/// What a run knows about itself when it writes its part.
pub struct RunIdentity<'a> {
    pub fingerprint: &'a str,
    pub script: &'a Path,
    pub segment: crate::exec::Segment,
    pub seed: Option<u64>,
    pub started_ms: u64,
    pub ended_ms: u64,
    pub start_skew_ms: Option<f64>,
    pub trend_stats: &'a [String],
    pub thresholds: &'a BTreeMap<String, Vec<Value>>,
    pub complete: u64,
    pub interrupted: u64,
}

/// The part of a finished run.
pub fn from_run(id: &RunIdentity, snap: &Snapshot, timeseries: Option<Value>) -> Part {
    let defs: &[MetricDef] = &snap.defs;
    Part {
        format: FORMAT.into(),
        version: VERSION,
        engine: env!("CARGO_PKG_VERSION").into(),
        fingerprint: id.fingerprint.into(),
        script: id.script.display().to_string(),
        segment: id.segment.to_string(),
        seed: id.seed,
        started_ms: id.started_ms,
        ended_ms: id.ended_ms,
        start_skew_ms: id.start_skew_ms,
        trend_stats: id.trend_stats.to_vec(),
        thresholds: id.thresholds.clone(),
        iterations_complete: id.complete,
        iterations_interrupted: id.interrupted,
        metrics: defs
            .iter()
            .map(|d| PartMetric {
                name: d.name.clone(),
                kind: d.kind.name().into(),
                contains: d.contains.name().into(),
                builtin: d.builtin,
            })
            .collect(),
        series: snap
            .series
            .iter()
            .filter_map(|s| {
                Some(PartSeries {
                    metric: defs[s.metric.0 as usize].name.clone(),
                    tags: s.tags.iter().cloned().collect(),
                    first_seen: s.first_seen,
                    sink: PartSink::of(&s.sink)?,
                })
            })
            .collect(),
        timeseries,
    }
}

pub fn write(path: &Path, part: &Part) -> Result<(), String> {
    let text = serde_json::to_string(part).expect("a part serialises");
    // Written whole then renamed, so a reader never sees half a part.
    let tmp = path.with_extension("part-tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("--out part={}: {e}", path.display()))
}

/// Reads a part; every failure is one line naming the file.
pub fn read(path: &Path) -> Result<Part, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("part {name}: {e}"))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| format!("part {name}: not a complete JSON document ({e})"))?;
    if doc.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(format!("part {name}: not an engine result part"));
    }
    match doc.get("version").and_then(Value::as_u64) {
        Some(v) if v > VERSION as u64 => {
            return Err(format!(
                "part {name}: format version {v} is newer than this engine reads ({VERSION}); use a newer engine to merge"
            ))
        }
        Some(v) if v >= 1 => {}
        _ => return Err(format!("part {name}: no valid format version")),
    }
    serde_json::from_value(doc).map_err(|e| format!("part {name}: {e}"))
}
