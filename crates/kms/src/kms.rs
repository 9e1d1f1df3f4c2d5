//! The KMS service object: the store, the root of trust, the clock, the audit sink and the caches,
//! and the one entry point [`Kms::call`] through which every operation runs (so audit and
//! authorization cannot be bypassed by in-process callers).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tresor_crypto::{KeyMaterialId, RootKey, SymmetricKeyMaterial};

use crate::audit::{AuditSink, Trail, build_event};
use crate::authz::{Access, PolicyCache};
use crate::clock::Clock;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::flight::Flights;
use crate::identity::Identities;
use crate::ops::Operation;
use crate::state::{self, KeyOp};
use crate::store::{KeyRecord, Store, StoreError, material_wrap_purpose};
use crate::types::{AccountId, KeyId, KeyRef, KeySpec, Region, alias_arn, key_arn};

/// Tunables of the core.
#[derive(Clone, Debug)]
pub struct KmsConfig {
    /// How long a cached key record may be used before it is re-read from the store. Local writes
    /// invalidate at once; this bounds staleness of writes made by other nodes.
    pub key_cache_ttl: Duration,
    pub key_cache_max_entries: usize,
    pub identity_cache_ttl: Duration,
    pub identity_cache_max_entries: usize,
    /// Customer managed keys per account and region (AWS: 100,000).
    pub max_keys_per_region: u64,
    /// The periodic key-usage flush writes this many rows per store transaction...
    pub key_usage_flush_chunk: usize,
    /// ...and pauses this long between transactions (unless a `GetKeyLastUsage` is waiting), so
    /// a flush of many keys does not take a core in one piece.
    pub key_usage_flush_pause: Duration,
    /// The periodic key-usage flush writes a key's use again only once this long has passed
    /// since it last wrote one for that key (a key's first use goes out with the next flush);
    /// `GetKeyLastUsage` and shutdown write everything.
    pub key_usage_rewrite_after: Duration,
}

impl Default for KmsConfig {
    fn default() -> Self {
        KmsConfig {
            key_cache_ttl: Duration::from_secs(1),
            key_cache_max_entries: 200_000,
            identity_cache_ttl: Duration::from_secs(1),
            identity_cache_max_entries: 100_000,
            max_keys_per_region: 100_000,
            // 100,000 keys in use: ~0.3 s of one core in one piece, which showed in the calls'
            // p99; in 1,000-row transactions 10 ms apart, ~10-25 % of a core for 1-2 s.
            key_usage_flush_chunk: 1_000,
            key_usage_flush_pause: Duration::from_millis(10),
            // 100,000 keys in use, each every few seconds: 10,000 rows a second rewritten with a
            // 10-second flush alone (~13 % of the server's CPU per call), 1,700 with this.
            key_usage_rewrite_after: Duration::from_secs(60),
        }
    }
}

/// A key record with its material unwrapped, ready for cryptographic use.
pub struct LoadedKey {
    pub record: KeyRecord,
    pub arn: String,
    materials: HashMap<KeyMaterialId, Arc<SymmetricKeyMaterial>>,
    /// The current symmetric material, also in `materials`: held directly because every
    /// encryption asks for it (one pointer instead of a hash-table probe into another allocation).
    current: Option<(KeyMaterialId, Arc<SymmetricKeyMaterial>)>,
    /// Asymmetric and HMAC keys: their unwrapped, parsed current material.
    secret: Option<crate::asymmetric::KeySecret>,
    /// The key policy, parsed once per load and shared with every cached key whose policy text
    /// is the same ([`PolicyInterner`]); `None` if the stored text does not parse (then only
    /// grants can allow anything).
    pub(crate) policy: Option<Arc<tresor_policy::Policy>>,
    /// The key's grants.
    pub(crate) grants: Vec<crate::store::GrantRecord>,
    /// Each grant's constraints in the evaluator's form (converted once per load).
    pub(crate) grant_constraints: Vec<Option<tresor_policy::GrantConstraints>>,
    /// The key's alias names (`kms:ResourceAliases`).
    pub(crate) aliases: Vec<String>,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("arn", &self.arn)
            .field("materials", &self.materials.len())
            .finish()
    }
}

