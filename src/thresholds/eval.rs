//! Judging thresholds on a snapshot. A metric without samples passes (k6 skips it).

use super::parse::{Aggregation, Threshold};
use crate::metrics::{Sink, Snapshot};

#[derive(Debug, Clone)]
pub struct Verdict {
    pub threshold: Threshold,
    /// The aggregated value, if the metric had samples.
    pub value: Option<f64>,
    pub ok: bool,
}

pub fn evaluate(thresholds: &[Threshold], snap: &Snapshot) -> Vec<Verdict> {
    thresholds
        .iter()
        .map(|t| {
            let sink = snap.id(&t.metric).and_then(|id| snap.matching(id, &t.tags));
            let value = sink
                .filter(|s| !s.is_empty())
                .and_then(|s| aggregate(&s, t.expr.agg, snap.elapsed.as_secs_f64()));
            let ok = value.is_none_or(|v| t.expr.op.holds(v, t.expr.value));
            Verdict {
                threshold: t.clone(),
                value,
                ok,
            }
        })
        .collect()
}

fn aggregate(sink: &Sink, agg: Aggregation, secs: f64) -> Option<f64> {
    Some(match (sink, agg) {
        (Sink::Counter { sum }, Aggregation::Count) => *sum,
        (Sink::Counter { sum }, Aggregation::Rate) => {
            if secs > 0.0 {
                sum / secs
            } else {
                0.0
            }
        }
        (Sink::Gauge { last, .. }, Aggregation::Value) => *last,
        (Sink::Rate { trues, total }, Aggregation::Rate) => *trues as f64 / (*total).max(1) as f64,
        (Sink::Trend(t), Aggregation::Avg) => t.avg(),
        (Sink::Trend(t), Aggregation::Min) => t.min,
        (Sink::Trend(t), Aggregation::Max) => t.max,
        (Sink::Trend(t), Aggregation::Med) => t.percentile(50.0),
        (Sink::Trend(t), Aggregation::Percentile(p)) => t.percentile(p),
        _ => return None,
    })
}
