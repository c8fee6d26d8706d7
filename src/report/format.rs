//! Number formats as k6 prints them (Go's durations, go-humanize's bytes).

use crate::metrics::{MetricDef, Sink, ValueType};

/// A trend statistic name -> its value (`avg`, `min`, `med`, `max`, `count`, `sum`, `p(N)`).
pub fn trend_stat(sink: &Sink, stat: &str) -> Option<f64> {
    let Sink::Trend(t) = sink else { return None };
    let empty = t.count == 0;
    Some(match stat {
        "avg" => t.avg(),
        "min" if !empty => t.min,
        "max" if !empty => t.max,
        "min" | "max" => 0.0,
        "med" => t.percentile(50.0),
        "count" => t.count as f64,
        "sum" => t.sum,
        p if p.starts_with("p(") && p.ends_with(')') => {
            t.percentile(p[2..p.len() - 1].parse().ok()?)
        }
        _ => return None,
    })
}

/// A time value in ms as k6 shows it: 512.45µs, 140.36ms, 1.23s, 1m2.5s.
pub fn duration_ms(ms: f64) -> String {
    if ms == 0.0 {
        return "0s".into();
    }
    if ms < 1.0 {
        return format!("{}µs", trim(ms * 1000.0, 2));
    }
    if ms < 1000.0 {
        return format!("{}ms", trim(ms, 2));
    }
    let secs = ms / 1000.0;
    if secs < 60.0 {
        return format!("{}s", trim(secs, 2));
    }
    let m = (secs / 60.0).floor();
    format!("{}m{}s", m as u64, trim(secs - m * 60.0, 1))
}

/// go-humanize's SI bytes: "718 B", "4.9 kB", "519 kB".
pub fn bytes(v: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = v;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{} B", v.round() as u64)
    } else if v < 10.0 {
        format!("{v:.1} {}", units[i])
    } else {
        format!("{v:.0} {}", units[i])
    }
}

/// A plain number: integers as such, others with up to 6 decimals.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        trim(v, 6)
    }
}

/// A metric value in its own unit.
pub fn value(def: &MetricDef, v: f64) -> String {
    match def.contains {
        ValueType::Time => duration_ms(v),
        ValueType::Data => bytes(v),
        ValueType::Default => number(v),
    }
}

fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_k6() {
        assert_eq!(duration_ms(140.364), "140.36ms");
        assert_eq!(duration_ms(0.51245), "512.45µs");
        assert_eq!(duration_ms(1234.0), "1.23s");
        assert_eq!(bytes(718.0), "718 B");
        assert_eq!(bytes(4900.0), "4.9 kB");
        assert_eq!(bytes(519_000.0), "519 kB");
        assert_eq!(number(45.0), "45");
        assert_eq!(number(13.1221791), "13.122179");
    }
}
