//! A run's summary: a Bloom filter over the values a lookup can ask for (account, region, event
//! name, principal ARN, user name, access key id, error code, event id, resource ARNs), so a
//! lookup passes over a run that cannot hold a match without reading its record list or JSON.
//! A filter never misses a value it was given; it says "maybe" for one it was not given in under
//! 1 % of cases (each run's filter is sized for its distinct values).
//!
//! The format is stored, so it is fixed: each value is hashed with SipHash-1-3 under the keys
//! below, over one byte naming its field followed by the value's UTF-8; the 64-bit hash `h`
//! gives [`PROBES`] bit positions `(lo + i·hi) mod m` (`lo`, `hi` its low and high 32 bits, `hi`
//! made odd; `m` the filter's bits, a power of two; bit `p` is bit `p % 8` of byte `p / 8`).
//!
//! Someone who can edit the index could clear a filter's bits to hide records from lookups.
//! Reading a run checks every record it returns against the run's filter; a record the filter
//! does not cover is returned without query columns, so `verify` reports its query columns as
//! not matching its content, as for a row whose columns were edited.

use std::hash::Hasher;

use siphasher::sip::SipHasher13;
use tresor_kms::audit_log::{AuditIndex, AuditQuery};
use tresor_kms::store::StoreError;

/// The hash keys (part of the stored format).
const KEYS: (u64, u64) = (0x7472_6573_6f72_2d61, 0x7564_6974_2d72_756e); // "tresor-a", "udit-run"
/// Bit positions set per value.
const PROBES: u32 = 7;
/// Bits per distinct value before rounding up to a power of two (with 7 probes: under 1 %
/// false positives, ~0.1 % after the rounding's usual slack).
const BITS_PER_VALUE: usize = 12;
const MIN_BYTES: usize = 8;
/// A run of 1,024 records with every value distinct (~10 per record) needs ~16 KiB; the cap
/// only bounds what an edited index can make a reader allocate or a writer store.
const MAX_BYTES: usize = 64 << 10;

const ACCOUNT: u8 = 1;
const REGION: u8 = 2;
const EVENT_NAME: u8 = 3;
const PRINCIPAL: u8 = 4;
const USERNAME: u8 = 5;
const ACCESS_KEY: u8 = 6;
const ERROR_CODE: u8 = 7;
const EVENT_ID: u8 = 8;
const RESOURCE: u8 = 9;

fn hash(field: u8, value: &str) -> u64 {
    let mut h = SipHasher13::new_with_keys(KEYS.0, KEYS.1);
    h.write(&[field]);
    h.write(value.as_bytes());
    h.finish()
}

/// A record's single-valued fields, each with its field's tag (`None` where it has none); its
/// resources are the other values.
fn record_values(ix: &AuditIndex) -> [(u8, Option<&str>); 8] {
    [
        (ACCOUNT, Some(ix.account.as_str())),
        (REGION, Some(ix.region.as_str())),
        (EVENT_NAME, Some(ix.event_name.as_str())),
        (PRINCIPAL, ix.principal_arn.as_deref()),
        (USERNAME, ix.username.as_deref()),
        (ACCESS_KEY, ix.access_key_id.as_deref()),
        (ERROR_CODE, ix.error_code.as_deref()),
        (EVENT_ID, Some(ix.event_id.as_str())),
    ]
}

/// The hashes of the values a record that passes `q` must hold (empty: no value to look for).
pub(super) fn query_hashes(q: &AuditQuery) -> Vec<u64> {
    [
        (ACCOUNT, &q.account),
        (REGION, &q.region),
        (EVENT_NAME, &q.event_name),
        (PRINCIPAL, &q.principal_arn),
        (USERNAME, &q.username),
        (ACCESS_KEY, &q.access_key_id),
        (ERROR_CODE, &q.error_code),
        (EVENT_ID, &q.event_id),
        (RESOURCE, &q.resource_arn),
    ]
    .into_iter()
    .filter_map(|(field, v)| v.as_deref().map(|v| hash(field, v)))
    .collect()
}

/// Builds one run's filter from its records' query columns.
pub(super) struct Builder<'a> {
    hashes: Vec<u64>,
    /// The previous record's values, field by field: consecutive records mostly share them
    /// (caller, key, operation), and an equal string is not hashed again.
    previous: [Option<&'a str>; 8],
    previous_resource: Option<&'a str>,
}

impl<'a> Builder<'a> {
    pub(super) fn new() -> Builder<'a> {
        Builder {
            hashes: Vec::new(),
            previous: [None; 8],
            previous_resource: None,
        }
    }

    pub(super) fn add(&mut self, ix: &'a AuditIndex) {
        for ((field, value), previous) in record_values(ix).into_iter().zip(&mut self.previous) {
            if let Some(v) = value
                && *previous != Some(v)
            {
                self.hashes.push(hash(field, v));
                *previous = Some(v);
            }
        }
        for r in &ix.resources {
            if self.previous_resource != Some(r.as_str()) {
                self.hashes.push(hash(RESOURCE, r));
                self.previous_resource = Some(r.as_str());
            }
        }
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        self.hashes.sort_unstable();
        self.hashes.dedup();
        let bytes = (self.hashes.len() * BITS_PER_VALUE)
            .div_ceil(8)
            .next_power_of_two()
            .clamp(MIN_BYTES, MAX_BYTES);
        let mut bits = vec![0u8; bytes];
        for h in self.hashes {
            for p in positions(h, bytes * 8) {
                bits[p / 8] |= 1 << (p % 8);
            }
        }
        bits
    }
}

