//! Option values as users write them: counts ("10", 10) and durations ("30s", 1000 ms).

use super::duration;
use serde_json::Value;
use std::time::Duration;

/// Parses a VU or iteration count given as text: a non-negative integer.
pub fn parse_count_text(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("{t:?} must not be negative"));
    }
    t.parse::<u64>()
        .map_err(|_| format!("{t:?} is not a whole number"))
}

pub fn count_value(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(c) => Ok(c),
            None if n.as_f64().is_some_and(|f| f < 0.0) => Err(format!("{n} must not be negative")),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 => Ok(f as u64),
                _ => Err(format!("{n} is not a whole number")),
            },
        },
        Value::String(s) => parse_count_text(s),
        other => Err(format!("expected a number, got {other}")),
    }
}

pub fn duration_value(v: &Value) -> Result<Duration, String> {
    match v {
        Value::String(s) => duration::parse(s),
        Value::Number(n) => duration::parse(&n.to_string()),
        other => Err(format!(
            "expected a duration string like \"30s\", got {other}"
        )),
    }
}

/// Parses a memory size: bytes, or a number with K, M or G (KB/MB/GB, KiB/MiB/GiB: all
/// powers of 1024), e.g. `512MB`, `1.5G`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 512MB or 2GB"))?;
    let factor: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        other => return Err(format!("{text:?}: unknown unit {other:?} (use K, M or G)")),
    };
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is not a usable size"));
    }
    Ok(bytes as u64)
}
