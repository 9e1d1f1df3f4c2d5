//! Last-use tracking for `GetKeyLastUsage` without a store write on the path of every
//! cryptographic call: [`crate::Kms::call`] notes each successful cryptographic operation in
//! memory (with its CloudTrail event id and request id), a background task flushes the newest use
//! per key in batches every 10 seconds ([`crate::Kms::flush_key_usage`]), and `GetKeyLastUsage` flushes before it
//! reads. A crash loses at most the uses noted since the last flush.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::audit::AuditEvent;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::store::KeyUsageRecord;
use crate::types::{KeyId, KeyRef, Region, Timestamp};

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

/// The keys a finished, successful call used, as usage records (ReEncrypt: both keys).
pub(crate) fn used_keys(operation: &str, event: &AuditEvent) -> Vec<KeyUsageRecord> {
    if !TRACKED_OPERATIONS.contains(&operation) {
        return Vec::new();
    }
    event
        .resources
        .iter()
        .filter_map(|r| match KeyRef::parse(&r.arn) {
            Ok(KeyRef::Arn { region, key_id, .. }) => Some(KeyUsageRecord {
                region,
                key_id,
                operation: operation.to_owned(),
                timestamp: Timestamp(event.event_time_millis),
                event_id: event.event_id.clone(),
                request_id: event.request_id.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The newest use per key that is not yet in the store.
#[derive(Debug, Default)]
pub(crate) struct UsageBuffer {
    pending: Mutex<HashMap<(Region, KeyId), KeyUsageRecord>>,
    /// When tracking began, once read from (or written to) the store.
    tracking_start: OnceLock<Timestamp>,
}

impl UsageBuffer {
    pub(crate) fn note(&self, used: Vec<KeyUsageRecord>) {
        if used.is_empty() {
            return;
        }
        if let Ok(mut pending) = self.pending.lock() {
            for u in used {
                keep_newest(&mut pending, u);
            }
        }
    }

    fn take(&self) -> Vec<KeyUsageRecord> {
        // Swap the map out and take it apart outside the lock: with many keys in use it holds
        // tens of thousands of entries, and every call notes its use under this lock.
        let taken = self
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        taken.into_values().collect()
    }

    /// Puts records back after a failed flush (newer uses noted meanwhile win).
    fn restore(&self, records: Vec<KeyUsageRecord>) {
        if let Ok(mut pending) = self.pending.lock() {
            for u in records {
                keep_newest(&mut pending, u);
            }
        }
    }

    /// Drops what is noted for a key that no longer exists.
    pub(crate) fn forget(&self, region: &Region, key_id: &KeyId) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&(region.clone(), *key_id));
        }
    }
}

fn keep_newest(pending: &mut HashMap<(Region, KeyId), KeyUsageRecord>, u: KeyUsageRecord) {
    let slot = (u.region.clone(), u.key_id);
    match pending.get(&slot) {
        Some(old) if old.timestamp > u.timestamp => {}
        _ => {
            pending.insert(slot, u);
        }
    }
}

impl Kms {
    /// Writes the uses noted since the last flush to the store (one batch). The server calls it
    /// every 10 seconds and at shutdown; `GetKeyLastUsage` calls it before reading.
    // AWS-DEVIATION: a crash loses the uses of the last 10 seconds; TrackingStartDate is when this
    // deployment first tracked usage.
    pub async fn flush_key_usage(&self) -> Result<(), KmsError> {
        self.tracking_start().await?;
        let mut batch = self.usage.take();
        if batch.is_empty() {
            return Ok(());
        }
        // In key order, so the store's writes walk its index instead of jumping around it.
        batch.sort_unstable_by(|a, b| (&a.region, a.key_id).cmp(&(&b.region, b.key_id)));
        if let Err(e) = self.store.record_key_usage(&batch).await {
            self.usage.restore(batch);
            return Err(e.into());
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
            user_identity: serde_json::Value::Null,
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

    #[test]
    fn only_cryptographic_operations_count_and_reencrypt_counts_twice() {
        assert!(used_keys("DescribeKey", &event(&[A], 1)).is_empty());
        assert!(used_keys("CreateGrant", &event(&[A], 1)).is_empty());
        let both = used_keys("ReEncrypt", &event(&[A, B], 5));
        assert_eq!(both.len(), 2);
        assert!(both.iter().all(|u| u.operation == "ReEncrypt"
            && u.event_id == "ev-5"
            && u.request_id == "req"
            && u.timestamp == Timestamp(5)));
    }

    #[test]
    fn the_buffer_keeps_the_newest_use_per_key() {
        let buf = UsageBuffer::default();
        buf.note(used_keys("Encrypt", &event(&[A], 10)));
        buf.note(used_keys("Decrypt", &event(&[A], 5)));
        buf.note(used_keys("GenerateDataKey", &event(&[B], 7)));
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
        buf.note(used_keys("Decrypt", &event(&[A], 20)));
        buf.restore(taken);
        let again = buf.take();
        let a = again.iter().find(|u| u.event_id == "ev-20");
        assert!(a.is_some(), "a newer use survives a restore of older ones");
        assert_eq!(again.len(), 2);
    }
}
