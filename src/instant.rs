//! The instants the engine writes in its inspect answers, read back as
//! `SystemTime` (the engine's event API wants them as Unix times).

use std::time::{Duration, SystemTime};

/// An instant as the engine writes it (`State.StartedAt`, `State.FinishedAt`,
/// `Created`): RFC 3339 with up to nine digits of fraction, in UTC (`Z`) or
/// with an offset (`+02:00`, as Podman may write). `None` for the engine's
/// "never" (`0001-01-01T00:00:00Z`, a run that has not happened) and for text
/// that is not such an instant.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let at = dockhand::engine_time("1970-01-01T00:01:00.5Z").unwrap();
/// assert_eq!(at, UNIX_EPOCH + Duration::from_millis(60_500));
/// assert_eq!(dockhand::engine_time("0001-01-01T00:00:00Z"), None);
/// ```
pub fn engine_time(text: &str) -> Option<SystemTime> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, offset) = split_offset(time)?;
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.is_empty() {
        return None;
    }
    let nanos: u64 = format!("{:0<9}", &frac[..frac.len().min(9)]).parse().ok()?;
    let secs = days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60 + s - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// The clock part and the offset from UTC in seconds.
fn split_offset(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let at = time.rfind(['+', '-'])?;
    let (clock, offset) = time.split_at(at);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let (h, m) = offset[1..].split_once(':')?;
    Some((
        clock,
        sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
    ))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, day: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn secs(text: &str) -> Option<f64> {
        engine_time(text).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64())
    }

    #[test]
    fn the_engines_forms_read_back() {
        assert_eq!(secs("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        assert_eq!(secs("2000-02-29T23:59:59Z"), Some(951_868_799.0));
        let nanos = engine_time("2026-12-02T20:16:50.123456789Z").unwrap();
        assert_eq!(
            nanos.duration_since(UNIX_EPOCH).unwrap().subsec_nanos(),
            123_456_789
        );
        assert_eq!(
            engine_time("2026-12-02T22:16:50.5+02:00"),
            engine_time("2026-12-02T20:16:50.5Z")
        );
        assert_eq!(
            engine_time("2026-12-02T18:16:50-02:00"),
            engine_time("2026-12-02T20:16:50Z")
        );
    }

    #[test]
    fn never_and_garbage_are_none() {
        assert_eq!(engine_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(engine_time("garbage"), None);
        assert_eq!(engine_time("2026-12-02T20:16:50"), None);
        assert_eq!(engine_time("2026-12-02T20:16:50.Z"), None);
    }
}
