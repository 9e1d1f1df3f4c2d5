//! Last-use tracking for `GetKeyLastUsage` without a store write on the path of every
//! cryptographic call: [`crate::Kms::call`] notes each successful cryptographic operation in
//! memory (with its CloudTrail event id and request id), a background task flushes the newest use
//! per key in batches every 10 seconds ([`crate::Kms::flush_key_usage_paced`]), and
//! `GetKeyLastUsage` flushes before it reads ([`crate::Kms::flush_key_usage`]). The periodic
//! flush holds back a key whose use it wrote less than `key_usage_rewrite_after` (a minute) ago:
//! with calls spread over many keys, every key in use would otherwise be one row rewritten every
//! 10 seconds. A crash loses at most the uses noted since a key's use was last written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::audit::AuditEvent;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::store::KeyUsageRecord;
use crate::types::{KeyId, Region, Timestamp};

/// The operations `GetKeyLastUsage` reports (reference §3.4): successful cryptographic use only.
pub const TRACKED_OPERATIONS: &[&str] = &[
    "Decrypt",
    "DeriveSharedSecret",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "ReEncrypt",
    "Sign",
    "Verify",
    "VerifyMac",
];

/// The store meta value holding when tracking began (epoch milliseconds).
const TRACKING_START_META: &str = "key_usage_tracking_start";

/// What a finished, successful call used, captured from its audit event before the event is
/// handed to the audit log (no heap allocation for the usual one or two keys of the call's
/// region with UUID event and request ids).
#[derive(Debug)]
pub(crate) struct Uses<'a> {
    /// The call's region.
    region: &'a Region,
    operation: &'static str,
    timestamp: Timestamp,
    event_id: CompactId,
    request_id: CompactId,
    /// Keys in the call's region (ReEncrypt: both keys).
    keys: [Option<KeyId>; 2],
    /// Any other key (none in practice: a call reaches keys of its own region only).
    elsewhere: Vec<(Region, KeyId)>,
}

/// An event or request id: a lower-case hyphenated UUID kept as its 16 bytes, or the text.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CompactId {
    Uuid(uuid::Uuid),
    Text(Box<str>),
}

impl Default for CompactId {
    fn default() -> CompactId {
        CompactId::Text(Box::from(""))
    }
}

impl CompactId {
    fn new(s: &str) -> CompactId {
        // Only the canonical form round-trips exactly through `Uuid`'s formatting.
        match crate::types::canonical_uuid(s) {
            Some(u) => CompactId::Uuid(u),
            None => CompactId::Text(Box::from(s)),
        }
    }

    fn to_text(&self) -> String {
        match self {
            CompactId::Uuid(u) => u.hyphenated().to_string(),
            CompactId::Text(t) => t.to_string(),
        }
    }
}

/// `arn:aws:kms:<region>:<account>:key/<key-id>` → (region, key id).
fn key_of_arn(arn: &str) -> Option<(&str, KeyId)> {
    let (region, _, resource) = crate::types::split_kms_arn(arn)?;
    KeyId::parse(resource.strip_prefix("key/")?).map(|k| (region, k))
}

/// The keys a finished, successful call made in `region` used (ReEncrypt: both keys); `None` for
/// an operation `GetKeyLastUsage` does not report.
pub(crate) fn used_keys<'a>(
    operation: &'static str,
    event: &AuditEvent,
    region: &'a Region,
) -> Option<Uses<'a>> {
    if !TRACKED_OPERATIONS.contains(&operation) {
        return None;
    }
    let mut uses = Uses {
        region,
        operation,
        timestamp: Timestamp(event.event_time_millis),
        event_id: CompactId::new(&event.event_id),
        request_id: CompactId::new(&event.request_id),
        keys: [None, None],
        elsewhere: Vec::new(),
    };
    for (key_region, key_id) in event.resources.iter().filter_map(|r| key_of_arn(&r.arn)) {
        if key_region == region.as_str()
            && let Some(slot) = uses.keys.iter_mut().find(|k| k.is_none())
        {
            *slot = Some(key_id);
            continue;
        }
        if let Some(key_region) = Region::parse(key_region) {
            uses.elsewhere.push((key_region, key_id));
        }
    }
    Some(uses)
}

/// The newest noted use of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    operation: &'static str,
    timestamp: Timestamp,
    event_id: CompactId,
    request_id: CompactId,
}

/// Per region and key.
type ByKey<T> = HashMap<Region, HashMap<KeyId, T>>;