impl LoadedKey {
    fn load(
        record: KeyRecord,
        root: &RootKey,
        policies: &PolicyInterner,
        grants: Vec<crate::store::GrantRecord>,
        aliases: Vec<String>,
    ) -> Result<LoadedKey, KmsError> {
        let arn = record.arn();
        let mut materials = HashMap::new();
        if record.key_spec == KeySpec::SymmetricDefault {
            for m in &record.materials {
                let secret = root
                    .unwrap(&material_wrap_purpose(&arn, &m.id), &m.wrapped)
                    .map_err(|_| {
                        KmsError::internal(format!(
                            "key material of {arn} does not unwrap under this root key"
                        ))
                    })?;
                let material =
                    SymmetricKeyMaterial::from_secret(secret).map_err(KmsError::internal)?;
                materials.insert(m.id, Arc::new(material));
            }
        }
        let secret = match record.current_material.and_then(|id| record.material(&id)) {
            Some(m) if record.key_spec != KeySpec::SymmetricDefault => {
                let unwrapped = root
                    .unwrap(&material_wrap_purpose(&arn, &m.id), &m.wrapped)
                    .map_err(|_| {
                        KmsError::internal(format!(
                            "key material of {arn} does not unwrap under this root key"
                        ))
                    })?;
                let loaded = crate::asymmetric::load(&record, unwrapped, m.public_key.as_deref())
                    .map_err(|e| {
                    KmsError::internal(format!("key material of {arn} does not load: {e}"))
                })?;
                Some(loaded)
            }
            _ => None,
        };
        let current = record
            .current_material
            .and_then(|id| Some((id, materials.get(&id)?.clone())));
        let policy = match policies.intern(&record.policy) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(key = %arn, error = %e, "stored key policy does not parse; it allows nothing");
                None
            }
        };
        Ok(LoadedKey {
            record,
            arn,
            materials,
            current,
            secret,
            policy,
            grant_constraints: grant_constraints_of(&grants),
            grants,
            aliases,
        })
    }

    pub fn material(&self, id: &KeyMaterialId) -> Option<&Arc<SymmetricKeyMaterial>> {
        match &self.current {
            Some((current, m)) if current == id => Some(m),
            _ => self.materials.get(id),
        }
    }

    /// The private key of an asymmetric key.
    pub(crate) fn asymmetric_key(
        &self,
    ) -> Result<&tresor_crypto::asymmetric::AsymmetricPrivateKey, KmsError> {
        match &self.secret {
            Some(crate::asymmetric::KeySecret::Asymmetric(k)) => Ok(k),
            _ => Err(KmsError::internal(format!(
                "{} has no asymmetric key material",
                self.arn
            ))),
        }
    }

    /// The HMAC key of an HMAC key.
    pub(crate) fn hmac_key(&self) -> Result<&tresor_crypto::hmac_key::HmacKeyMaterial, KmsError> {
        match &self.secret {
            Some(crate::asymmetric::KeySecret::Hmac(k)) => Ok(k),
            _ => Err(KmsError::internal(format!(
                "{} has no HMAC key material",
                self.arn
            ))),
        }
    }

    /// The current material for new encryptions.
    pub fn current_material(
        &self,
    ) -> Result<(KeyMaterialId, &Arc<SymmetricKeyMaterial>), KmsError> {
        match (&self.current, self.record.current_material) {
            (Some((id, m)), _) => Ok((*id, m)),
            (None, None) => Err(KmsError::internal(format!(
                "{} has no current key material",
                self.arn
            ))),
            (None, Some(_)) => Err(KmsError::internal(format!(
                "{} current material missing",
                self.arn
            ))),
        }
    }
}

/// Parsed key policies by text, shared by every loaded key with the same policy (most keys of an
/// account keep the default one). With many keys cached, each call then reads one policy that
/// stays in the CPU cache instead of its own copy among hundreds of megabytes, and each policy is
/// parsed once. Entries hold weak references: a policy lives as long as a cached key uses it.
#[derive(Default)]
pub(crate) struct PolicyInterner {
    entries: Mutex<InternedPolicies>,
}

#[derive(Default)]
struct InternedPolicies {
    by_text: HashMap<String, std::sync::Weak<tresor_policy::Policy>>,
    /// Size past which dead entries are swept (twice the live count after the last sweep), so
    /// the table stays within twice the number of distinct policies in use plus a constant.
    sweep_at: usize,
}

impl PolicyInterner {
    const MIN_SWEEP: usize = 1024;

