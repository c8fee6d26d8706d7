//! Time series: every metric aggregated per period (1 s by default), kept by the aggregator
//! thread so the VU hot path pays nothing for it. Feeds the web dashboard and the HTML report.
//!
//! Which series: each metric over all its tag sets; each metric per `scenario` when the plan
//! has several; and each split the run asks for (a metric by one tag, such as the funnel's
//! `funnel_entry_success` by `page`). A period's trend percentiles come from that period's
//! own HDR histogram, not from averages of percentiles.
//!
//! Memory is bounded: a series holds at most [`MAX_POINTS`] points. The first period length
//! is chosen from the planned duration so a run fits; a run that outlasts its plan halves its
//! resolution (pairs of points merge: counts, sums, min, max and averages exactly, trend
//! percentiles as the larger of the pair, an upper bound).

use super::{MetricDef, MetricId, MetricType, Sink, TagSet, TagSetId};
use crate::fasthash::FastMap;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Points per series before the resolution halves (1 hour at 1 s).
pub const MAX_POINTS: usize = 3600;

/// Bytes of one closed point by metric type (the figures the README states per metric-hour).
pub const POINT_BYTES: [(MetricType, usize); 4] = [
    (MetricType::Counter, std::mem::size_of::<f64>()),
    (MetricType::Gauge, std::mem::size_of::<f64>()),
    (MetricType::Rate, std::mem::size_of::<[u32; 2]>()),
    (MetricType::Trend, std::mem::size_of::<TrendPoint>()),
];

/// What to split besides the totals.
#[derive(Debug, Clone, Default)]
pub struct SeriesRules {
    /// One series per `scenario` tag value for every metric (worth it with 2+ scenarios).
    pub by_scenario: bool,
    /// (metric name, tag): that metric split by that tag's values.
    pub splits: Vec<(String, String)>,
}

/// One closed period of a trend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendPoint {
    pub count: u32,
    pub min: f32,
    pub max: f32,
    pub avg: f32,
    pub p50: f32,
    pub p90: f32,
    pub p95: f32,
    pub p99: f32,
}

impl TrendPoint {
    const EMPTY: TrendPoint = TrendPoint {
        count: 0,
        min: f32::NAN,
        max: f32::NAN,
        avg: f32::NAN,
        p50: f32::NAN,
        p90: f32::NAN,
        p95: f32::NAN,
        p99: f32::NAN,
    };

    /// Two adjacent periods as one: exact but for the percentiles (the larger of the two).
    fn merge(a: TrendPoint, b: TrendPoint) -> TrendPoint {
        if a.count == 0 {
            return b;
        }
        if b.count == 0 {
            return a;
        }
        let n = a.count + b.count;
        let avg = (a.avg as f64 * a.count as f64 + b.avg as f64 * b.count as f64) / n as f64;
        TrendPoint {
            count: n,
            min: a.min.min(b.min),
            max: a.max.max(b.max),
            avg: avg as f32,
            p50: a.p50.max(b.p50),
            p90: a.p90.max(b.p90),
            p95: a.p95.max(b.p95),
            p99: a.p99.max(b.p99),
        }
    }
}

/// The closed periods of one series.
#[derive(Debug, Clone)]
pub enum Points {
    /// Sum per period.
    Counter(Vec<f64>),
    /// Last value per period (held from the period before when none came; NaN before the
    /// first sample).
    Gauge(Vec<f64>),
    /// (non-zero samples, samples) per period.
    Rate(Vec<[u32; 2]>),
    Trend(Vec<TrendPoint>),
}

