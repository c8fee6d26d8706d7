//! Calendar dates without a date library: the UTC day of a timestamp and RFC 3339 times.

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The UTC day (YYYY-MM-DD) of a time in ms since the epoch.
pub fn day_of_ms(ms: u64) -> String {
    let (y, m, d) = civil_from_days((ms / 86_400_000) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 with microseconds, UTC: 2026-11-23T10:00:00.123456Z.
pub fn rfc3339_us(us: u64) -> String {
    let secs = us / 1_000_000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        us % 1_000_000
    )
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 3339 time (`2026-12-04T10:00:00Z`, `2026-12-04T11:00:00.250+01:00`) in ms since
/// the epoch.
pub fn parse_rfc3339_ms(text: &str) -> Result<u64, String> {
    let bad = || "expected an RFC 3339 time such as 2026-12-04T10:00:00Z".to_string();
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let s = text.get(r).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    let mut rest = &text[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let f = &frac[..digits.min(3)];
        ms = f.parse::<i64>().map_err(|_| bad())? * 10i64.pow(3 - f.len() as u32);
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':' =>
        {
            let oh: i64 = rest[1..3].parse().map_err(|_| bad())?;
            let om: i64 = rest[4..6].parse().map_err(|_| bad())?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60;
    if secs < 0 {
        return Err("times before 1970 are not supported".into());
    }
    Ok((secs * 1000 + ms) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_back_what_it_prints() {
        let us = 1_796_380_800_123_000; // 2026-12-04T...
        let text = rfc3339_us(us);
        assert_eq!(parse_rfc3339_ms(&text).unwrap(), us / 1000);
        assert_eq!(
            parse_rfc3339_ms("2026-12-04T11:00:00+01:00").unwrap(),
            parse_rfc3339_ms("2026-12-04T10:00:00Z").unwrap()
        );
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01.5Z").unwrap(), 1500);
        for bad in [
            "2026-12-04",
            "2026-13-04T10:00:00Z",
            "2026-12-04T10:00:00",
            "x",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_dates() {
        assert_eq!(day_of_ms(0), "1970-01-01");
        assert_eq!(day_of_ms(951_782_400_000), "2000-02-29");
        assert_eq!(
            rfc3339_us(1_795_000_000_123_456),
            "2026-11-18T11:06:40.123456Z"
        );
    }
}
