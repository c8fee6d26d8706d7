//! k6 duration strings ("1h2m3.5s", "300ms", "10s", bare numbers as milliseconds) <-> Duration.

use std::time::Duration;

/// Parses a k6 duration: a sequence of `<number><unit>` with units h, m, s, ms, us/µs, ns;
/// a bare number means milliseconds (as k6 accepts in JSON options).
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("invalid duration {text:?}: empty"));
    }
    if let Ok(ms) = s.parse::<f64>() {
        return from_secs(ms / 1000.0, text);
    }
    // Summed in whole nanoseconds, as Go does: "35.538s" is exactly 35,538 ms, which a
    // float sum is not.
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| {
                format!("invalid duration {text:?}: missing unit (use e.g. 30s, 5m, 1h30m)")
            })?;
        if num_len == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number (use e.g. 30s, 5m, 1h30m)"
            ));
        }
        let number = &rest[..num_len];
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns: u128 = match &rest[..unit_len] {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            unit => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {unit:?} (use h, m, s, ms)"
                ))
            }
        };
        let ns = decimal_nanos(number, unit_ns)
            .ok_or_else(|| format!("invalid duration {text:?}: bad number {number:?}"))?;
        total = total
            .checked_add(ns)
            .ok_or_else(|| format!("invalid duration {text:?}: too long"))?;
        rest = &rest[unit_len..];
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| format!("invalid duration {text:?}: too long"))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// `number` (digits with at most one '.') times `unit_ns`, truncated to whole nanoseconds.
fn decimal_nanos(number: &str, unit_ns: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return None;
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut ns = int.checked_mul(unit_ns)?;
    // Digits past the 20th cannot reach a nanosecond of even an hour.
    let frac = &frac[..frac.len().min(20)];
    if !frac.is_empty() {
        let f: u128 = frac.parse().ok()?;
        ns = ns.checked_add(f * unit_ns / 10u128.pow(frac.len() as u32))?;
    }
    Some(ns)
}

fn from_secs(secs: f64, text: &str) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {text:?}: must not be negative"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {text:?}: too long"))
}

/// Formats like Go's time.Duration (what k6 prints): "1m30s", "10m0s", "500ms", "0s".
pub fn format(d: Duration) -> String {
    let total_ms = d.as_millis();
    if total_ms == 0 {
        return "0s".into();
    }
    if total_ms < 1000 {
        return format!("{total_ms}ms");
    }
    let secs = d.as_secs_f64();
    let h = (secs / 3600.0).floor() as u64;
    let m = ((secs - h as f64 * 3600.0) / 60.0).floor() as u64;
    let s = secs - h as f64 * 3600.0 - m as f64 * 60.0;
    let s_text = if (s - s.round()).abs() < 1e-9 {
        format!("{}", s.round() as u64)
    } else {
        format!("{:.3}", s).trim_end_matches('0').to_string()
    };
    match (h, m) {
        (0, 0) => format!("{s_text}s"),
        (0, m) => format!("{m}m{s_text}s"),
        (h, m) => format!("{h}h{m}m{s_text}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k6_durations() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("1h2m3s").unwrap(), Duration::from_secs(3723));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse("250").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn rejects_bad_durations() {
        assert!(parse("").is_err());
        assert!(parse("10").is_ok());
        assert!(parse("10x").unwrap_err().contains("unknown unit"));
        assert!(parse("-5s").is_err());
        assert!(parse("s").is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::from_secs(600)), "10m0s");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(500)), "500ms");
        assert_eq!(format(Duration::from_secs(3723)), "1h2m3s");
    }
}
