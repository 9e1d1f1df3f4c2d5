//! Keeping a node's caches fresh when several nodes share one store.
//!
//! Every cache of the core (key records with their grants and aliases, credentials, parsed
//! identity policies) obeys two rules, which together bound how stale a node can be:
//!
//! 1. **TTL from the start of the load.** An entry is used for at most the cache's TTL (one second)
//!    measured from when the store read that produced it *began*. A store read that begins after a
//!    write committed sees that write, so a change committed at time `T` by any node is in effect
//!    on every node for every request that starts after `T + TTL` — with or without
//!    announcements. This is the documented bound (`docs/operations.md`).
//! 2. **Announcements.** Backends shared by several nodes announce every committed write on their
//!    invalidation feed ([`crate::store::Store::subscribe_invalidations`]); [`Kms::follow_invalidations`]
//!    drops what each announcement names, so in practice other nodes see a change within
//!    milliseconds. A load that was in flight while an invalidation arrived is not cached
//!    (the cache's [`Generation`] moved), so a stale read cannot outlive the announcement.
//!
//! Lost announcements (the feed reconnected, or this node lagged behind it) drop everything.
//!
//! AWS-DEVIATION: AWS documents up to five minutes of eventual consistency for grants and policy
//! changes; Tresor's bound across nodes is one second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use tokio::sync::broadcast::error::RecvError;

use crate::kms::Kms;
use crate::store::Invalidation;

/// A cache's invalidation counter. Bumped (under the cache's lock) by every invalidation; an
/// entry loaded under an older [`LoadTicket`] is not inserted.
#[derive(Debug, Default)]
pub(crate) struct Generation(AtomicU64);

/// Taken before a cache loads from the store.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoadTicket {
    /// When the load began: the entry's age is counted from here.
    pub started: Instant,
    generation: u64,
}

impl Generation {
    pub(crate) fn ticket(&self) -> LoadTicket {
        LoadTicket {
            // The generation is read before the clock: a bump in between can only make the
            // ticket look older than it is (the entry is skipped), never newer.
            generation: self.0.load(Ordering::Acquire),
            started: Instant::now(),
        }
    }
    /// Call with the cache's lock held.
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
    /// Whether nothing was invalidated since `ticket` was taken (call with the cache's lock held).
    pub(crate) fn is_current(&self, ticket: &LoadTicket) -> bool {
        self.0.load(Ordering::Acquire) == ticket.generation
    }
}

impl Kms {
    /// Drops the cached state one announcement names.
    pub fn apply_invalidation(&self, what: &Invalidation) {
        match what {
            Invalidation::Key { key_id, .. } => self.invalidate_key(key_id),
            Invalidation::Principal { arn } => {
                self.forget_identity_policies(Some(arn));
                // Credentials embed their principal record.
                self.identities().invalidate();
            }
            Invalidation::AccessKey { access_key_id } => {
                self.identities().invalidate_access_key(access_key_id)
            }
            Invalidation::All => self.invalidate_everything(),
        }
    }

    /// Drops every cached key, credential and identity policy.
    pub fn invalidate_everything(&self) {
        self.invalidate_all_keys();
        self.forget_identity_policies(None);
        self.identities().invalidate();
    }

    /// Follows the store's invalidation feed in a background task, if the store has one
    /// (backends shared by several nodes). The task holds the core only weakly and ends when the
    /// core or the feed goes away.
    pub fn follow_invalidations(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let mut feed = self.store().subscribe_invalidations()?;
        let kms: Weak<Kms> = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                let received = feed.recv().await;
                let Some(kms) = kms.upgrade() else { return };
                match received {
                    Ok(what) => kms.apply_invalidation(&what),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "fell behind the store's invalidation feed; dropping every cache"
                        );
                        kms.invalidate_everything();
                    }
                    Err(RecvError::Closed) => {
                        kms.invalidate_everything();
                        return;
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_stale_after_a_bump() {
        let g = Generation::default();
        let t = g.ticket();
        assert!(g.is_current(&t));
        g.bump();
        assert!(!g.is_current(&t));
        assert!(g.is_current(&g.ticket()));
    }
}
