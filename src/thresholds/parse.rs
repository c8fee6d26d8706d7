//! "p(95)<3000" -> Expr; "http_req_duration{status:200}" -> (metric, tags); the object
//! form {threshold, abortOnFail, delayAbortEval}. Grammar: k6 v1.1 metrics/thresholds_parser.go.

use crate::metrics::{MetricType, Registry};
use crate::options::duration;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    Avg,
    Min,
    Max,
    Med,
    Percentile(f64),
    Count,
    Rate,
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub agg: Aggregation,
    pub op: Op,
    pub value: f64,
}

/// One threshold of the plan, typed and checked against the metric registry.
#[derive(Debug, Clone)]
pub struct Threshold {
    /// The key as written: `http_req_duration{status:200}`.
    pub key: String,
    pub metric: String,
    pub tags: Vec<(String, String)>,
    /// The expression as written: `p(95)<3000`.
    pub source: String,
    pub expr: Expr,
    pub abort_on_fail: bool,
    pub delay_abort_eval: Duration,
}

/// Parses an expression. Operators are searched in k6's order so `<=` wins over `<`.
pub fn parse_expr(text: &str) -> Result<Expr, String> {
    let ops = [
        ("<=", Op::Le),
        ("<", Op::Lt),
        (">=", Op::Ge),
        (">", Op::Gt),
        ("===", Op::Eq),
        ("==", Op::Eq),
        ("!=", Op::Ne),
    ];
    let (pos, sym, op) = ops
        .iter()
        .find_map(|(sym, op)| text.find(sym).map(|p| (p, *sym, *op)))
        .ok_or_else(|| format!("{text:?}: no operator (use <, <=, >, >=, ==, !=)"))?;
    let left = text[..pos].trim();
    let right = text[pos + sym.len()..].trim();
    let value: f64 = right
        .parse()
        .map_err(|_| format!("{text:?}: {right:?} is not a number"))?;
    let agg = match left {
        "avg" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        "med" => Aggregation::Med,
        "count" => Aggregation::Count,
        "rate" => Aggregation::Rate,
        "value" => Aggregation::Value,
        p if p.starts_with("p(") && p.ends_with(')') => {
            let n: f64 = p[2..p.len() - 1].trim().parse().map_err(|_| format!("{text:?}: bad percentile {p:?}"))?;
            if !(0.0..=100.0).contains(&n) {
                return Err(format!("{text:?}: percentile must be between 0 and 100"));
            }
            Aggregation::Percentile(n)
        }
        other => return Err(format!("{text:?}: unknown aggregation {other:?} (use avg, min, max, med, p(N), count, rate, value)")),
    };
    Ok(Expr { agg, op, value })
}

/// Splits `name{k:v,k2:v2}` into the metric name and its tag filter.
pub fn parse_key(key: &str) -> Result<(String, Vec<(String, String)>), String> {
    let Some(open) = key.find('{') else {
        return Ok((key.trim().to_string(), Vec::new()));
    };
    if !key.ends_with('}') {
        return Err(format!(
            "threshold key {key:?}: a sub-metric must end with '}}'"
        ));
    }
    let name = key[..open].trim().to_string();
    let inner = &key[open + 1..key.len() - 1];
    let mut tags = Vec::new();
    for part in inner.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once(':')
            .ok_or_else(|| format!("threshold key {key:?}: tag {part:?} must be key:value"))?;
        tags.push((
            k.trim().to_string(),
            v.trim().trim_matches(|c| c == '"' || c == '\'').to_string(),
        ));
    }
    if tags.is_empty() {
        return Err(format!("threshold key {key:?}: empty tag filter"));
    }
    Ok((name, tags))
}

fn allowed(kind: MetricType, agg: Aggregation) -> bool {
    use Aggregation::*;
    match kind {
        MetricType::Counter => matches!(agg, Count | Rate),
        MetricType::Gauge => matches!(agg, Value),
        MetricType::Rate => matches!(agg, Rate),
        MetricType::Trend => matches!(agg, Avg | Min | Max | Med | Percentile(_)),
    }
}

