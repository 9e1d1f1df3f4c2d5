//! The request's signing time and the clock-skew window.
//!
//! Dates are converted by hand (proleptic Gregorian, UTC only) rather than
//! with a date crate: the two formats involved are fixed-width, and keeping
//! the dependency set unchanged keeps this crate small.

use crate::error::Error;

/// When the request was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTime {
    /// Always `YYYYMMDD'T'HHMMSS'Z'`, whichever header it came from; this is
    /// the form that goes into the string to sign.
    pub amz_date: String,
    /// The same instant as seconds since the Unix epoch.
    pub unix_seconds: i64,
}

impl RequestTime {
    /// The `YYYYMMDD` part, which the credential scope date must equal.
    pub fn date(&self) -> &str {
        self.amz_date.get(..8).unwrap_or(&self.amz_date)
    }
}

/// Finds the signing time: the `X-Amz-Date` header (`YYYYMMDD'T'HHMMSS'Z'`),
/// else the `Date` header (RFC 7231 IMF-fixdate, `Sun, 06 Nov 1994 08:49:37
/// GMT`; the ISO basic format is accepted there too). An empty header counts
/// as absent; when a header repeats, its first value is used.
///
/// Errors (all [`Error::Incomplete`]):
///
/// - neither header: `Authorization header requires existence of either a
///   'X-Amz-Date' or a 'Date' header. Authorization=<value of the
///   Authorization header>` (text from dynalite and API Gateway responses
///   quoted in GitHub issues, e.g. aws/chalice issue 828);
/// - unparseable value: `Date must be in ISO-8601 'basic format'. Got
///   '<value>'. See http://en.wikipedia.org/wiki/ISO_8601` (text from
///   dynalite, recorded for `X-Amz-Date`; used for a bad `Date` too, which is
///   unverified).
pub fn request_time(headers: &[(&str, &str)]) -> Result<RequestTime, Error> {
    if let Some(value) = first_non_empty(headers, "x-amz-date") {
        return parse_basic_iso(value.trim()).ok_or_else(|| bad_date(value));
    }
    if let Some(value) = first_non_empty(headers, "date") {
        let trimmed = value.trim();
        return parse_imf_fixdate(trimmed)
            .or_else(|| parse_basic_iso(trimmed))
            .ok_or_else(|| bad_date(value));
    }
    let authorization = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map_or("", |(_, value)| *value);
    Err(Error::Incomplete(format!(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={authorization}"
    )))
}

/// Rejects a request signed more than `max_skew_seconds` before or after
/// `now_unix_seconds` (AWS allows 300 s for KMS, 900 s for S3). A difference
/// of exactly `max_skew_seconds` is still accepted. A negative skew is
/// treated as zero.
///
/// The errors carry AWS's texts, see [`Error::SignatureExpired`] and
/// [`Error::SignatureNotYetCurrent`]; the minutes are
/// `max_skew_seconds / 60`, rounded down.
pub fn check_clock_skew(
    t: &RequestTime,
    now_unix_seconds: i64,
    max_skew_seconds: i64,
) -> Result<(), Error> {
    let skew = max_skew_seconds.max(0);
    let earliest = now_unix_seconds.saturating_sub(skew);
    let latest = now_unix_seconds.saturating_add(skew);
    if t.unix_seconds < earliest {
        return Err(Error::SignatureExpired {
            request: t.amz_date.clone(),
            limit: format_basic_iso(earliest),
            now: format_basic_iso(now_unix_seconds),
            skew_minutes: skew / 60,
        });
    }
    if t.unix_seconds > latest {
        return Err(Error::SignatureNotYetCurrent {
            request: t.amz_date.clone(),
            limit: format_basic_iso(latest),
            now: format_basic_iso(now_unix_seconds),
            skew_minutes: skew / 60,
        });
    }
    Ok(())
}

fn bad_date(value: &str) -> Error {
    Error::Incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

fn first_non_empty<'a>(headers: &[(&str, &'a str)], wanted: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(name, value)| name.eq_ignore_ascii_case(wanted) && !value.trim().is_empty())
        .map(|(_, value)| *value)
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'`, nothing else (no separators, no offset,
/// no fractions).
fn parse_basic_iso(value: &str) -> Option<RequestTime> {
    let &[
        y0,
        y1,
        y2,
        y3,
        mo0,
        mo1,
        d0,
        d1,
        b'T',
        h0,
        h1,
        mi0,
        mi1,
        s0,
        s1,
        b'Z',
    ] = value.as_bytes()
    else {
        return None;
    };
    let year = digits(&[y0, y1, y2, y3])?;
    let month = digits(&[mo0, mo1])?;
    let day = digits(&[d0, d1])?;
    let hour = digits(&[h0, h1])?;
    let minute = digits(&[mi0, mi1])?;
    let second = digits(&[s0, s1])?;
    from_parts(year, month, day, hour, minute, second)
}

