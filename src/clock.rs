//! Time: the injectable clock and the two date formats the crate writes (SOA serial dates and
//! RFC 3339 journal stamps). The bottom layer: it imports nothing from the crate.

/// Seconds since 1970, injectable so tests can skew the clock.
pub type Clock = std::sync::Arc<dyn Fn() -> u64 + Send + Sync>;

/// The machine's clock (0 if it reads before 1970).
pub fn system_clock() -> Clock {
    std::sync::Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

/// The UTC date as YYYYMMDD from seconds since 1970, for SOA serials. The civil-date
/// conversion is Howard Hinnant's `civil_from_days`; a date crate for ten lines was not worth it.
pub fn yyyymmdd(unix_seconds: u64) -> u32 {
    let days = (unix_seconds / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year * 10_000 + month * 100 + day) as u32
}

/// `YYYY-MM-DDTHH:MM:SSZ` from seconds since 1970.
pub fn rfc3339(unix_seconds: u64) -> String {
    let date = yyyymmdd(unix_seconds);
    let of_day = unix_seconds % 86_400;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        date / 10_000,
        date / 100 % 100,
        date % 100,
        of_day / 3_600,
        of_day / 60 % 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(yyyymmdd(0), 19700101);
        assert_eq!(yyyymmdd(951_782_400), 20000229);
        assert_eq!(yyyymmdd(1_796_000_000), 20261130);
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_000_000), "2026-11-30T00:53:20Z");
    }
}