/// Types every threshold of the plan, or returns every problem found (one per line).
pub fn parse_all(
    raw: &BTreeMap<String, Vec<Value>>,
    registry: &Registry,
) -> Result<Vec<Threshold>, String> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (key, items) in raw {
        let (metric, tags) = match parse_key(key) {
            Ok(x) => x,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let Some(id) = registry.get(&metric) else {
            errors.push(format!("threshold on unknown metric {metric:?} (not built in and not created in init code)"));
            continue;
        };
        let kind = registry.def(id).kind;
        for item in items {
            match one(key, &metric, &tags, item, kind) {
                Ok(t) => out.push(t),
                Err(e) => errors.push(e),
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("; "))
    }
}

fn one(
    key: &str,
    metric: &str,
    tags: &[(String, String)],
    item: &Value,
    kind: MetricType,
) -> Result<Threshold, String> {
    let (source, abort_on_fail, delay) = match item {
        Value::String(s) => (s.clone(), false, Duration::ZERO),
        Value::Object(o) => {
            let s = o.get("threshold").and_then(Value::as_str).ok_or_else(|| {
                format!("threshold {key}: the object form needs a threshold string")
            })?;
            let abort = o
                .get("abortOnFail")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let delay = match o.get("delayAbortEval") {
                None | Some(Value::Null) => Duration::ZERO,
                Some(Value::String(d)) => duration::parse(d)
                    .map_err(|e| format!("threshold {key}: delayAbortEval: {e}"))?,
                Some(other) => {
                    return Err(format!(
                        "threshold {key}: delayAbortEval must be a duration string, got {other}"
                    ))
                }
            };
            (s.to_string(), abort, delay)
        }
        other => {
            return Err(format!(
                "threshold {key}: expected a string or {{threshold=...}}, got {other}"
            ))
        }
    };
    let expr = parse_expr(&source).map_err(|e| format!("threshold {key}: {e}"))?;
    if !allowed(kind, expr.agg) {
        return Err(format!(
            "threshold {key}: {source:?} cannot apply to a {} metric",
            kind.name()
        ));
    }
    Ok(Threshold {
        key: key.to_string(),
        metric: metric.to_string(),
        tags: tags.to_vec(),
        source,
        expr,
        abort_on_fail,
        delay_abort_eval: delay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k6_expressions() {
        assert_eq!(
            parse_expr("p(95)<3000").unwrap(),
            Expr {
                agg: Aggregation::Percentile(95.0),
                op: Op::Lt,
                value: 3000.0
            }
        );
        assert_eq!(
            parse_expr("p(99.9) <= 5000").unwrap().agg,
            Aggregation::Percentile(99.9)
        );
        assert_eq!(parse_expr("rate>0.99").unwrap().op, Op::Gt);
        assert_eq!(parse_expr("count>=10").unwrap().op, Op::Ge);
        assert_eq!(parse_expr("value==1").unwrap().op, Op::Eq);
        assert_eq!(parse_expr("avg!=0").unwrap().op, Op::Ne);
        assert!(parse_expr("p95<3").is_err());
        assert!(parse_expr("p(101)<3").is_err());
        assert!(parse_expr("avg<abc").is_err());
        assert!(parse_expr("avg 3").is_err());
    }

    #[test]
    fn parses_sub_metric_keys() {
        assert_eq!(
            parse_key("http_req_duration{status:200}").unwrap(),
            (
                "http_req_duration".into(),
                vec![("status".into(), "200".into())]
            )
        );
        assert_eq!(
            parse_key("beacon_latency_ms{type:heartbeat}").unwrap().1,
            vec![("type".into(), "heartbeat".into())]
        );
        assert!(parse_key("x{status}").is_err());
        assert!(parse_key("x{a:b").is_err());
    }
}
