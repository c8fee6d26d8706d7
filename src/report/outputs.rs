//! Result outputs: every sample as k6's JSON lines (`--out json=FILE`) or CSV
//! (`--out csv=FILE`), buffered, written by the aggregator thread (never by a worker). A
//! write error (a full disk) is reported once and the output stops; the run goes on.

use crate::live::OutputSpec;
use crate::metrics::{MetricDef, SampleOutput, TagSet};
use crate::timefmt::rfc3339_us;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};

/// Opens the file of a `json=FILE` / `csv=FILE` output (None for other outputs).
pub fn open(
    spec: &OutputSpec,
    thresholds: &BTreeMap<String, Vec<String>>,
) -> Result<Option<Box<dyn SampleOutput>>, String> {
    let (kind, path) = match spec {
        OutputSpec::Json(p) => ("json", p),
        OutputSpec::Csv(p) => ("csv", p),
        _ => return Ok(None),
    };
    let file = File::create(path).map_err(|e| format!("--out {kind}={path}: {e}"))?;
    let w = Writer {
        out: BufWriter::with_capacity(1 << 16, file),
        path: path.to_string(),
        failed: false,
    };
    Ok(Some(match kind {
        "json" => Box::new(JsonLines {
            w,
            seen: HashSet::new(),
            thresholds: thresholds.clone(),
            submetrics: submetrics_of(thresholds),
        }),
        _ => {
            let mut w = w;
            w.line(format_args!(
                "metric_name,timestamp,metric_value,{},extra_tags,metadata",
                CSV_TAGS.join(",")
            ));
            Box::new(Csv { w })
        }
    }))
}

struct Writer {
    out: BufWriter<File>,
    path: String,
    failed: bool,
}

impl Writer {
    fn line(&mut self, args: std::fmt::Arguments) {
        if self.failed {
            return;
        }
        if let Err(e) = self
            .out
            .write_fmt(args)
            .and_then(|_| self.out.write_all(b"\n"))
        {
            self.fail(e);
        }
    }

    fn fail(&mut self, e: std::io::Error) {
        eprintln!(
            "ERRO  --out {}: write failed ({e}); no more samples are written there",
            self.path
        );
        self.failed = true;
    }

    fn finish(&mut self) {
        if !self.failed {
            if let Err(e) = self.out.flush() {
                self.fail(e);
            }
        }
    }
}

/// k6's JSON output: a Metric line before the first Point of each metric.
struct JsonLines {
    w: Writer,
    seen: HashSet<String>,
    thresholds: BTreeMap<String, Vec<String>>,
    /// Per parent metric, the sub-metrics thresholds name (k6 lists them on the Metric line).
    submetrics: BTreeMap<String, Vec<Value>>,
}

/// `http_req_duration{status:200}` -> under http_req_duration: {name, suffix, tags}.
fn submetrics_of(thresholds: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for key in thresholds.keys() {
        let Some((parent, rest)) = key.split_once('{') else {
            continue;
        };
        let suffix = rest.trim_end_matches('}');
        let tags: Map<String, Value> = suffix
            .split(',')
            .filter_map(|kv| kv.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), Value::String(v.trim().to_string())))
            .collect();
        out.entry(parent.trim().to_string())
            .or_default()
            .push(json!({
                "name": key, "suffix": suffix, "tags": tags,
            }));
    }
    out
}

impl SampleOutput for JsonLines {
    fn sample(&mut self, def: &MetricDef, tags: &TagSet, value: f64, time_us: u64) {
        if !self.seen.contains(&def.name) {
            self.seen.insert(def.name.clone());
            let metric = json!({
                "type": "Metric",
                "data": {
                    "name": def.name, "type": def.kind.name(), "contains": def.contains.name(),
                    "thresholds": self.thresholds.get(&def.name).cloned().unwrap_or_default(),
                    "submetrics": self.submetrics.get(&def.name),
                },
                "metric": def.name,
            });
            self.w.line(format_args!("{metric}"));
        }
        let tag_obj: Map<String, Value> = tags
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let point = json!({
            "metric": def.name,
            "type": "Point",
            "data": { "time": rfc3339_us(time_us), "value": value, "tags": tag_obj },
        });
        self.w.line(format_args!("{point}"));
    }

    fn finish(&mut self) {
        self.w.finish();
    }
}

/// k6's system tags as CSV columns, alphabetical; other tags go to extra_tags.
const CSV_TAGS: [&str; 14] = [
    "check",
    "error",
    "error_code",
    "expected_response",
    "group",
    "method",
    "name",
    "proto",
    "scenario",
    "service",
    "status",
    "subproto",
    "tls_version",
    "url",
];

struct Csv {
    w: Writer,
}

impl SampleOutput for Csv {
    fn sample(&mut self, def: &MetricDef, tags: &TagSet, value: f64, time_us: u64) {
        let get = |k: &str| {
            tags.iter()
                .find(|(t, _)| t == k)
                .map_or("", |(_, v)| v.as_str())
        };
        let cols: Vec<String> = CSV_TAGS.iter().map(|k| csv_field(get(k))).collect();
        let extra: Vec<String> = tags
            .iter()
            .filter(|(k, _)| !CSV_TAGS.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        self.w.line(format_args!(
            "{},{},{:.6},{},{},",
            def.name,
            time_us / 1_000_000,
            value,
            cols.join(","),
            csv_field(&extra.join("&"))
        ));
    }

    fn finish(&mut self) {
        self.w.finish();
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