/// The newest use per key that is not yet in the store, by region and key.
#[derive(Debug, Default)]
pub(crate) struct UsageBuffer {
    /// What calls noted since the last flush took it (every call takes this lock, briefly).
    pending: Mutex<ByKey<Pending>>,
    /// Uses the periodic flush held back because it wrote their key's use a short while ago, and
    /// when each key's use was last written (by this node's clock; kept for the last
    /// `key_usage_rewrite_after` only, so both maps hold at most the keys in use). Only flushes,
    /// one at a time, and `forget` take these locks.
    held: Mutex<ByKey<Pending>>,
    written: Mutex<ByKey<Timestamp>>,
    /// When tracking began, once read from (or written to) the store.
    tracking_start: OnceLock<Timestamp>,
    /// Held by the flush in progress.
    flushing: tokio::sync::Mutex<()>,
    /// Set while an unpaced flush waits for a paced one, which then stops pausing.
    hurry: AtomicBool,
    hurried: tokio::sync::Notify,
}

impl UsageBuffer {
    /// Notes the uses of a call.
    pub(crate) fn note(&self, uses: Option<Uses<'_>>) {
        let Some(u) = uses else {
            return;
        };
        let entry = || Pending {
            operation: u.operation,
            timestamp: u.timestamp,
            event_id: u.event_id.clone(),
            request_id: u.request_id.clone(),
        };
        if let Ok(mut pending) = self.pending.lock() {
            for key_id in u.keys.iter().flatten() {
                keep_newest(&mut pending, u.region, *key_id, entry());
            }
            for (region, key_id) in &u.elsewhere {
                keep_newest(&mut pending, region, *key_id, entry());
            }
        }
    }

    /// Everything noted and held back, for a flush that writes it all.
    fn take(&self) -> Vec<KeyUsageRecord> {
        self.take_due(None)
    }

    /// The uses a flush writes. `rewrite`, for the periodic flush: `(now, after)`, and a key whose
    /// use was written less than `after` before `now` stays held back (its newest use goes out
    /// with a later flush); without it everything goes.
    fn take_due(&self, rewrite: Option<(Timestamp, Duration)>) -> Vec<KeyUsageRecord> {
        // Swap the map out and take it apart outside the lock: with many keys in use it holds
        // tens of thousands of entries, and every call notes its use under this lock.
        let taken = self
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        let Ok(mut held) = self.held.lock() else {
            return Vec::new();
        };
        if held.is_empty() {
            *held = taken;
        } else {
            for (region, keys) in taken {
                for (key_id, p) in keys {
                    keep_newest(&mut held, &region, key_id, p);
                }
            }
        }
        let after_millis = rewrite.map(|(now, after)| {
            (
                now.millis(),
                i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            )
        });
        // Write times matter only to a flush that may hold uses back.
        let written = after_millis.and_then(|_| self.written.lock().ok());
        let mut records = Vec::new();
        for (region, keys) in held.iter_mut() {
            let last = written.as_ref().and_then(|w| w.get(region));
            keys.retain(|key_id, p| {
                let hold = match (after_millis, last.and_then(|l| l.get(key_id))) {
                    (Some((now, after)), Some(at)) => now.saturating_sub(at.millis()) < after,
                    _ => false,
                };
                if !hold {
                    records.push(KeyUsageRecord {
                        region: region.clone(),
                        key_id: *key_id,
                        operation: p.operation.to_owned(),
                        timestamp: p.timestamp,
                        event_id: p.event_id.to_text(),
                        request_id: p.request_id.to_text(),
                    });
                }
                hold
            });
        }
        held.retain(|_, keys| !keys.is_empty());
        // A write time older than `after` holds nothing back any more: forgetting it keeps this
        // map to the keys written in the last minute.
        if let (Some(mut written), Some((now, after))) = (written, after_millis) {
            for keys in written.values_mut() {
                keys.retain(|_, at| now.saturating_sub(at.millis()) < after);
            }
            written.retain(|_, keys| !keys.is_empty());
        }
        records
    }

    /// Notes that these uses are in the store as of `now` (for [`UsageBuffer::take_due`]).
    fn mark_written(&self, records: &[KeyUsageRecord], now: Timestamp) {
        if let Ok(mut written) = self.written.lock() {
            for u in records {
                match written.get_mut(&u.region) {
                    Some(keys) => keys.insert(u.key_id, now),
                    None => written
                        .entry(u.region.clone())
                        .or_default()
                        .insert(u.key_id, now),
                };
            }
        }
    }

