//! A set of parts checked and merged: one plan (same fingerprint and format), segments that
//! do not overlap and together tile 0:1 (or, with `allow_partial`, the share they cover),
//! then one snapshot: every series' sinks merged (HDR histograms add exactly).

use super::{metric_type, value_type, Part};
use crate::exec::Segment;
use crate::metrics::{Builtins, MetricId, Registry, SeriesSnapshot, Sink, Snapshot};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A series across parts: its metric and its sorted tags.
type SeriesKey = (MetricId, Vec<(String, String)>);

pub struct Merged {
    pub snapshot: Snapshot,
    pub registry: Arc<Registry>,
    /// Share of the plan the parts cover (1 unless partial).
    pub coverage: f64,
    /// The missing segments, in k6's syntax.
    pub missing: Vec<String>,
    pub complete: u64,
    pub interrupted: u64,
    pub vus_max: u64,
    /// The worst start skew among the parts (ms), if they used --start-at.
    pub max_skew_ms: Option<f64>,
}

/// Checks and merges; the error is one line naming the offending parts.
pub fn merge(parts: &[(PathBuf, Part)], allow_partial: bool) -> Result<Merged, String> {
    let name = |i: usize| parts[i].0.display().to_string();
    let (_, first) = parts.first().ok_or("no parts to merge")?;
    for (i, (_, p)) in parts.iter().enumerate().skip(1) {
        if p.fingerprint != first.fingerprint {
            return Err(format!(
                "parts {} and {} come from different plans (script, options, -e values, scale or seed differ)",
                name(0),
                name(i)
            ));
        }
    }
    // Segments: sorted by start, as exact fractions.
    let mut segs: Vec<(Segment, usize)> = Vec::new();
    for (i, (_, p)) in parts.iter().enumerate() {
        let s = Segment::parse(&p.segment)
            .map_err(|e| format!("part {}: segment {:?}: {e}", name(i), p.segment))?;
        segs.push((s, i));
    }
    segs.sort_by(|(a, _), (b, _)| cmp_frac((a.from_num, a.den), (b.from_num, b.den)));
    let (mut missing, mut covered) = (Vec::new(), (0u64, 1u64));
    let lt = |a, b| cmp_frac(a, b).is_lt();
    for w in 0..segs.len() {
        let (s, i) = segs[w];
        let start = (s.from_num, s.den);
        if lt(start, covered) {
            let j = segs[w - 1].1;
            return Err(format!(
                "parts {} and {} overlap (segments {} and {})",
                name(j),
                name(i),
                parts[j].1.segment,
                parts[i].1.segment
            ));
        }
        if lt(covered, start) {
            missing.push(format!("{}", Segment::between(covered, start)));
        }
        covered = (s.to_num, s.den);
    }
    if lt(covered, (1, 1)) {
        missing.push(format!("{}", Segment::between(covered, (1, 1))));
    }
    let coverage: f64 = segs
        .iter()
        .map(|(s, _)| (s.to_num - s.from_num) as f64 / s.den as f64)
        .sum();
    if !missing.is_empty() && !allow_partial {
        return Err(format!(
            "the parts cover {:.2}% of the plan; missing segment{} {} (--allow-partial merges anyway)",
            coverage * 100.0,
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ));
    }

    // Metrics: the built-ins, then each part's own in its order.
    let registry = Arc::new(Registry::default());
    Builtins::register(&registry);
    for (i, (_, p)) in parts.iter().enumerate() {
        for m in &p.metrics {
            let (Some(kind), Some(contains)) = (metric_type(&m.kind), value_type(&m.contains))
            else {
                return Err(format!(
                    "part {}: metric {} has an unknown type",
                    name(i),
                    m.name
                ));
            };
            if registry.get(&m.name).is_none() || !m.builtin {
                registry
                    .register(&m.name, kind, contains)
                    .map_err(|e| format!("part {}: {e}", name(i)))?;
            }
        }
    }
    let defs = registry.all();
    let mut merged: BTreeMap<SeriesKey, (Sink, u32)> = BTreeMap::new();
    for (i, (_, p)) in parts.iter().enumerate() {
        for s in &p.series {
            let id = registry.get(&s.metric).ok_or_else(|| {
                format!(
                    "part {}: series of an undeclared metric {}",
                    name(i),
                    s.metric
                )
            })?;
            let kind = defs[id.0 as usize].kind;
            let sink = s
                .sink
                .to_sink(kind)
                .map_err(|e| format!("part {}: {}: {e}", name(i), s.metric))?;
            let mut tags = s.tags.clone();
            tags.sort();
            let is_vus = matches!(s.metric.as_str(), "vus" | "vus_max");
            merged
                .entry((id, tags))
                .and_modify(|(acc, first)| {
                    *first = (*first).min(s.first_seen);
                    match (acc, &sink, is_vus) {
                        // Processes run side by side: their VU counts add up.
                        (
                            Sink::Gauge { last, min, max, .. },
                            Sink::Gauge {
                                last: l,
                                min: lo,
                                max: hi,
                                ..
                            },
                            true,
                        ) => {
                            *last += l;
                            *min += lo;
                            *max += hi;
                        }
                        (acc, sink, _) => acc.merge(sink),
                    }
                })
                .or_insert((sink, s.first_seen));
        }
    }
    let series: Vec<SeriesSnapshot> = merged
        .into_iter()
        .map(|((metric, tags), (sink, first_seen))| SeriesSnapshot {
            metric,
            tags: Arc::new(tags),
            sink,
            first_seen,
        })
        .collect();
    let start = parts.iter().map(|(_, p)| p.started_ms).min().unwrap_or(0);
    let end = parts.iter().map(|(_, p)| p.ended_ms).max().unwrap_or(start);
    let vus_max = series
        .iter()
        .filter(|s| defs[s.metric.0 as usize].name == "vus_max")
        .map(|s| match s.sink {
            Sink::Gauge { max, .. } => max as u64,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    Ok(Merged {
        snapshot: Snapshot {
            defs,
            series,
            elapsed: Duration::from_millis(end.saturating_sub(start)),
        },
        registry,
        coverage,
        missing,
        complete: parts.iter().map(|(_, p)| p.iterations_complete).sum(),
        interrupted: parts.iter().map(|(_, p)| p.iterations_interrupted).sum(),
        vus_max,
        max_skew_ms: parts
            .iter()
            .filter_map(|(_, p)| p.start_skew_ms)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))),
    })
}

/// Orders two fractions (numerator, denominator) exactly.
fn cmp_frac(a: (u64, u64), b: (u64, u64)) -> std::cmp::Ordering {
    (a.0 as u128 * b.1 as u128).cmp(&(b.0 as u128 * a.1 as u128))
}