    pub(crate) fn intern(
        &self,
        text: &str,
    ) -> Result<Arc<tresor_policy::Policy>, tresor_policy::PolicyError> {
        if let Some(p) = self.lookup(text) {
            return Ok(p);
        }
        let parsed = Arc::new(tresor_policy::parse_key_policy(text)?);
        let Ok(mut t) = self.entries.lock() else {
            return Ok(parsed);
        };
        // Another load may have interned the same text meanwhile: keep one copy.
        if let Some(p) = t.by_text.get(text).and_then(std::sync::Weak::upgrade) {
            return Ok(p);
        }
        t.by_text.insert(text.to_owned(), Arc::downgrade(&parsed));
        if t.by_text.len() > t.sweep_at.max(Self::MIN_SWEEP) {
            t.by_text.retain(|_, p| p.strong_count() > 0);
            t.sweep_at = 2 * t.by_text.len();
        }
        Ok(parsed)
    }

    fn lookup(&self, text: &str) -> Option<Arc<tresor_policy::Policy>> {
        self.entries
            .lock()
            .ok()?
            .by_text
            .get(text)
            .and_then(std::sync::Weak::upgrade)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|t| t.by_text.len()).unwrap_or(0)
    }
}

struct KeyCache {
    ttl: Duration,
    max_entries: usize,
    /// Entry age counts from when its load began (see `crate::invalidation`).
    entries: Mutex<HashMap<KeyId, (Instant, Arc<LoadedKey>)>>,
    generation: crate::invalidation::Generation,
    policies: PolicyInterner,
    /// Misses of one key load it once.
    flights: Flights<(Region, KeyId), KeyLoad>,
}

/// What loading a key answers: the key, `None` when it does not exist, or the store's error.
type KeyLoad = Result<Option<Arc<LoadedKey>>, KmsError>;

impl KeyCache {
    fn get(&self, region: &Region, key_id: &KeyId) -> Option<Arc<LoadedKey>> {
        let entries = self.entries.lock().ok()?;
        let (at, key) = entries.get(key_id)?;
        (at.elapsed() < self.ttl && &key.record.region == region).then(|| key.clone())
    }
    fn put(&self, key: Arc<LoadedKey>, ticket: crate::invalidation::LoadTicket) {
        if let Ok(mut entries) = self.entries.lock() {
            if !self.generation.is_current(&ticket) {
                // Invalidated while it was loading: the load may have read the old state.
                return;
            }
            if entries.len() >= self.max_entries {
                // Bounded memory: evict expired entries, and if that is not enough, everything.
                let ttl = self.ttl;
                entries.retain(|_, (at, _)| at.elapsed() < ttl);
                if entries.len() >= self.max_entries {
                    entries.clear();
                }
            }
            entries.insert(key.record.key_id, (ticket.started, key));
        }
    }
    fn invalidate(&self, key_id: &KeyId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key_id);
            self.generation.bump();
        }
    }
    fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
            self.generation.bump();
        }
    }
}

/// The evaluator's form of grant constraints.
pub(crate) fn grant_constraints_of(
    grants: &[crate::store::GrantRecord],
) -> Vec<Option<tresor_policy::GrantConstraints>> {
    grants
        .iter()
        .map(|g| {
            g.constraints
                .as_ref()
                .map(|c| tresor_policy::GrantConstraints {
                    encryption_context_subset: c.encryption_context_subset.clone(),
                    encryption_context_equals: c.encryption_context_equals.clone(),
                })
        })
        .collect()
}

/// A resolved key.
pub struct Resolved {
    pub key: Arc<LoadedKey>,
    /// The alias name when the caller used an alias (`kms:RequestAlias`).
    #[allow(dead_code)]
    pub alias: Option<String>,
}

pub struct Kms {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) root: Arc<RootKey>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) audit: Arc<dyn AuditSink>,
    keys: KeyCache,
    /// Last successful cryptographic use of keys, collected in memory and flushed in batches
    /// (GetKeyLastUsage).
    pub(crate) usage: crate::key_usage::UsageBuffer,
    /// Striped per-key write locks: read-modify-write of one key is serialised on this node, so
    /// compare-and-set conflicts only arise between nodes.
    key_locks: Vec<tokio::sync::Mutex<()>>,
    identities: Identities,
    pub(crate) policy_cache: PolicyCache,
    pub(crate) config: KmsConfig,
}

