//! Request rate limits: token buckets per principal and per key (`--throttle-principal-rps`,
//! `--throttle-key-rps` and their bursts). Off unless configured.
//!
//! A bucket holds up to `burst` tokens and gains `per_second` tokens a second; a request takes one
//! token or is answered `ThrottlingException` (which the AWS SDKs retry with back-off).
//!
//! Memory is bounded: at most `max_buckets` buckets per kind. When that many exist, buckets that
//! have refilled completely are dropped first — a full bucket is exactly what a new one would be,
//! so dropping it changes no decision. Only if every bucket is still refilling (more than
//! `max_buckets` distinct names active within one burst period) are all of them reset.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// One rate: `per_second` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl RateLimit {
    /// A limit from the command line: a positive rate, and a burst of at least one request
    /// (default: one second's worth, at least 1).
    pub fn new(per_second: f64, burst: Option<f64>) -> Result<RateLimit, String> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(format!(
                "a request rate must be a positive number, not {per_second}"
            ));
        }
        let burst = burst.unwrap_or(per_second).max(1.0);
        if !burst.is_finite() {
            return Err(format!("a burst must be a finite number, not {burst}"));
        }
        Ok(RateLimit { per_second, burst })
    }
}

/// Throttling configuration of `tresor serve`.
#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    /// Per caller (its ARN as in CloudTrail's `userIdentity.arn`), over every signed request.
    pub principal: Option<RateLimit>,
    /// Per KMS key named by a request (`KeyId`, or the key in a `CiphertextBlob`).
    pub key: Option<RateLimit>,
    /// Bound on the buckets kept per kind.
    pub max_buckets: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            principal: None,
            key: None,
            max_buckets: 100_000,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Tokens at `now` (refilled, capped at the burst).
    fn level(&self, limit: &RateLimit, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * limit.per_second).min(limit.burst)
    }
}

/// Token buckets of one kind, by name.
pub struct Buckets {
    limit: RateLimit,
    max_buckets: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    pub fn new(limit: RateLimit, max_buckets: usize) -> Buckets {
        Buckets {
            limit,
            max_buckets: max_buckets.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `name`'s bucket at `now`; false if it has none left.
    pub fn try_acquire(&self, name: &str, now: Instant) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned lock means a panic elsewhere; fail open rather than refuse everyone.
            return true;
        };
        if let Some(b) = buckets.get_mut(name) {
            let level = b.level(&self.limit, now);
            b.at = now;
            if level >= 1.0 {
                b.tokens = level - 1.0;
                return true;
            }
            b.tokens = level;
            return false;
        }
        if buckets.len() >= self.max_buckets {
            let limit = self.limit;
            buckets.retain(|_, b| b.level(&limit, now) < limit.burst);
            if buckets.len() >= self.max_buckets {
                buckets.clear();
            }
        }
        buckets.insert(
            name.to_owned(),
            Bucket {
                tokens: self.limit.burst - 1.0,
                at: now,
            },
        );
        true
    }

    /// How many buckets are kept (for tests of the memory bound).
    pub fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The server's throttles.
// AWS-DEVIATION: AWS's request quotas are per account, Region and operation family; these are
// per caller and per key identifier, and off unless configured (docs/compat.md).
#[derive(Default)]
pub struct Throttle {
    principal: Option<Buckets>,
    key: Option<Buckets>,
}

impl Throttle {
    pub fn new(cfg: &ThrottleConfig) -> Throttle {
        Throttle {
            principal: cfg.principal.map(|l| Buckets::new(l, cfg.max_buckets)),
            key: cfg.key.map(|l| Buckets::new(l, cfg.max_buckets)),
        }
    }

    /// Whether the caller `principal_arn` may make another request now.
    pub fn allow_principal(&self, principal_arn: &str) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|b| b.try_acquire(principal_arn, Instant::now()))
    }

    /// Whether another request may use `key` now (see [`key_bucket_name`]).
    pub fn allow_key(&self, key: &str) -> bool {
        self.key
            .as_ref()
            .is_none_or(|b| b.try_acquire(key, Instant::now()))
    }

    pub fn limits_keys(&self) -> bool {
        self.key.is_some()
    }
}