/// Parses the RFC 7231 IMF-fixdate form, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
/// The day name must be a valid one but is not checked against the date,
/// following RFC 7231's advice to be lenient about it. The obsolete RFC 850
/// and asctime forms are not accepted.
fn parse_imf_fixdate(value: &str) -> Option<RequestTime> {
    let &[
        w0,
        w1,
        w2,
        b',',
        b' ',
        d0,
        d1,
        b' ',
        m0,
        m1,
        m2,
        b' ',
        y0,
        y1,
        y2,
        y3,
        b' ',
        h0,
        h1,
        b':',
        mi0,
        mi1,
        b':',
        s0,
        s1,
        b' ',
        b'G',
        b'M',
        b'T',
    ] = value.as_bytes()
    else {
        return None;
    };
    const DAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    if !DAYS.contains(&&[w0, w1, w2]) {
        return None;
    }
    let month_index = MONTHS.iter().position(|name| **name == [m0, m1, m2])?;
    let month = i64::try_from(month_index).ok()? + 1;
    let year = digits(&[y0, y1, y2, y3])?;
    let day = digits(&[d0, d1])?;
    let hour = digits(&[h0, h1])?;
    let minute = digits(&[mi0, mi1])?;
    let second = digits(&[s0, s1])?;
    from_parts(year, month, day, hour, minute, second)
}

fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0i64, |acc, &byte| {
        byte.is_ascii_digit()
            .then(|| acc * 10 + i64::from(byte - b'0'))
    })
}

fn from_parts(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
) -> Option<RequestTime> {
    // Leap seconds (`:60`) are rejected: SigV4 signers never produce them.
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..60).contains(&second);
    if !valid {
        return None;
    }
    let unix_seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(RequestTime {
        amz_date: format_basic_iso(unix_seconds),
        unix_seconds,
    })
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`). `month` is 1..=12.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month, day)`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats Unix seconds as `YYYYMMDD'T'HHMMSS'Z'` (digits pushed directly for years 0–9999:
/// this runs for every request).
fn format_basic_iso(unix_seconds: i64) -> String {
    let (year, month, day) = civil_from_days(unix_seconds.div_euclid(86_400));
    let second_of_day = unix_seconds.rem_euclid(86_400);
    let (h, m, s) = (
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60,
    );
    if !(0..=9999).contains(&year) {
        return format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}Z");
    }
    let mut out = String::with_capacity(16);
    let digit = |n: i64| char::from(b'0' + n.rem_euclid(10).unsigned_abs() as u8);
    for n in [year / 1000, year / 100, year / 10, year] {
        out.push(digit(n));
    }
    for (i, n) in [month, day, h, m, s].into_iter().enumerate() {
        if i == 2 {
            out.push('T');
        }
        out.push(digit(n / 10));
        out.push(digit(n));
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(format_basic_iso(0), "19700101T000000Z");
        assert_eq!(format_basic_iso(1_440_938_160), "20150830T123600Z");
        assert_eq!(format_basic_iso(-1), "19691231T235959Z");
        assert_eq!(format_basic_iso(951_782_400), "20000229T000000Z");
    }

    #[test]
    fn calendar_validation() {
        assert!(parse_basic_iso("20000229T000000Z").is_some());
        assert!(parse_basic_iso("19000229T000000Z").is_none());
        assert!(parse_basic_iso("20240431T000000Z").is_none());
        assert!(parse_basic_iso("20241301T000000Z").is_none());
        assert!(parse_basic_iso("20240101T240000Z").is_none());
        assert!(parse_basic_iso("20240101T235960Z").is_none());
        assert!(parse_basic_iso("20240100T000000Z").is_none());
    }

    proptest! {
        #[test]
        fn civil_round_trip(days in -1_000_000i64..1_000_000) {
            let (year, month, day) = civil_from_days(days);
            prop_assert!((1..=12).contains(&month));
            prop_assert!((1..=days_in_month(year, month)).contains(&day));
            prop_assert_eq!(days_from_civil(year, month, day), days);
        }

        #[test]
        fn format_then_parse_round_trips(seconds in 0i64..253_402_300_800) {
            let formatted = format_basic_iso(seconds);
            let parsed = parse_basic_iso(&formatted);
            prop_assert_eq!(parsed.map(|t| t.unix_seconds), Some(seconds));
        }
    }
}
