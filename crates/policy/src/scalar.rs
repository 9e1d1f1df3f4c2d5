//! Typed condition values: numbers, dates, IP ranges.

use std::net::IpAddr;

use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// A finite decimal number (`Numeric*` operators).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

/// A point in time as Unix nanoseconds (`Date*` operators).
///
/// Accepted: epoch seconds (`1700000000`, optionally with a fraction),
/// RFC 3339 / ISO 8601 date-times with an offset (`2024-01-31T12:00:00Z`,
/// `2024-01-31T12:00:00+02:00`), ISO 8601 date-times without an offset
/// (taken as UTC) and bare dates (`2024-01-31`, midnight UTC).
pub(crate) fn parse_date(s: &str) -> Option<i128> {
    let s = s.trim();
    if let Some(nanos) = parse_epoch(s) {
        return Some(nanos);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = PrimitiveDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.assume_utc().unix_timestamp_nanos());
    }
    if let Ok(d) = Date::parse(s, &Iso8601::DEFAULT) {
        return Some(d.midnight().assume_utc().unix_timestamp_nanos());
    }
    None
}

fn parse_epoch(s: &str) -> Option<i128> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    if digits.is_empty()
        || digits.len() > 15
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 9
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let seconds: i128 = whole.parse().ok()?;
    let mut nanos: i128 = 0;
    for (i, b) in fraction.bytes().enumerate() {
        let digit = i128::from(b - b'0');
        nanos += digit * 10i128.pow(8 - u32::try_from(i).ok()?);
    }
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    Some(seconds * 1_000_000_000 + sign * nanos)
}

/// An IPv4 or IPv6 network (`IpAddress`, `NotIpAddress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `203.0.113.0/24`, `2001:db8::/32`, or a single address. Host bits
    /// may be set; they are ignored.
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether every address of `other` lies in `self`. An IPv4-mapped
    /// IPv6 request address (`::ffff:192.0.2.1`) counts as IPv4.
    pub(crate) fn contains(&self, other: &Cidr) -> bool {
        let other = other.unmapped();
        if other.prefix < self.prefix {
            return false;
        }
        match (self.addr, other.addr) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }

    fn unmapped(&self) -> Cidr {
        match self.addr {
            IpAddr::V6(v6) if self.prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Cidr {
                    addr: IpAddr::V4(v4),
                    prefix: self.prefix - 96,
                },
                None => *self,
            },
            IpAddr::V4(_) | IpAddr::V6(_) => *self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("10"), Some(10.0));
        assert_eq!(parse_number(" -2.5 "), Some(-2.5));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        for bad in ["", "ten", "inf", "NaN", "0x10", "1,5"] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates() {
        let jan1 = 1_704_067_200i128 * 1_000_000_000; // 2024-01-01T00:00:00Z
        assert_eq!(parse_date("2024-01-01T00:00:00Z"), Some(jan1));
        assert_eq!(parse_date("2024-01-01T02:00:00+02:00"), Some(jan1));
        assert_eq!(parse_date("2024-01-01T00:00:00"), Some(jan1));
        assert_eq!(parse_date("2024-01-01"), Some(jan1));
        assert_eq!(parse_date("1704067200"), Some(jan1));
        assert_eq!(parse_date("1704067200.5"), Some(jan1 + 500_000_000));
        assert_eq!(
            parse_date("2024-01-01T00:00:00.250Z"),
            Some(jan1 + 250_000_000)
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-01-01T25:00:00Z",
            "1.2.3",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn cidrs() {
        let net = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(net.contains(&Cidr::parse("203.0.113.77").unwrap()));
        assert!(!net.contains(&Cidr::parse("203.0.114.1").unwrap()));
        assert!(net.contains(&Cidr::parse("::ffff:203.0.113.9").unwrap()));
        assert!(!net.contains(&Cidr::parse("203.0.0.0/16").unwrap()));
        let v6 = Cidr::parse("2001:DB8:1234:5678::/64").unwrap();
        assert!(v6.contains(&Cidr::parse("2001:db8:1234:5678::1").unwrap()));
        assert!(!v6.contains(&Cidr::parse("2001:db8:1234:5679::1").unwrap()));
        assert!(!v6.contains(&Cidr::parse("203.0.113.77").unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains(&Cidr::parse("8.8.8.8").unwrap())
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/x",
            "host",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }
}