/// The key bucket a request draws from: `<region>/<account>/<key id or alias name>`, from the
/// request's key identifier as given (a key id, key ARN, alias name or alias ARN), in the caller's
/// account and region unless an ARN names others. Aliases are not resolved here (that needs the
/// store), so a key used through an alias and through its id draws from two buckets.
pub fn key_bucket_name(region: &str, caller_account: &str, identifier: &str) -> String {
    if let Some(rest) = identifier.strip_prefix("arn:") {
        // arn:<partition>:kms:<region>:<account>:key/<id> | alias/<name>
        let mut parts = rest.splitn(5, ':');
        let (_partition, _service) = (parts.next(), parts.next());
        if let (Some(region), Some(account), Some(resource)) =
            (parts.next(), parts.next(), parts.next())
        {
            let resource = resource.strip_prefix("key/").unwrap_or(resource);
            return format!("{region}/{account}/{resource}");
        }
    }
    format!("{region}/{caller_account}/{identifier}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let b = Buckets::new(RateLimit::new(2.0, Some(3.0)).unwrap(), 10);
        let t0 = Instant::now();
        assert!((0..3).all(|_| b.try_acquire("p", t0)));
        assert!(!b.try_acquire("p", t0));
        // Half a second at 2/s is one more token.
        let t1 = t0 + Duration::from_millis(500);
        assert!(b.try_acquire("p", t1));
        assert!(!b.try_acquire("p", t1));
        // Another name has its own bucket.
        assert!(b.try_acquire("q", t1));
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        assert!((0..3).all(|_| b.try_acquire("p", t2)));
        assert!(!b.try_acquire("p", t2));
    }

    #[test]
    fn memory_is_bounded_and_idle_buckets_go_first() {
        let b = Buckets::new(RateLimit::new(1.0, Some(2.0)).unwrap(), 100);
        let t0 = Instant::now();
        // A noisy name that is out of tokens.
        assert!(b.try_acquire("noisy", t0) && b.try_acquire("noisy", t0));
        assert!(!b.try_acquire("noisy", t0));
        for i in 0..99 {
            b.try_acquire(&format!("idle-{i}"), t0 - Duration::from_secs(10));
        }
        assert_eq!(b.len(), 100);
        // The map is full: the idle (refilled) buckets are dropped, the noisy one is kept.
        assert!(b.try_acquire("new", t0));
        assert_eq!(b.len(), 2);
        assert!(
            !b.try_acquire("noisy", t0),
            "eviction must not refill a noisy bucket"
        );
        // A flood of distinct names never grows the map past its bound.
        for i in 0..1000 {
            b.try_acquire(&format!("flood-{i}"), t0);
            assert!(b.len() <= 100);
        }
    }

    #[test]
    fn rates_are_validated() {
        assert!(RateLimit::new(0.0, None).is_err());
        assert!(RateLimit::new(f64::NAN, None).is_err());
        assert!(RateLimit::new(1.0, Some(f64::INFINITY)).is_err());
        assert_eq!(RateLimit::new(0.5, None).unwrap().burst, 1.0);
        assert_eq!(RateLimit::new(10.0, None).unwrap().burst, 10.0);
    }

    #[test]
    fn key_bucket_names() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let r = "us-east-1";
        assert_eq!(
            key_bucket_name(r, "111122223333", id),
            format!("us-east-1/111122223333/{id}")
        );
        assert_eq!(
            key_bucket_name(
                r,
                "111122223333",
                &format!("arn:aws:kms:us-east-1:444455556666:key/{id}")
            ),
            format!("us-east-1/444455556666/{id}")
        );
        assert_eq!(
            key_bucket_name(r, "111122223333", "alias/a"),
            "us-east-1/111122223333/alias/a"
        );
        assert_eq!(
            key_bucket_name(
                r,
                "111122223333",
                "arn:aws:kms:us-east-1:111122223333:alias/a"
            ),
            "us-east-1/111122223333/alias/a"
        );
        assert_eq!(key_bucket_name(r, "1", "arn:x"), "us-east-1/1/arn:x");
    }
}
