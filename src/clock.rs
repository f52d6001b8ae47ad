//! Wall-clock time as the application writes it: RFC 3339 UTC with milliseconds
//! (`2026-11-26T05:51:21.788Z`, what SQLite's strftime writes too), and durations in
//! human units (`500ms`, `5s`, `15m`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Now, as milliseconds since the Unix epoch.
pub fn now_unix_ms() -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC (times before 1970 read as 1970).
pub fn rfc3339(unix_ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// Reads an RFC 3339 UTC time back as Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let at = humantime::parse_rfc3339(text).ok()?;
    let ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

/// Parses `250ms`, `5s`, `15m`, `2h`, `1h 30m` (a bare number means seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("`{text}` is too long"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like 500ms, 5s, 15m or 1h ({e})"))
}

/// Renders a duration in the form `parse_duration` reads back (`1s 500ms`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_798_675_200_000), "2026-12-31T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_281_788), "2026-11-18T11:11:21.788Z");
        assert_eq!(
            parse_rfc3339("2026-11-18T11:11:21.788Z"),
            Some(1_795_000_281_788)
        );
        assert_eq!(
            parse_rfc3339(&rfc3339(951_782_400_000)),
            Some(951_782_400_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        let now = now_rfc3339();
        assert_eq!(now.len(), 24, "{now}");
        assert!(parse_rfc3339(&now).is_some());
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "5x", "-5s", "99999999999999999999h", "soon"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for d in [
            Duration::from_millis(1500),
            Duration::from_secs(3),
            Duration::from_secs(900),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
    }
}
