//! The load generator's SigV4 signer for its one request shape (POST / with a JSON body and the
//! headers host, content-type, x-amz-date, x-amz-target), with the derived signing key cached per
//! day. aws-sigv4 rebuilds everything (and re-derives the key) per request, about 40 µs of the
//! generator's CPU — on a machine the server shares, that is CPU taken from the server being
//! measured. At start-up (and in a unit test) every signature shape is cross-checked against
//! aws-sigv4, so the requests are exactly what the AWS SDK would send; `--signer aws-sigv4` uses
//! aws-sigv4 for every request instead.

use std::time::SystemTime;

use aws_lc_rs::{digest, hmac};

/// Formats `t` as SigV4's `x-amz-date` (`YYYYMMDDTHHMMSSZ`).
pub fn amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil conversion.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// SHA-256 of `bytes`, lower-case hex (SigV4's payload hash).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

pub struct FastSigner {
    access_key: String,
    secret_key: String,
    region: String,
    service: &'static str,
    /// (yyyymmdd, signing key).
    cached: std::sync::Mutex<Option<(String, hmac::Key)>>,
}

impl FastSigner {
    pub fn new(access_key: &str, secret_key: &str, region: &str) -> FastSigner {
        FastSigner {
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: region.to_owned(),
            service: "kms",
            cached: std::sync::Mutex::new(None),
        }
    }

    fn signing_key(&self, date: &str) -> hmac::Key {
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((d, key)) = cached.as_ref()
            && d == date
        {
            return key.clone();
        }
        let mac = |key: &[u8], data: &str| {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        };
        let k_date = mac(format!("AWS4{}", self.secret_key).as_bytes(), date);
        let k_region = mac(k_date.as_ref(), &self.region);
        let k_service = mac(k_region.as_ref(), self.service);
        let k_signing = mac(k_service.as_ref(), "aws4_request");
        let key = hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref());
        *cached = Some((date.to_owned(), key.clone()));
        key
    }

    /// The headers to send (host, content-type, x-amz-target, x-amz-date, authorization) for
    /// `POST /` with `body` at `amz_date`.
    pub fn sign(
        &self,
        authority: &str,
        target: &str,
        body: &[u8],
        amz_date: &str,
    ) -> Vec<(&'static str, String)> {
        self.sign_prehashed(authority, target, &sha256_hex(body), amz_date)
    }

    /// [`FastSigner::sign`] for a body whose SHA-256 (lower-case hex) is already known.
    pub fn sign_prehashed(
        &self,
        authority: &str,
        target: &str,
        payload_hash: &str,
        amz_date: &str,
    ) -> Vec<(&'static str, String)> {
        let date = amz_date.get(..8).unwrap_or(amz_date).to_owned();
        let target_header = format!("TrentService.{target}");
        let canonical = format!(
            "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:{authority}\nx-amz-date:{amz_date}\nx-amz-target:{target_header}\n\ncontent-type;host;x-amz-date;x-amz-target\n{payload_hash}"
        );
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
        );
        let signature =
            hex(hmac::sign(&self.signing_key(&date), string_to_sign.as_bytes()).as_ref());
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}",
            self.access_key
        );
        vec![
            ("host", authority.to_owned()),
            ("content-type", "application/x-amz-json-1.1".to_owned()),
            ("x-amz-target", target_header),
            ("x-amz-date", amz_date.to_owned()),
            ("authorization", authorization),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(t), "20150830T123600Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_399);
        assert_eq!(amz_date(leap), "20000228T235959Z");
        let leap_day = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(amz_date(leap_day), "20000229T000000Z");
    }
}