impl Points {
    fn new(kind: MetricType) -> Points {
        match kind {
            MetricType::Counter => Points::Counter(Vec::new()),
            MetricType::Gauge => Points::Gauge(Vec::new()),
            MetricType::Rate => Points::Rate(Vec::new()),
            MetricType::Trend => Points::Trend(Vec::new()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Points::Counter(v) | Points::Gauge(v) => v.len(),
            Points::Rate(v) => v.len(),
            Points::Trend(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one period: `now` and `prev` are the series' cumulative values at its end
    /// and its start; `scratch` is a trend sink to compute the difference in.
    fn push(&mut self, now: &Sink, prev: &Sink, scratch: &mut Sink) {
        match (self, now, prev) {
            (Points::Counter(v), Sink::Counter { sum }, Sink::Counter { sum: before }) => {
                v.push(sum - before)
            }
            // A gauge holds its last value (VUs are sampled once a second, which need not
            // fall in every period).
            (Points::Gauge(v), Sink::Gauge { last, seen, .. }, _) => {
                v.push(if *seen { *last } else { f64::NAN })
            }
            (
                Points::Rate(v),
                Sink::Rate { trues, total },
                Sink::Rate {
                    trues: t0,
                    total: n0,
                },
            ) => v.push([(trues - t0) as u32, (total - n0) as u32]),
            (Points::Trend(v), Sink::Trend(now), Sink::Trend(prev)) => {
                let Sink::Trend(t) = scratch else {
                    unreachable!("the scratch sink is a trend")
                };
                now.since(prev, t);
                v.push(if t.count == 0 {
                    TrendPoint::EMPTY
                } else {
                    TrendPoint {
                        count: t.count as u32,
                        min: t.min as f32,
                        max: t.max as f32,
                        avg: t.avg() as f32,
                        p50: t.percentile(50.0) as f32,
                        p90: t.percentile(90.0) as f32,
                        p95: t.percentile(95.0) as f32,
                        p99: t.percentile(99.0) as f32,
                    }
                })
            }
            _ => unreachable!("a series' sinks have its metric's type"),
        }
    }

    /// An empty period before the series' first sample (to align pairs when compacting).
    fn push_front_empty(&mut self) {
        match self {
            Points::Counter(v) => v.insert(0, 0.0),
            Points::Gauge(v) => v.insert(0, f64::NAN),
            Points::Rate(v) => v.insert(0, [0, 0]),
            Points::Trend(v) => v.insert(0, TrendPoint::EMPTY),
        }
    }

    /// Merges adjacent pairs (the length is even).
    fn halve(&mut self) {
        fn pairs<T: Copy>(v: &mut Vec<T>, f: impl Fn(T, T) -> T) {
            *v = v.chunks(2).map(|c| f(c[0], c[1])).collect();
        }
        match self {
            Points::Counter(v) => pairs(v, |a, b| a + b),
            Points::Gauge(v) => pairs(v, |a, b| if b.is_nan() { a } else { b }),
            Points::Rate(v) => pairs(v, |a, b| [a[0] + b[0], a[1] + b[1]]),
            Points::Trend(v) => pairs(v, TrendPoint::merge),
        }
    }

    /// The points from index `from` on, as JSON arrays by field (null for no data).
    fn to_json(&self, from: usize) -> Value {
        // Four significant digits: what a chart can show, and what keeps a 38-minute
        // report small (an f32 printed in full takes 17).
        fn num(x: f64) -> Value {
            if !x.is_finite() {
                return Value::Null;
            }
            if x == 0.0 || x.fract() == 0.0 && x.abs() < 1e15 {
                return json!(x);
            }
            let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
            json!((x * scale).round() / scale)
        }
        fn col<T>(v: &[T], from: usize, f: impl Fn(&T) -> Value) -> Value {
            Value::Array(v.get(from..).unwrap_or(&[]).iter().map(f).collect())
        }
        match self {
            Points::Counter(v) => json!({ "sum": col(v, from, |x| num(*x)) }),
            Points::Gauge(v) => json!({ "value": col(v, from, |x| num(*x)) }),
            Points::Rate(v) => json!({
                "passes": col(v, from, |x| json!(x[0])),
                "total": col(v, from, |x| json!(x[1])),
            }),
            Points::Trend(v) => {
                let f = |g: fn(&TrendPoint) -> f32| col(v, from, move |p| num(g(p) as f64));
                json!({
                    "count": col(v, from, |p| json!(p.count)),
                    "min": f(|p| p.min), "max": f(|p| p.max), "avg": f(|p| p.avg),
                    "p50": f(|p| p.p50), "p90": f(|p| p.p90),
                    "p95": f(|p| p.p95), "p99": f(|p| p.p99),
                })
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Series {
    pub metric: MetricId,
    /// None: the metric over all its tag sets; Some((tag, value)): one split.
    pub tag: Option<(String, String)>,
    /// Index of `points[0]` among all periods.
    pub first: usize,
    pub points: Points,
    /// Cumulative values merged at the end of this period and of the previous one.
    now: Sink,
    prev: Sink,
}

pub struct TimeSeries {
    rules: SeriesRules,
    period: Duration,
    /// Periods closed so far (every series ends there).
    closed: usize,
    /// How many times the resolution halved (a reader that saw an older layout starts over).
    pub epoch: u32,
    next_close: Instant,
    start_unix_ms: u64,
    /// By tag-set id, then metric: the series a cumulative sink belongs to.
    routes: Vec<Vec<(MetricId, Vec<u32>)>>,
    /// Where a period's trend is computed (allocated once).
    scratch: Sink,
    by_key: FastMap<(MetricId, Option<(String, String)>), u32>,
    series: Vec<Series>,
}

impl TimeSeries {
    /// `planned` is the plan's longest duration; the period grows from 1 s so it fits in
    /// [`MAX_POINTS`] points.
    pub fn new(rules: SeriesRules, planned: Duration) -> TimeSeries {
        let secs = planned.as_secs().div_ceil(MAX_POINTS as u64).max(1);
        TimeSeries {
            rules,
            period: Duration::from_secs(secs),
            closed: 0,
            epoch: 0,
            next_close: Instant::now() + Duration::from_secs(secs),
            start_unix_ms: super::now_us() / 1000,
            routes: Vec::new(),
            scratch: Sink::new(MetricType::Trend),
            by_key: FastMap::default(),
            series: Vec::new(),
        }
    }

    /// The test starts now: period 0 begins (what came before, such as setup(), falls in it).
    pub fn start(&mut self, now: Instant) {
        self.next_close = now + self.period;
        self.start_unix_ms = super::now_us() / 1000;
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    pub fn closed(&self) -> usize {
        self.closed
    }

    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// Which entry of `routes[tags]` lists the series of (`metric`, `tags`); `describe`
    /// gives the metric and the tags the first time the pair is seen.
    fn routes_of(
        &mut self,
        metric: MetricId,
        tags: TagSetId,
        describe: &dyn Fn(MetricId, TagSetId) -> (MetricDef, TagSet),
    ) -> usize {
        let t = tags.0 as usize;
        if t >= self.routes.len() {
            self.routes.resize_with(t + 1, Vec::new);
        }
        if let Some(i) = self.routes[t].iter().position(|(m, _)| *m == metric) {
            return i;
        }
        let (def, set) = describe(metric, tags);
        let ids = self.route(metric, &def, &set);
        self.routes[t].push((metric, ids));
        self.routes[t].len() - 1
    }

    fn route(&mut self, metric: MetricId, def: &MetricDef, tags: &TagSet) -> Vec<u32> {
        let value_of = |k: &str| tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.clone());
        let mut keys = vec![None];
        if self.rules.by_scenario {
            if let Some(v) = value_of("scenario") {
                keys.push(Some(("scenario".to_string(), v)));
            }
        }
        for (m, tag) in &self.rules.splits {
            if *m == def.name {
                if let Some(v) = value_of(tag) {
                    keys.push(Some((tag.clone(), v)));
                }
            }
        }
        keys.into_iter()
            .map(|tag| {
                let key = (metric, tag);
                if let Some(&id) = self.by_key.get(&key) {
                    return id;
                }
                let id = self.series.len() as u32;
                self.series.push(Series {
                    metric,
                    tag: key.1.clone(),
                    first: self.closed,
                    points: Points::new(def.kind),
                    now: Sink::new(def.kind),
                    prev: Sink::new(def.kind),
                });
                self.by_key.insert(key, id);
                id
            })
            .collect()
    }

    /// Closes the period if it has ended by `now` (a late tick closes one period that
    /// covers the gap rather than empty ones).
    pub fn tick(
        &mut self,
        now: Instant,
        sinks: &[Vec<(MetricId, Sink)>],
        describe: &dyn Fn(MetricId, TagSetId) -> (MetricDef, TagSet),
    ) {
        if now >= self.next_close {
            self.close_period(sinks, describe);
            while self.next_close <= now {
                self.next_close += self.period;
            }
        }
    }

    /// Closes the open period (also at the end of the run, however short it was), given
    /// the aggregator's cumulative sinks by tag-set id.
    pub fn close_period(
        &mut self,
        sinks: &[Vec<(MetricId, Sink)>],
        describe: &dyn Fn(MetricId, TagSetId) -> (MetricDef, TagSet),
    ) {
        for s in &mut self.series {
            s.now.reset();
        }
        for (t, list) in sinks.iter().enumerate() {
            for (metric, sink) in list {
                let r = self.routes_of(*metric, TagSetId(t as u32), describe);
                for &id in &self.routes[t][r].1 {
                    self.series[id as usize].now.merge(sink);
                }
            }
        }
        for s in &mut self.series {
            s.points.push(&s.now, &s.prev, &mut self.scratch);
            std::mem::swap(&mut s.now, &mut s.prev);
        }
        self.closed += 1;
        if self.closed >= MAX_POINTS && self.closed.is_multiple_of(2) {
            self.halve();
        }
    }

    fn halve(&mut self) {
        for s in &mut self.series {
            if s.first % 2 == 1 {
                s.points.push_front_empty();
                s.first -= 1;
            }
            s.points.halve();
            s.first /= 2;
        }
        self.closed /= 2;
        self.period *= 2;
        self.epoch += 1;
    }

    /// Closed points from period `from` on, as the dashboard reads them.
    pub fn to_json(&self, from: usize, defs: &[MetricDef]) -> Value {
        let series: Vec<Value> = self
            .series
            .iter()
            .map(|s| {
                let def = &defs[s.metric.0 as usize];
                let skip = from.saturating_sub(s.first);
                json!({
                    "metric": def.name,
                    "type": def.kind.name(),
                    "contains": def.contains.name(),
                    "tag": s.tag.as_ref().map(|(k, v)| json!([k, v])),
                    "first": s.first.max(from),
                    "values": s.points.to_json(skip),
                })
            })
            .collect();
        json!({
            "epoch": self.epoch,
            "period_ms": self.period.as_millis() as u64,
            "start_ms": self.start_unix_ms,
            "from": from,
            "closed": self.closed,
            "series": series,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ValueType;
    use std::sync::Arc;

    /// The aggregator's side: cumulative sinks by tag set, and what each id means.
    struct Cumulative {
        sinks: Vec<Vec<(MetricId, Sink)>>,
        defs: Vec<MetricDef>,
        tags: Vec<TagSet>,
    }

    impl Cumulative {
        fn new(defs: &[(&str, MetricType)], tags: &[&[(&str, &str)]]) -> Cumulative {
            Cumulative {
                sinks: vec![Vec::new(); tags.len()],
                defs: defs
                    .iter()
                    .map(|(n, k)| MetricDef {
                        name: n.to_string(),
                        kind: *k,
                        contains: ValueType::Default,
                        builtin: false,
                    })
                    .collect(),
                tags: tags
                    .iter()
                    .map(|t| {
                        Arc::new(
                            t.iter()
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .collect(),
                        )
                    })
                    .collect(),
            }
        }

        fn add(&mut self, metric: u32, tags: usize, v: f64) {
            let kind = self.defs[metric as usize].kind;
            let list = &mut self.sinks[tags];
            match list.iter_mut().find(|(m, _)| m.0 == metric) {
                Some((_, s)) => s.add(v),
                None => {
                    let mut s = Sink::new(kind);
                    s.add(v);
                    list.push((MetricId(metric), s));
                }
            }
        }

        fn close(&self, ts: &mut TimeSeries) {
            ts.close_period(&self.sinks, &|m, t| {
                (
                    self.defs[m.0 as usize].clone(),
                    self.tags[t.0 as usize].clone(),
                )
            });
        }
    }

    #[test]
    fn counts_per_period_and_splits_by_the_asked_tag() {
        let rules = SeriesRules {
            by_scenario: false,
            splits: vec![("entries".into(), "page".into())],
        };
        let mut ts = TimeSeries::new(rules, Duration::from_secs(10));
        let mut c = Cumulative::new(
            &[("entries", MetricType::Rate)],
            &[&[("page", "website")], &[("page", "tutorial")]],
        );
        c.add(0, 0, 1.0);
        c.add(0, 0, 0.0);
        c.add(0, 1, 1.0);
        c.close(&mut ts);
        c.add(0, 1, 1.0);
        c.close(&mut ts);
        let s = ts.series();
        assert_eq!(s.len(), 3, "total, website, tutorial");
        let rate = |i: usize| match &s[i].points {
            Points::Rate(v) => v.clone(),
            _ => panic!(),
        };
        assert_eq!(rate(0), vec![[2, 3], [1, 1]]);
        assert_eq!(s[1].tag, Some(("page".into(), "website".into())));
        assert_eq!(rate(1), vec![[1, 2], [0, 0]]);
        assert_eq!(rate(2), vec![[1, 1], [1, 1]]);
    }

    #[test]
    fn trend_percentiles_are_each_periods_own_and_late_series_start_where_they_appear() {
        let mut ts = TimeSeries::new(SeriesRules::default(), Duration::from_secs(10));
        let mut c = Cumulative::new(&[("lat", MetricType::Trend)], &[&[]]);
        c.close(&mut ts);
        for v in 1..=100 {
            c.add(0, 0, v as f64);
        }
        c.close(&mut ts);
        c.add(0, 0, 1000.0);
        c.close(&mut ts);
        c.close(&mut ts);
        let s = &ts.series()[0];
        assert_eq!(s.first, 1);
        let Points::Trend(v) = &s.points else {
            panic!()
        };
        assert_eq!(v[0].count, 100);
        assert!((v[0].p95 - 95.0).abs() < 0.1, "{}", v[0].p95);
        assert!((v[0].avg - 50.5).abs() < 1e-4);
        assert_eq!(v[1].count, 1);
        assert!(
            (v[1].p50 - 1000.0).abs() < 0.5 && (v[1].max - 1000.0).abs() < 0.5,
            "{:?}",
            v[1]
        );
        assert_eq!(v[2].count, 0);
        let doc = ts.to_json(2, &c.defs);
        assert_eq!(doc["series"][0]["first"], 2);
        assert_eq!(doc["series"][0]["values"]["count"], json!([1, 0]));
    }

    #[test]
    fn a_run_longer_than_the_cap_halves_its_resolution_keeping_counts_exact() {
        let mut ts = TimeSeries::new(SeriesRules::default(), Duration::from_secs(1));
        let mut c = Cumulative::new(&[("c", MetricType::Counter)], &[&[]]);
        c.close(&mut ts); // the series starts at an odd index
        for _ in 1..MAX_POINTS {
            c.add(0, 0, 2.0);
            c.close(&mut ts);
        }
        assert_eq!(ts.epoch, 1);
        assert_eq!(ts.closed(), MAX_POINTS / 2);
        assert_eq!(ts.period(), Duration::from_secs(2));
        let s = &ts.series()[0];
        let Points::Counter(v) = &s.points else {
            panic!()
        };
        assert_eq!(s.first, 0);
        assert_eq!(v.len(), MAX_POINTS / 2);
        assert_eq!(v.iter().sum::<f64>(), 2.0 * (MAX_POINTS - 1) as f64);
        assert_eq!((v[0], v[1]), (2.0, 4.0));
    }

    #[test]
    fn long_plans_start_with_a_longer_period() {
        let ts = TimeSeries::new(SeriesRules::default(), Duration::from_secs(3 * 3600));
        assert_eq!(ts.period(), Duration::from_secs(3));
        let ts = TimeSeries::new(SeriesRules::default(), Duration::from_secs(38 * 60));
        assert_eq!(ts.period(), Duration::from_secs(1));
    }
}
