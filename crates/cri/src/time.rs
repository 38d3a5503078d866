//! The engine's RFC 3339 times as the CRI's Unix nanoseconds.

/// Nanoseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; 0 for the
/// engine's "never" (year 1) or anything unreadable.
pub fn nanos(rfc3339: &str) -> i64 {
    parse(rfc3339).unwrap_or(0).max(0)
}

fn parse(s: &str) -> Option<i64> {
    let num = |a: usize, b: usize| -> Option<i64> { s.get(a..b)?.parse().ok() };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if year < 1970 {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut frac = 0i64;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        let mut value: i64 = f.get(..digits.min(9))?.parse().ok()?;
        for _ in digits.min(9)..9 {
            value *= 10;
        }
        frac = value;
        rest = &f[digits..];
    }
    let offset = match rest {
        "Z" | "z" | "" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o.get(1..3)?.parse::<i64>().ok()? * 3600
                + o.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs * 1_000_000_000 + frac)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Now, in Unix nanoseconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_engines_times() {
        assert_eq!(nanos("1970-01-01T00:00:01Z"), 1_000_000_000);
        assert_eq!(nanos("2024-02-29T12:00:00.5Z"), 1_709_208_000_500_000_000);
        assert_eq!(
            nanos("2024-02-29T13:00:00.5+01:00"),
            1_709_208_000_500_000_000
        );
        assert_eq!(nanos("0001-01-01T00:00:00Z"), 0);
        assert_eq!(nanos("garbage"), 0);
    }
}