impl Kms {
    pub fn new(
        store: Arc<dyn Store>,
        root: Arc<RootKey>,
        clock: Arc<dyn Clock>,
        audit: Arc<dyn AuditSink>,
        config: KmsConfig,
    ) -> Kms {
        let identities = Identities::new(
            store.clone(),
            root.clone(),
            config.identity_cache_ttl,
            config.identity_cache_max_entries,
        );
        Kms {
            key_locks: (0..KEY_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            keys: KeyCache {
                ttl: config.key_cache_ttl,
                max_entries: config.key_cache_max_entries,
                entries: Mutex::new(HashMap::new()),
                generation: Default::default(),
                policies: PolicyInterner::default(),
                flights: Flights::default(),
            },
            store,
            root,
            clock,
            audit,
            usage: Default::default(),
            identities,
            policy_cache: PolicyCache::new(config.identity_cache_ttl),
            config,
        }
    }

    pub fn identities(&self) -> &Identities {
        &self.identities
    }
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    pub fn root_key(&self) -> &Arc<RootKey> {
        &self.root
    }

    /// Runs one operation: executes it, emits its audit record (success or failure) and only then
    /// returns. If the record cannot be written the call fails with `KMSInternalException`.
    pub async fn call<O: Operation>(
        &self,
        ctx: &CallContext,
        op: O,
    ) -> Result<O::Output, KmsError> {
        let mut trail = Trail {
            request_parameters: op.audit_parameters(),
            ..Trail::default()
        };
        let result = op.execute(self, ctx, &mut trail).await;
        let event = build_event(
            ctx,
            O::NAME,
            O::READ_ONLY,
            self.clock.now(),
            trail,
            result.as_ref().err(),
        );
        let used = match &result {
            Ok(_) => crate::key_usage::used_keys(O::NAME, &event, &ctx.region),
            Err(_) => None,
        };
        // A successful cross-account call is logged in the caller's account and again in each
        // key owner's account, linked by sharedEventID (denied ones only in the caller's).
        let (event, copies) = if result.is_ok() {
            crate::audit::with_owner_copies(event)
        } else {
            (event, Vec::new())
        };
        if let Err(e) = self.audit.record(event).await {
            return Err(KmsError::internal(e));
        }
        for copy in copies {
            if let Err(e) = self.audit.record(copy).await {
                return Err(KmsError::internal(e));
            }
        }
        self.usage.note(used);
        result
    }

    /// Runs scheduled work that has fallen due (key deletion after its waiting period, automatic
    /// rotation, expiry of imported material). Called periodically by the server and whenever a
    /// test moves the clock. Failures are logged and retried on the next run.
    pub async fn run_due_work(&self) {
        crate::scheduler::run_due_work(self).await;
    }

    /// Records a call that failed before it reached an operation (validation or serialization
    /// errors found at the protocol edge, after authentication).
    pub async fn record_rejected(
        &self,
        ctx: &CallContext,
        event_name: &str,
        read_only: bool,
        request_parameters: Option<Map<String, Value>>,
        error: &KmsError,
    ) -> Result<(), KmsError> {
        let trail = Trail {
            request_parameters,
            ..Trail::default()
        };
        let event = build_event(
            ctx,
            event_name,
            read_only,
            self.clock.now(),
            trail,
            Some(error),
        );
        self.audit.record(event).await.map_err(KmsError::internal)
    }

    /// Loads a key by region and id, through the cache.
    pub(crate) async fn load_key(
        &self,
        region: &Region,
        key_id: &KeyId,
    ) -> Result<Option<Arc<LoadedKey>>, KmsError> {
        if let Some(k) = self.keys.get(region, key_id) {
            return Ok(Some(k));
        }
        let flight = (region.clone(), *key_id);
        self.keys
            .flights
            .load(&flight, &self.keys.generation, self.keys.ttl, |ticket| {
                self.load_key_from_store(region, key_id, ticket)
            })
            .await
    }

    /// Reads a key with its grants and aliases, unwraps its material and caches it.
    async fn load_key_from_store(
        &self,
        region: &Region,
        key_id: &KeyId,
        ticket: crate::invalidation::LoadTicket,
    ) -> Result<Option<Arc<LoadedKey>>, KmsError> {
        let Some(record) = self.store.get_key(region, key_id).await? else {
            return Ok(None);
        };
        let grants = self
            .store
            .list_grants(region, key_id, None, MAX_GRANTS_PER_KEY)
            .await?
            .into_iter()
            .map(|(_, g)| g)
            .collect();
        // kms:ResourceAliases stops matching past 50 aliases, as in AWS.
        let aliases = self
            .store
            .list_aliases(&record.account, region, Some(key_id), None, 51)
            .await?
            .into_iter()
            .map(|a| a.name)
            .collect::<Vec<_>>();
        let aliases = if aliases.len() > 50 {
            Vec::new()
        } else {
            aliases
        };
        let loaded = Arc::new(LoadedKey::load(
            record,
            &self.root,
            &self.keys.policies,
            grants,
            aliases,
        )?);
        self.keys.put(loaded.clone(), ticket);
        Ok(Some(loaded))
    }

    /// Resolves a caller-supplied key identifier in the caller's account and region and
    /// authorizes `action` on it (no encryption context, no grant tokens).
    ///
    /// `aliases_allowed` is false for the operations that take only a key id or key ARN.
    pub(crate) async fn resolve(
        &self,
        ctx: &CallContext,
        input: &str,
        aliases_allowed: bool,
        action: &'static str,
        trail: &mut Trail,
    ) -> Result<Resolved, KmsError> {
        self.resolve_for(ctx, input, aliases_allowed, Access::new(action), trail)
            .await
    }

    /// Resolves a key identifier and authorizes `access` on the key (key policy, identity
    /// policies, grants). A key of another account that does not exist answers the same
    /// AccessDenied as one the caller may not use, so callers learn nothing about other
    /// accounts' keys.
    pub(crate) async fn resolve_for(
        &self,
        ctx: &CallContext,
        input: &str,
        aliases_allowed: bool,
        access: Access<'_>,
        trail: &mut Trail,
    ) -> Result<Resolved, KmsError> {
        let (account, key_id, alias) = self
            .locate(ctx, input, aliases_allowed, access.action)
            .await?;
        let Some(key) = self
            .load_key(&ctx.region, &key_id)
            .await?
            .filter(|k| k.record.account == account)
        else {
            let arn = key_arn(&ctx.region, &account, &key_id);
            if account != ctx.caller.account {
                return Err(access_denied(ctx, access.action, &arn));
            }
            return Err(KmsError::NotFound(format!("Key '{arn}' does not exist")));
        };
        trail.add_resource(&key.record.account, &key.arn);
        self.authorize(ctx, &key, &access, alias.as_deref()).await?;
        Ok(Resolved { key, alias })
    }

    /// Finds which key an identifier names: (account, key id, alias name used).
    pub(crate) async fn locate(
        &self,
        ctx: &CallContext,
        input: &str,
        aliases_allowed: bool,
        action: &'static str,
    ) -> Result<(AccountId, KeyId, Option<String>), KmsError> {
        let key_ref = KeyRef::parse(input)?;
        Ok(match key_ref {
            KeyRef::Id(id) => (ctx.caller.account.clone(), id, None),
            KeyRef::Arn {
                region,
                account,
                key_id,
            } => {
                if region != ctx.region {
                    return Err(KmsError::NotFound(format!("Invalid arn {region}")));
                }
                (account, key_id, None)
            }
            KeyRef::AliasArn { .. } if !aliases_allowed => {
                return Err(KmsError::InvalidArn(
                    "Key Aliases are not supported for this operation.".to_owned(),
                ));
            }
            KeyRef::AliasName(_) if !aliases_allowed => {
                return Err(KmsError::NotFound(format!("Invalid keyId '{input}'")));
            }
            KeyRef::AliasArn {
                region,
                account,
                alias_name,
            } => {
                if region != ctx.region {
                    return Err(KmsError::NotFound(format!("Invalid arn {region}")));
                }
                let arn = alias_arn(&region, &account, &alias_name);
                let alias = self.find_alias(ctx, &account, &region, &alias_name).await?;
                match alias {
                    Some(a) => (account, a.target_key_id, Some(alias_name)),
                    // Another account's alias that does not exist: no different from one the
                    // caller may not use.
                    None if account != ctx.caller.account => {
                        return Err(access_denied(ctx, action, &arn));
                    }
                    None => return Err(KmsError::NotFound(format!("Alias {arn} is not found."))),
                }
            }
            KeyRef::AliasName(name) => {
                let account = ctx.caller.account.clone();
                let alias = self
                    .find_alias(ctx, &account, &ctx.region, &name)
                    .await?
                    .ok_or_else(|| {
                        KmsError::NotFound(format!(
                            "Alias {} is not found.",
                            alias_arn(&ctx.region, &account, &name)
                        ))
                    })?;
                (account, alias.target_key_id, Some(name))
            }
        })
    }

    #[allow(dead_code)] // used by the alias operations
    /// Authorizes an action on an alias resource (`arn:aws:kms:…:alias/…`), which only identity
    /// policies (and the account root) can allow; aliases never cross accounts.
    pub(crate) async fn authorize_account(
        &self,
        ctx: &CallContext,
        account: &AccountId,
        action: &'static str,
        resource_arn: &str,
    ) -> Result<(), KmsError> {
        if &ctx.caller.account != account {
            return Err(access_denied(ctx, action, resource_arn));
        }
        self.authorize_iam(ctx, &Access::new(action), resource_arn)
            .await
    }

    /// Drops a key from the cache (after its grants, aliases or record changed).
    pub(crate) fn invalidate_key(&self, key_id: &KeyId) {
        self.keys.invalidate(key_id);
    }

    /// Drops every cached key (invalidations may have been lost).
    pub(crate) fn invalidate_all_keys(&self) {
        self.keys.clear();
    }

    /// Checks the key's state for `op`.
    pub(crate) fn check_state(&self, op: KeyOp, key: &LoadedKey) -> Result<(), KmsError> {
        state::check(op, key.record.state, &key.arn)
    }

    /// Read-modify-write of a key record with compare-and-set, retried on conflicts.
    /// `f` may refuse (its error is returned unchanged). The cache entry is invalidated.
    pub(crate) async fn modify_key<F>(
        &self,
        key: &LoadedKey,
        mut f: F,
    ) -> Result<KeyRecord, KmsError>
    where
        F: FnMut(&mut KeyRecord) -> Result<(), KmsError> + Send,
    {
        let (region, key_id) = (&key.record.region, &key.record.key_id);
        let stripe = usize::from(key_id.0.as_bytes()[0]) % KEY_LOCK_STRIPES;
        let _guard = match self.key_locks.get(stripe) {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        for attempt in 0..64u32 {
            if attempt > 0 {
                // Another node won the race: back off a little (jittered) and retry.
                let jitter = u64::from(
                    tresor_crypto::random_array::<1>()
                        .map(|b| b[0])
                        .unwrap_or(0),
                );
                tokio::time::sleep(std::time::Duration::from_millis(
                    u64::from(attempt.min(10)) * 2 + jitter % 5,
                ))
                .await;
            }
            let Some(mut record) = self.store.get_key(region, key_id).await? else {
                return Err(KmsError::NotFound(format!(
                    "Key '{}' does not exist",
                    key.arn
                )));
            };
            f(&mut record)?;
            match self.store.update_key(&record).await {
                Ok(()) => {
                    self.keys.invalidate(key_id);
                    record.version += 1;
                    return Ok(record);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(KmsError::Conflict(
            "The request could not be completed because of a concurrent modification. Retry the request.".to_owned(),
        ))
    }
}

const KEY_LOCK_STRIPES: usize = 64;

/// AWS's quota of grants per key.
pub(crate) const MAX_GRANTS_PER_KEY: usize = 50_000;

/// AWS's modern AccessDenied message, for a request no policy could allow (another account's
/// key or alias that does not exist).
pub(crate) fn access_denied(ctx: &CallContext, action: &str, resource_arn: &str) -> KmsError {
    KmsError::AccessDenied(format!(
        "User: {} is not authorized to perform: kms:{action} on resource: {resource_arn} because no resource-based policy allows the kms:{action} action",
        crate::authz::caller_arn(ctx)
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_the_same_policy_text_share_one_parsed_policy() {
        let interner = PolicyInterner::default();
        let a =
            crate::ops::create_key::default_key_policy(&AccountId::parse("111122223333").unwrap());
        let b =
            crate::ops::create_key::default_key_policy(&AccountId::parse("444455556666").unwrap());
        let (a1, a2, b1) = (
            interner.intern(&a).unwrap(),
            interner.intern(&a.clone()).unwrap(),
            interner.intern(&b).unwrap(),
        );
        assert!(Arc::ptr_eq(&a1, &a2));
        assert!(!Arc::ptr_eq(&a1, &b1));
        assert!(interner.intern("{not a policy").is_err());
        // Once no key holds a policy it is parsed again (not resurrected), and dead entries are
        // swept: the table stays bounded however many distinct policies come and go.
        drop((a1, a2));
        let a3 = interner.intern(&a).unwrap();
        assert_eq!(Arc::strong_count(&a3), 1);
        for i in 0..5 * PolicyInterner::MIN_SWEEP {
            let text = a.replace("Enable IAM User Permissions", &format!("Statement {i}"));
            drop(interner.intern(&text).unwrap());
        }
        assert!(
            interner.len() <= 2 * PolicyInterner::MIN_SWEEP + 1,
            "{}",
            interner.len()
        );
        assert!(Arc::ptr_eq(&a3, &interner.intern(&a).unwrap()));
        assert!(Arc::ptr_eq(&b1, &interner.intern(&b).unwrap()));
    }
}
