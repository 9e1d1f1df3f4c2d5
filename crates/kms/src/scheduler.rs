//! Scheduled work on keys: what falls due at [`crate::store::KeyRecord::next_due`].

use crate::kms::Kms;

/// Processes every key whose scheduled work is due now.
pub(crate) async fn run_due_work(kms: &Kms) {
    let now = kms.clock.now();
    let due = match kms.store.keys_due(now, 1000).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list keys with due work");
            return;
        }
    };
    for (region, key_id) in due {
        tracing::debug!(%region, %key_id, "due work (not yet implemented)");
    }
}
