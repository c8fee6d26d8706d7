//! Per-series accumulators, one variant per metric type, mergeable.

use super::MetricType;
use hdrhistogram::Histogram;

/// Trend values are stored in the histogram as integers of this many units per 1.0
/// (micro-units: µs for time trends in ms), 3 significant digits.
const TREND_SCALE: f64 = 1000.0;

#[derive(Debug, Clone)]
pub enum Sink {
    Counter {
        sum: f64,
    },
    Gauge {
        last: f64,
        min: f64,
        max: f64,
        seen: bool,
    },
    Rate {
        trues: u64,
        total: u64,
    },
    Trend(TrendSink),
}

#[derive(Debug, Clone)]
pub struct TrendSink {
    hist: Histogram<u64>,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl TrendSink {
    fn new() -> Self {
        TrendSink {
            hist: Histogram::new(3).expect("3 significant digits is a valid HDR precision"),
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        // Negative values cannot live in an HDR histogram; they count as 0 for percentiles
        // (min, max, avg stay exact).
        // Rounded by adding a half and truncating (exact for non-negative values but at
        // the last bit of ties): `f64::round` is a libm call on x86-64 without SSE4.1,
        // ~25 instructions of every trend sample.
        let scaled = (v.max(0.0) * TREND_SCALE + 0.5) as u64;
        // record() grows the auto-resizing histogram; only a value beyond u64 range saturates.
        if self.hist.record(scaled).is_err() {
            self.hist.saturating_record(scaled);
        }
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// The value at percentile `p` (0..=100), clamped to the exact min and max.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        // The middle of the HDR bucket: within 0.05% of the true value either way.
        let v = self
            .hist
            .median_equivalent(self.hist.value_at_percentile(p)) as f64
            / TREND_SCALE;
        v.clamp(self.min.max(0.0).min(self.max), self.max)
    }

    /// `out` = what was recorded between `prev` (an earlier state of this same sink, or of
    /// a merge of the same series) and now: one period's histogram, count and sum; min and
    /// max are the period histogram's bucket bounds (3 significant digits).
    pub fn since(&self, prev: &TrendSink, out: &mut TrendSink) {
        out.hist.reset();
        out.hist
            .add(&self.hist)
            .expect("auto-resizing histograms always merge");
        // A cumulative histogram only grows, so the earlier one always fits inside.
        let _ = out.hist.subtract(&prev.hist);
        out.count = self.count.saturating_sub(prev.count);
        out.sum = self.sum - prev.sum;
        if out.count == 0 {
            out.min = f64::INFINITY;
            out.max = f64::NEG_INFINITY;
        } else {
            out.min = out.hist.min() as f64 / TREND_SCALE;
            out.max = out.hist.max() as f64 / TREND_SCALE;
        }
    }

    /// The histogram in HdrHistogram's V2 compressed form (lossless), base64.
    pub fn encode_histogram(&self) -> String {
        use base64::Engine;
        use hdrhistogram::serialization::Serializer;
        let mut buf = Vec::new();
        hdrhistogram::serialization::V2DeflateSerializer::new()
            .serialize(&self.hist, &mut buf)
            .expect("serialising to memory");
        base64::engine::general_purpose::STANDARD.encode(buf)
    }

    /// A trend from its exact count, sum, min and max and an encoded histogram.
    pub fn decode(
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
        hist: &str,
    ) -> Result<TrendSink, String> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(hist)
            .map_err(|e| format!("histogram: {e}"))?;
        let mut h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram: {e:?}"))?;
        h.auto(true);
        if h.len() != count {
            return Err(format!(
                "histogram holds {} values, count says {count}",
                h.len()
            ));
        }
        Ok(TrendSink {
            hist: h,
            count,
            sum,
            min: if count == 0 { f64::INFINITY } else { min },
            max: if count == 0 { f64::NEG_INFINITY } else { max },
        })
    }

    fn merge(&mut self, other: &TrendSink) {
        self.hist
            .add(&other.hist)
            .expect("auto-resizing histograms always merge");
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

impl Sink {
    pub fn new(kind: MetricType) -> Sink {
        match kind {
            MetricType::Counter => Sink::Counter { sum: 0.0 },
            MetricType::Gauge => Sink::Gauge {
                last: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                seen: false,
            },
            MetricType::Rate => Sink::Rate { trues: 0, total: 0 },
            MetricType::Trend => Sink::Trend(TrendSink::new()),
        }
    }

    #[inline]
    pub fn add(&mut self, v: f64) {
        match self {
            Sink::Counter { sum } => *sum += v,
            Sink::Gauge {
                last,
                min,
                max,
                seen,
            } => {
                *last = v;
                *min = min.min(v);
                *max = max.max(v);
                *seen = true;
            }
            Sink::Rate { trues, total } => {
                *total += 1;
                if v != 0.0 {
                    *trues += 1;
                }
            }
            Sink::Trend(t) => t.add(v),
        }
    }

    /// Combines two series of the same metric (sub-metric views, several workers or machines).
    pub fn merge(&mut self, other: &Sink) {
        match (self, other) {
            (Sink::Counter { sum }, Sink::Counter { sum: o }) => *sum += o,
            (
                Sink::Gauge {
                    last,
                    min,
                    max,
                    seen,
                },
                Sink::Gauge {
                    last: ol,
                    min: omin,
                    max: omax,
                    seen: os,
                },
            ) => {
                if *os {
                    *last = *ol;
                    *min = min.min(*omin);
                    *max = max.max(*omax);
                    *seen = true;
                }
            }
            (Sink::Rate { trues, total }, Sink::Rate { trues: t, total: n }) => {
                *trues += t;
                *total += n;
            }
            (Sink::Trend(a), Sink::Trend(b)) => a.merge(b),
            _ => unreachable!("series of one metric share its type"),
        }
    }

    /// Empties the sink for the next period, keeping a trend's histogram allocation.
    pub fn reset(&mut self) {
        match self {
            Sink::Trend(t) => {
                t.hist.reset();
                t.count = 0;
                t.sum = 0.0;
                t.min = f64::INFINITY;
                t.max = f64::NEG_INFINITY;
            }
            Sink::Counter { .. } => *self = Sink::new(MetricType::Counter),
            Sink::Gauge { .. } => *self = Sink::new(MetricType::Gauge),
            Sink::Rate { .. } => *self = Sink::new(MetricType::Rate),
        }
    }

    /// Whether any sample arrived (thresholds on empty sinks are skipped, as in k6).
    pub fn is_empty(&self) -> bool {
        match self {
            Sink::Counter { .. } => false,
            Sink::Gauge { seen, .. } => !seen,
            Sink::Rate { total, .. } => *total == 0,
            Sink::Trend(t) => t.count == 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trend_percentiles_of_known_values() {
        let mut s = Sink::new(MetricType::Trend);
        for v in 1..=100 {
            s.add(v as f64);
        }
        let Sink::Trend(t) = &s else { panic!() };
        assert_eq!(t.count, 100);
        assert_eq!(t.avg(), 50.5);
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.001;
        assert!(close(t.percentile(50.0), 50.0), "{}", t.percentile(50.0));
        assert!(close(t.percentile(95.0), 95.0), "{}", t.percentile(95.0));
        assert_eq!(t.percentile(100.0), 100.0);
        assert_eq!(t.min, 1.0);
    }

    #[test]
    fn merge_adds_rates_and_trends() {
        let mut a = Sink::new(MetricType::Rate);
        let mut b = Sink::new(MetricType::Rate);
        a.add(1.0);
        b.add(0.0);
        b.add(2.0);
        a.merge(&b);
        assert!(matches!(a, Sink::Rate { trues: 2, total: 3 }));
    }
}
