//! Scheduled work on keys: what falls due at [`crate::store::KeyRecord::next_due`] — deletion at
//! the end of the waiting period (`DeleteKey`), automatic rotation (`RotateKey`) and the expiry of
//! imported material (`DeleteExpiredKeyMaterial`), each logged as an `AwsServiceEvent`.
//!
//! Every change is a compare-and-set on the key record's version (or, for deletion, a purge
//! conditioned on it), so several nodes running the scheduler at once do each piece of work once:
//! the losers see a conflict, re-read and find nothing left to do. The service event is written
//! only by the node whose change succeeded.

use serde_json::json;

use crate::error::KmsError;
use crate::kms::Kms;
use crate::lifecycle::{new_material, record_service_event, rotate_record};
use crate::store::{KeyRecord, StoreError};
use crate::types::{ExpirationModel, KeyId, KeyState, Origin, Region, RotationType, Timestamp};

/// Keys handled per run (the rest wait for the next run, seconds later).
const BATCH: usize = 1000;

/// Processes every key whose scheduled work is due now.
// AWS-DEVIATION: work runs when the server polls (at start and every 5 s), so up to a few seconds
// after it falls due.
pub(crate) async fn run_due_work(kms: &Kms) {
    let now = kms.clock.now();
    let due = match kms.store.keys_due(now, BATCH).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list keys with due work");
            return;
        }
    };
    for (region, key_id) in due {
        if let Err(e) = process_key(kms, &region, &key_id, now).await {
            tracing::warn!(%region, %key_id, error = %e, "scheduled key work failed; retried on the next run");
        }
    }
}

/// What is due for a key, the earliest first.
#[derive(Debug, PartialEq, Eq)]
enum Due {
    Deletion,
    Expiry,
    Rotation,
}

fn due_work(k: &KeyRecord, now: Timestamp) -> Option<Due> {
    if k.state == KeyState::PendingDeletion && k.deletion_date.is_some_and(|d| d <= now) {
        return Some(Due::Deletion);
    }
    let expiring = k.imported.as_ref().is_some_and(|i| {
        i.expiration_model == ExpirationModel::KeyMaterialExpires
            && i.valid_to.is_some_and(|t| t <= now)
            && k.material(&i.material_id).is_some()
    });
    if expiring {
        return Some(Due::Expiry);
    }
    let rotating = k.state == KeyState::Enabled
        && k.origin == Origin::AwsKms
        && k.rotation.period_days.is_some()
        && k.rotation.next_rotation.is_some_and(|t| t <= now);
    rotating.then_some(Due::Rotation)
}

async fn process_key(
    kms: &Kms,
    region: &Region,
    key_id: &KeyId,
    now: Timestamp,
) -> Result<(), KmsError> {
    // A few rounds: a conflict with a concurrent writer re-reads; one key may have several
    // pieces of work due (material expiry, then deletion).
    for _ in 0..8 {
        let Some(mut record) = kms.store.get_key(region, key_id).await? else {
            return Ok(());
        };
        let Some(due) = due_work(&record, now) else {
            return Ok(());
        };
        match due {
            Due::Deletion => {
                match kms.store.purge_key(region, key_id, record.version).await {
                    Ok(()) => {}
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
                kms.invalidate_key(key_id);
                kms.usage.forget(region, key_id);
                tracing::info!(key = %record.arn(), "deleted key at the end of its waiting period");
                record_service_event(kms, "DeleteKey", &record, None, now).await;
                return Ok(());
            }
            Due::Expiry => {
                let Some(material_id) = record.imported.as_ref().map(|i| i.material_id) else {
                    return Ok(());
                };
                record.materials.retain(|m| m.id != material_id);
                if matches!(record.state, KeyState::Enabled | KeyState::Disabled) {
                    record.state = KeyState::PendingImport;
                }
                if write(kms, &record).await? {
                    tracing::info!(key = %record.arn(), "imported key material expired");
                    let additional = json!({ "keyMaterialId": material_id.to_hex() });
                    record_service_event(
                        kms,
                        "DeleteExpiredKeyMaterial",
                        &record,
                        Some(additional),
                        now,
                    )
                    .await;
                }
            }
            Due::Rotation => {
                let period = record.rotation.period_days.unwrap_or(365);
                let material =
                    new_material(kms, &record.arn(), now, Some(RotationType::Automatic))?;
                let material_id = material.id;
                rotate_record(&mut record, material);
                record.rotation.next_rotation = Some(now.add_days(i64::from(period)));
                if write(kms, &record).await? {
                    tracing::info!(key = %record.arn(), "rotated key material");
                    let additional = json!({ "keyMaterialId": material_id.to_hex() });
                    record_service_event(kms, "RotateKey", &record, Some(additional), now).await;
                }
            }
        }
    }
    Ok(())
}

/// Compare-and-set write of a scheduler change; `false` when another writer got there first.
async fn write(kms: &Kms, record: &KeyRecord) -> Result<bool, KmsError> {
    match kms.store.update_key(record).await {
        Ok(()) => {
            kms.invalidate_key(&record.key_id);
            Ok(true)
        }
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