    /// Puts records back after a failed flush (newer uses noted meanwhile win).
    fn restore(&self, records: Vec<KeyUsageRecord>) {
        if let Ok(mut pending) = self.pending.lock() {
            for u in records {
                // Records come from `take`, so their operation is always a tracked one.
                let Some(operation) = TRACKED_OPERATIONS
                    .iter()
                    .copied()
                    .find(|op| *op == u.operation)
                else {
                    continue;
                };
                let p = Pending {
                    operation,
                    timestamp: u.timestamp,
                    event_id: CompactId::new(&u.event_id),
                    request_id: CompactId::new(&u.request_id),
                };
                keep_newest(&mut pending, &u.region, u.key_id, p);
            }
        }
    }

    /// Drops what is noted for a key that no longer exists.
    pub(crate) fn forget(&self, region: &Region, key_id: &KeyId) {
        remove_key(&self.pending, region, key_id);
        remove_key(&self.held, region, key_id);
        remove_key(&self.written, region, key_id);
    }
}

/// Removes a key's entry from `map`.
fn remove_key<T>(map: &Mutex<ByKey<T>>, region: &Region, key_id: &KeyId) {
    if let Ok(mut map) = map.lock()
        && let Some(keys) = map.get_mut(region)
    {
        keys.remove(key_id);
    }
}

fn keep_newest(pending: &mut ByKey<Pending>, region: &Region, key_id: KeyId, u: Pending) {
    let keys = match pending.get_mut(region) {
        Some(keys) => keys,
        None => pending.entry(region.clone()).or_default(),
    };
    match keys.get_mut(&key_id) {
        Some(old) if old.timestamp > u.timestamp => {}
        Some(old) => *old = u,
        None => {
            keys.insert(key_id, u);
        }
    }
}

/// The part of a taken batch not yet written: put back into the buffer if the flush fails or is
/// dropped half-way (the periodic task is aborted at shutdown), so the final flush still has it.
struct Unwritten<'a> {
    usage: &'a UsageBuffer,
    records: std::collections::VecDeque<KeyUsageRecord>,
}

impl Drop for Unwritten<'_> {
    fn drop(&mut self) {
        if !self.records.is_empty() {
            self.usage.restore(std::mem::take(&mut self.records).into());
        }
    }
}

impl Kms {
    /// Writes the uses noted since the last flush to the store, at once. `GetKeyLastUsage` calls
    /// it before reading, the server at shutdown.
    // AWS-DEVIATION: a crash loses the uses of the last 10 seconds; TrackingStartDate is when this
    // deployment first tracked usage.
    pub async fn flush_key_usage(&self) -> Result<(), KmsError> {
        self.flush_usage(false).await
    }

    /// The server's periodic flush (every 10 seconds): the same rows, written in transactions of
    /// `key_usage_flush_chunk` rows with a pause of `key_usage_flush_pause` between them (cut
    /// short when an unpaced flush is waiting).
    pub async fn flush_key_usage_paced(&self) -> Result<(), KmsError> {
        self.flush_usage(true).await
    }