fn positions(h: u64, m: usize) -> impl Iterator<Item = usize> {
    let lo = h as u32;
    let hi = (h >> 32) as u32 | 1;
    (0..PROBES).map(move |i| lo.wrapping_add(i.wrapping_mul(hi)) as usize & (m - 1))
}

/// A stored filter, checked for shape.
pub(super) struct Summary<'a>(&'a [u8]);

impl<'a> Summary<'a> {
    /// `None` for a run indexed before runs had summaries (it is always read).
    pub(super) fn parse(
        bytes: Option<&'a [u8]>,
        chain: &str,
        first_seq: i64,
    ) -> Result<Option<Summary<'a>>, StoreError> {
        match bytes {
            None => Ok(None),
            Some(b)
                if b.len() >= MIN_BYTES && b.len() <= MAX_BYTES && b.len().is_power_of_two() =>
            {
                Ok(Some(Summary(b)))
            }
            Some(_) => Err(StoreError::Corrupt(format!(
                "audit index run at {chain}/{first_seq} has a malformed summary"
            ))),
        }
    }

    fn holds(&self, h: u64) -> bool {
        positions(h, self.0.len() * 8).all(|p| self.0[p / 8] & (1 << (p % 8)) != 0)
    }

    /// Whether the run may hold a record with all of these values.
    pub(super) fn may_hold_all(&self, hashes: &[u64]) -> bool {
        hashes.iter().all(|h| self.holds(*h))
    }

    /// Whether the filter was given every value of `ix`.
    pub(super) fn covers(&self, ix: &AuditIndex) -> bool {
        record_values(ix)
            .into_iter()
            .all(|(field, v)| v.is_none_or(|v| self.holds(hash(field, v))))
            && ix.resources.iter().all(|r| self.holds(hash(RESOURCE, r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(n: usize) -> AuditIndex {
        AuditIndex {
            event_time_millis: n as i64,
            event_name: "Decrypt".into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
            principal_arn: Some("arn:aws:iam::111122223333:user/alice".into()),
            username: Some("alice".into()),
            access_key_id: Some("AKIAEXAMPLE".into()),
            error_code: n.is_multiple_of(10).then(|| "AccessDeniedException".into()),
            read_only: true,
            event_id: format!("evt-{n}"),
            request_id: format!("req-{n}"),
            resources: vec![format!(
                "arn:aws:kms:us-east-1:111122223333:key/k{}",
                n % 50
            )],
        }
    }

    #[test]
    fn holds_every_value_it_was_given_and_few_others() {
        let records: Vec<AuditIndex> = (0..1024).map(index).collect();
        let mut b = Builder::new();
        for r in &records {
            b.add(r);
        }
        let bytes = b.finish();
        // ~1,080 distinct values at 12 bits each, rounded up to a power of two.
        assert_eq!(bytes.len(), 2048);
        let s = Summary::parse(Some(&bytes), "main", 1).unwrap().unwrap();
        for r in &records {
            assert!(s.covers(r), "record {}", r.event_id);
        }
        let q = |f: &dyn Fn(&mut AuditQuery)| {
            let mut q = AuditQuery::default();
            f(&mut q);
            s.may_hold_all(&query_hashes(&q))
        };
        assert!(q(&|q| q.event_id = Some("evt-1023".into())));
        assert!(q(&|q| {
            q.username = Some("alice".into());
            q.resource_arn = Some("arn:aws:kms:us-east-1:111122223333:key/k49".into());
        }));
        assert!(q(&|_| {}), "a query without values passes every run");
        // The same string in another field is another value.
        assert!(!q(&|q| q.event_name = Some("alice".into())));
        let false_positives = (1024..101_024)
            .filter(|n| q(&|q| q.event_id = Some(format!("evt-{n}"))))
            .count();
        assert!(false_positives < 1000, "{false_positives} in 100,000");
    }

    #[test]
    fn malformed_filters_are_corrupt() {
        for len in [0, 7, 12, 2 * MAX_BYTES] {
            let bytes = vec![0xff; len];
            let e = Summary::parse(Some(&bytes), "main", 5).err().unwrap();
            assert!(
                e.to_string().contains("main/5 has a malformed summary"),
                "{e}"
            );
        }
        assert!(Summary::parse(None, "main", 5).unwrap().is_none());
    }

    #[test]
    fn a_cleared_filter_covers_nothing() {
        let r = index(3);
        let mut b = Builder::new();
        b.add(&r);
        let mut bytes = b.finish();
        assert!(
            Summary::parse(Some(&bytes), "main", 1)
                .unwrap()
                .unwrap()
                .covers(&r)
        );
        bytes.iter_mut().for_each(|b| *b = 0);
        assert!(
            !Summary::parse(Some(&bytes), "main", 1)
                .unwrap()
                .unwrap()
                .covers(&r)
        );
    }
}
