//! Go's duration syntax (`1h2m3.5s`, `300ms`, `2.5us`), which Dockerfiles (HEALTHCHECK),
//! compose files and the docker CLI's flags all use: one reading for the whole of berth.

/// A Go duration in nanoseconds; every number needs its unit (`ns`, `us`/`µs`, `ms`, `s`,
/// `m`, `h`). `None` for anything else, the empty string and a bare number included (callers
/// decide what those mean to them).
pub fn go_duration_ns(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_add_up_and_bare_numbers_are_refused() {
        assert_eq!(go_duration_ns("1h30m"), Some(5400e9));
        assert_eq!(go_duration_ns("1m30.5s"), Some(90.5e9));
        assert_eq!(go_duration_ns("300ms"), Some(300e6));
        assert_eq!(go_duration_ns("2us"), Some(2e3));
        for bad in ["", "0", "10", "s", "1x", "abc", "1s2"] {
            assert_eq!(go_duration_ns(bad), None, "{bad}");
        }
    }
}