    async fn flush_usage(&self, paced: bool) -> Result<(), KmsError> {
        self.tracking_start().await?;
        // One flush at a time, so a GetKeyLastUsage reads only after every use taken before it
        // is written; it waits for a paced flush in progress, which stops pausing meanwhile.
        if !paced {
            self.usage.hurry.store(true, Ordering::Release);
            self.usage.hurried.notify_waiters();
        }
        let _one_at_a_time = self.usage.flushing.lock().await;
        if !paced {
            self.usage.hurry.store(false, Ordering::Release);
        }
        let now = self.clock.now();
        let mut batch = if paced {
            self.usage
                .take_due(Some((now, self.config.key_usage_rewrite_after)))
        } else {
            self.usage.take()
        };
        // In key order, so the store's writes walk its index instead of jumping around it.
        batch.sort_unstable_by(|a, b| (&a.region, a.key_id).cmp(&(&b.region, b.key_id)));
        let mut rest = Unwritten {
            usage: &self.usage,
            records: batch.into(),
        };
        let (chunk_rows, pause) = (
            self.config.key_usage_flush_chunk.max(1),
            self.config.key_usage_flush_pause,
        );
        let mut first = true;
        while !rest.records.is_empty() {
            if paced && !first {
                // Registered before `hurry` is read, so a waiter that sets it after cannot be
                // missed.
                let hurried = self.usage.hurried.notified();
                tokio::pin!(hurried);
                hurried.as_mut().enable();
                if !self.usage.hurry.load(Ordering::Acquire) {
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = &mut hurried => {}
                    }
                }
            }
            first = false;
            let n = rest.records.len().min(chunk_rows);
            let chunk: Vec<KeyUsageRecord> = rest.records.drain(..n).collect();
            if let Err(e) = self.store.record_key_usage(&chunk).await {
                // Newer uses noted meanwhile win over these when they are put back.
                self.usage.restore(chunk);
                return Err(e.into());
            }
            self.usage.mark_written(&chunk, now);
        }
        Ok(())
    }

    /// When this deployment began tracking key usage (recorded the first time it is asked).
    pub(crate) async fn tracking_start(&self) -> Result<Timestamp, KmsError> {
        if let Some(t) = self.usage.tracking_start.get() {
            return Ok(*t);
        }
        let now = self.clock.now();
        let stored = match self.store.get_meta(TRACKING_START_META).await? {
            Some(v) => v,
            None => {
                self.store
                    .put_meta_if_absent(TRACKING_START_META, &now.millis().to_string())
                    .await?
            }
        };
        let start = stored
            .parse::<i64>()
            .map(Timestamp)
            .map_err(|_| KmsError::internal(format!("bad {TRACKING_START_META} value")))?;
        Ok(*self.usage.tracking_start.get_or_init(|| start))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::audit::AuditResource;

    fn event(resources: &[&str], millis: i64) -> AuditEvent {
        AuditEvent {
            event_version: "1.11",
            user_identity: crate::audit::UserIdentity::default(),
            event_time: String::new(),
            event_source: "kms.amazonaws.com",
            event_name: "x".into(),
            aws_region: "us-east-1".into(),
            source_ip_address: String::new(),
            user_agent: String::new(),
            error_code: None,
            error_message: None,
            request_parameters: None,
            response_elements: None,
            additional_event_data: None,
            request_id: "req".into(),
            event_id: format!("ev-{millis}"),
            read_only: true,
            resources: resources
                .iter()
                .map(|a| AuditResource {
                    account_id: "111122223333".into(),
                    resource_type: "AWS::KMS::Key",
                    arn: (*a).to_owned(),
                })
                .collect(),
            event_type: "AwsApiCall",
            service_event_details: None,
            management_event: true,
            recipient_account_id: "111122223333".into(),
            shared_event_id: None,
            event_category: "Management",
            event_time_millis: millis,
        }
    }

    const A: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const B: &str = "arn:aws:kms:us-east-1:111122223333:key/2234abcd-12ab-34cd-56ef-1234567890ab";

    const C: &str = "arn:aws:kms:eu-west-1:111122223333:key/3234abcd-12ab-34cd-56ef-1234567890ab";
    const UUID_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    fn region(r: &str) -> Region {
        Region::parse(r).unwrap()
    }

    #[test]
    fn only_cryptographic_operations_count_and_reencrypt_counts_twice() {
        let r = region("us-east-1");
        assert!(used_keys("DescribeKey", &event(&[A], 1), &r).is_none());
        assert!(used_keys("CreateGrant", &event(&[A], 1), &r).is_none());
        let buf = UsageBuffer::default();
        buf.note(used_keys("ReEncrypt", &event(&[A, B], 5), &r));
        let both = buf.take();
        assert_eq!(both.len(), 2);
        assert!(both.iter().all(|u| u.operation == "ReEncrypt"
            && u.event_id == "ev-5"
            && u.request_id == "req"
            && u.timestamp == Timestamp(5)
            && u.region == region("us-east-1")));
    }

    #[test]
    fn ids_and_regions_come_back_exactly_as_noted() {
        // UUID ids are kept as 16 bytes and must come back as the same text; anything else
        // (upper case, other forms) is kept as text.
        for id in [UUID_ID, "0F8FAD5B-D9CB-469F-A165-70867728950E", "ev-1", ""] {
            assert_eq!(CompactId::new(id).to_text(), id);
        }
        assert!(matches!(CompactId::new(UUID_ID), CompactId::Uuid(_)));
        // A key of another region than the event's (and a third key) are not lost.
        let mut e = event(&[A, B, C], 9);
        e.event_id = UUID_ID.into();
        e.request_id = UUID_ID.to_uppercase();
        let buf = UsageBuffer::default();
        let r = region("us-east-1");
        buf.note(used_keys("ReEncrypt", &e, &r));
        let mut all = buf.take();
        all.sort_by_key(|u| u.key_id);
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].region, region("eu-west-1"));
        assert!(all.iter().all(|u| u.event_id == UUID_ID
            && u.request_id == UUID_ID.to_uppercase()
            && u.operation == "ReEncrypt"));
        assert!(key_of_arn("arn:aws:kms:us-east-1:111122223333:alias/x").is_none());
        assert!(key_of_arn("arn:aws:kms:us-east-1:111122223333:key/NOT-A-UUID").is_none());
    }

    #[test]
    fn the_periodic_flush_holds_back_a_key_it_wrote_a_short_while_ago() {
        let buf = UsageBuffer::default();
        let r = region("us-east-1");
        let minute = Some(Duration::from_secs(60));
        let due = |now: i64| buf.take_due(minute.map(|m| (Timestamp(now), m)));
        let events = |records: &[KeyUsageRecord]| {
            let mut ids: Vec<String> = records.iter().map(|u| u.event_id.clone()).collect();
            ids.sort();
            ids
        };
        // A key's first use goes at once.
        buf.note(used_keys("Encrypt", &event(&[A], 1_000), &r));
        let first = due(1_000);
        assert_eq!(events(&first), ["ev-1000"]);
        buf.mark_written(&first, Timestamp(1_000));
        // Nine seconds later A waits; B, never written, goes.
        buf.note(used_keys("Decrypt", &event(&[A], 5_000), &r));
        buf.note(used_keys("Encrypt", &event(&[B], 6_000), &r));
        let second = due(10_000);
        assert_eq!(events(&second), ["ev-6000"]);
        buf.mark_written(&second, Timestamp(10_000));
        // A newer use of a held key replaces the held one; it goes once a minute has passed
        // since A was written.
        buf.note(used_keys("GenerateDataKey", &event(&[A], 20_000), &r));
        assert!(due(60_999).is_empty());
        let third = due(61_000);
        assert_eq!(events(&third), ["ev-20000"]);
        assert_eq!(third[0].operation, "GenerateDataKey");
        buf.mark_written(&third, Timestamp(61_000));
        // B's write time (10 s) is more than a minute old at 71 s: forgotten, nothing held.
        assert!(due(71_000).is_empty());
        assert_eq!(
            buf.written
                .lock()
                .unwrap()
                .values()
                .map(HashMap::len)
                .sum::<usize>(),
            1
        );
        // A flush that writes everything (GetKeyLastUsage, shutdown) takes what is held.
        buf.note(used_keys("Decrypt", &event(&[A], 62_000), &r));
        assert!(due(62_000).is_empty());
        assert_eq!(events(&buf.take()), ["ev-62000"]);
        // A deleted key's held use and write time go with it.
        buf.note(used_keys("Decrypt", &event(&[A], 63_000), &r));
        assert!(due(63_000).is_empty());
        buf.forget(&r, &key_of_arn(A).unwrap().1);
        assert!(buf.take().is_empty());
        buf.note(used_keys("Decrypt", &event(&[A], 64_000), &r));
        assert_eq!(events(&due(64_000)), ["ev-64000"]);
    }

    #[test]
    fn the_buffer_keeps_the_newest_use_per_key() {
        let buf = UsageBuffer::default();
        let r = region("us-east-1");
        buf.note(used_keys("Encrypt", &event(&[A], 10), &r));
        buf.note(used_keys("Decrypt", &event(&[A], 5), &r));
        buf.note(used_keys("GenerateDataKey", &event(&[B], 7), &r));
        let mut taken = buf.take();
        taken.sort_by_key(|u| u.timestamp);
        assert_eq!(
            taken
                .iter()
                .map(|u| u.operation.as_str())
                .collect::<Vec<_>>(),
            ["GenerateDataKey", "Encrypt"]
        );
        assert!(buf.take().is_empty());
        buf.note(used_keys("Decrypt", &event(&[A], 20), &r));
        buf.restore(taken);
        let again = buf.take();
        let a = again.iter().find(|u| u.event_id == "ev-20");
        assert!(a.is_some(), "a newer use survives a restore of older ones");
        assert_eq!(again.len(), 2);
        buf.note(used_keys("Decrypt", &event(&[A], 30), &r));
        buf.forget(&r, &key_of_arn(A).unwrap().1);
        assert!(buf.take().is_empty());
    }
}
