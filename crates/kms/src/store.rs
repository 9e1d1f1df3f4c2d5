//! The store trait every backend implements, and the records it holds.
//!
//! Backends keep records durably before returning `Ok` — an acknowledged key is never lost.
//! Records hold key material and secrets only wrapped under the root key. Updates of a key record
//! are compare-and-set on [`KeyRecord::version`], so concurrent writers (several nodes on one
//! database) never lose an update.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tresor_crypto::KeyMaterialId;

use crate::identity::{AccessKeyRecord, PrincipalRecord};
use crate::types::{
    AccountId, KeyId, KeyManager, KeySpec, KeyState, KeyUsage, Origin, Region, Timestamp,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A compare-and-set lost (the record changed since it was read), or a unique key already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend cannot be reached right now; the request may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("store error: {0}")]
    Internal(String),
}

/// One generation of a key's material, wrapped under the root key with purpose
/// [`material_wrap_purpose`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialRecord {
    #[serde(with = "material_id_hex")]
    pub id: KeyMaterialId,
    #[serde(with = "b64")]
    pub wrapped: Vec<u8>,
    pub created: Timestamp,
    /// How this generation came to be when it replaced an earlier one (absent for a key's
    /// first material and for imported material). `created` is its rotation date.
    #[serde(default)]
    pub rotation: Option<crate::types::RotationType>,
    /// Asymmetric keys: the public key (DER `SubjectPublicKeyInfo`, not secret); `wrapped` then
    /// holds the PKCS#8 private key. HMAC keys: `wrapped` holds the raw HMAC key. Absent for
    /// symmetric material and in records written before asymmetric keys existed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_b64")]
    pub public_key: Option<Vec<u8>>,
}

/// The purpose string binding wrapped key material to its key ARN and material id.
pub fn material_wrap_purpose(key_arn: &str, material_id: &KeyMaterialId) -> Vec<u8> {
    let mut p = b"key-material\0".to_vec();
    p.extend_from_slice(key_arn.as_bytes());
    p.push(0);
    p.extend_from_slice(material_id.to_hex().as_bytes());
    p
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(rename = "TagKey")]
    pub key: String,
    #[serde(rename = "TagValue")]
    pub value: String,
}

/// Everything Tresor knows about one KMS key. Stored as a versioned document; the `format` field
/// allows explicit migration when the layout changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub format: u32,
    pub key_id: KeyId,
    pub account: AccountId,
    pub region: Region,
    pub created: Timestamp,
    pub description: String,
    pub key_spec: KeySpec,
    pub key_usage: KeyUsage,
    pub origin: Origin,
    pub key_manager: KeyManager,
    pub state: KeyState,
    #[serde(default)]
    pub deletion_date: Option<Timestamp>,
    #[serde(default)]
    pub pending_window_days: Option<u32>,
    pub policy: String,
    pub materials: Vec<MaterialRecord>,
    #[serde(default, with = "opt_material_id_hex")]
    pub current_material: Option<KeyMaterialId>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Automatic and on-demand rotation bookkeeping (absent in records written before rotation
    /// existed: rotation off).
    #[serde(default)]
    pub rotation: RotationState,
    /// `Origin` EXTERNAL keys: the material imported into the key, which stays on record after
    /// the material itself is deleted or expires (only the same material may be re-imported).
    #[serde(default)]
    pub imported: Option<ImportedMaterial>,
    /// Incremented by every successful update (compare-and-set token). Not part of the document.
    #[serde(skip)]
    pub version: u64,
}

pub const KEY_RECORD_FORMAT: u32 = 1;

impl KeyRecord {
    pub fn arn(&self) -> String {
        crate::types::key_arn(&self.region, &self.account, &self.key_id)
    }
    pub fn material(&self, id: &KeyMaterialId) -> Option<&MaterialRecord> {
        self.materials.iter().find(|m| &m.id == id)
    }

    /// When scheduled work falls due for this key: deletion at the end of its waiting period,
    /// the next automatic rotation (only while the key is enabled: rotation pauses while it is
    /// disabled and catches up when it is enabled again), and the expiry of imported material.
    pub fn next_due(&self) -> Option<Timestamp> {
        use crate::types::KeyState;
        let deletion = match self.state {
            KeyState::PendingDeletion => self.deletion_date,
            _ => None,
        };
        let rotation = (self.state == KeyState::Enabled
            && self.origin == Origin::AwsKms
            && self.rotation.period_days.is_some())
        .then_some(self.rotation.next_rotation)
        .flatten();
        let expiry = self.imported.as_ref().and_then(|i| {
            (i.expiration_model == crate::types::ExpirationModel::KeyMaterialExpires
                && self.material(&i.material_id).is_some())
            .then_some(i.valid_to)
            .flatten()
        });
        [deletion, rotation, expiry].into_iter().flatten().min()
    }

    /// Whether the key's material is currently present (always for `AWS_KMS` keys; for
    /// `EXTERNAL` keys only between import and deletion or expiry).
    pub fn has_material(&self) -> bool {
        self.current_material
            .is_some_and(|id| self.material(&id).is_some())
    }
}

/// Rotation bookkeeping of a key.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RotationState {
    /// `Some(days)` while automatic rotation is enabled.
    #[serde(default)]
    pub period_days: Option<u32>,
    /// When the next automatic rotation is due (while enabled).
    #[serde(default)]
    pub next_rotation: Option<Timestamp>,
    /// On-demand rotations performed so far (AWS allows 25 per key).
    #[serde(default)]
    pub on_demand_count: u32,
}

/// What was imported into an `EXTERNAL` key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedMaterial {
    /// The id of the imported material (a digest of it, so re-imports are recognised).
    #[serde(with = "material_id_hex")]
    pub material_id: KeyMaterialId,
    pub expiration_model: crate::types::ExpirationModel,
    /// With `KEY_MATERIAL_EXPIRES`: when the material is deleted.
    #[serde(default)]
    pub valid_to: Option<Timestamp>,
}

/// An alias: a name in an account and region pointing at one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub account: AccountId,
    pub region: Region,
    /// `alias/<name>`.
    pub name: String,
    pub target_key_id: KeyId,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// Grant constraints on the encryption context.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GrantConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<std::collections::BTreeMap<String, String>>,
}

/// A grant on a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub key_region: Region,
    pub key_id: KeyId,
    pub key_account: AccountId,
    /// 64 lower-case hex characters.
    pub grant_id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub grantee_principal: String,
    #[serde(default)]
    pub retiring_principal: Option<String>,
    pub operations: Vec<String>,
    #[serde(default)]
    pub constraints: Option<GrantConstraints>,
    /// `arn:aws:iam::<account>:root` of the account that created the grant.
    pub issuing_account: String,
    pub created: Timestamp,
}

/// The last successful cryptographic use of a key (GetKeyLastUsage).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUsageRecord {
    pub region: Region,
    pub key_id: KeyId,
    pub operation: String,
    pub timestamp: Timestamp,
    pub event_id: String,
    pub request_id: String,
}

/// One row of a key listing: the store's ordering position and the key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyListEntry {
    pub seq: i64,
    pub key_id: KeyId,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reachability check (for `/health`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// A small named value (schema facts, the root key check value).
    async fn get_meta(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Inserts the value unless one exists; returns the value now stored.
    async fn put_meta_if_absent(&self, name: &str, value: &str) -> Result<String, StoreError>;

    async fn upsert_principal(&self, principal: &PrincipalRecord) -> Result<(), StoreError>;
    async fn get_principal(&self, arn: &str) -> Result<Option<PrincipalRecord>, StoreError>;
    async fn upsert_access_key(&self, key: &AccessKeyRecord) -> Result<(), StoreError>;
    async fn get_access_key(
        &self,
        access_key_id: &str,
    ) -> Result<Option<AccessKeyRecord>, StoreError>;
    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>, StoreError>;

    /// Inserts a new key; `Conflict` if the (region, key id) exists. Sets `version` to 1.
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    async fn get_key(
        &self,
        region: &Region,
        key_id: &KeyId,
    ) -> Result<Option<KeyRecord>, StoreError>;
    /// Compare-and-set: succeeds only if the stored version equals `key.version`; the stored
    /// version becomes `key.version + 1`. `Conflict` otherwise.
    async fn update_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    /// Keys of an account in a region, in creation order, after position `after`.
    async fn list_keys(
        &self,
        account: &AccountId,
        region: &Region,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<KeyListEntry>, StoreError>;
    async fn count_keys(&self, account: &AccountId, region: &Region) -> Result<u64, StoreError>;
    /// Keys whose [`KeyRecord::next_due`] is at or before `now` (deletion, rotation, expiry), any
    /// account and region, at most `limit`.
    async fn keys_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Region, KeyId)>, StoreError>;
    /// Deletes a key for good with its aliases and grants, atomically, if its version is still
    /// `expected_version` (`Conflict` otherwise).
    async fn purge_key(
        &self,
        region: &Region,
        key_id: &KeyId,
        expected_version: u64,
    ) -> Result<(), StoreError>;

    /// `Conflict` if the name exists in the account and region.
    async fn create_alias(&self, alias: &AliasRecord) -> Result<(), StoreError>;
    async fn get_alias(
        &self,
        account: &AccountId,
        region: &Region,
        name: &str,
    ) -> Result<Option<AliasRecord>, StoreError>;
    /// Points an existing alias at another key; `false` if the alias does not exist.
    async fn update_alias(&self, alias: &AliasRecord) -> Result<bool, StoreError>;
    async fn delete_alias(
        &self,
        account: &AccountId,
        region: &Region,
        name: &str,
    ) -> Result<bool, StoreError>;
    /// Aliases of an account and region (optionally of one key), ordered by name, after `after`.
    async fn list_aliases(
        &self,
        account: &AccountId,
        region: &Region,
        target: Option<&KeyId>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AliasRecord>, StoreError>;

    /// Inserts a grant. With `idempotency_token` (derived from a grant's name and properties), an
    /// existing grant with the same token on the same key is returned instead of a new one.
    async fn insert_grant(
        &self,
        grant: &GrantRecord,
        idempotency_token: Option<&str>,
    ) -> Result<GrantRecord, StoreError>;
    async fn get_grant(
        &self,
        region: &Region,
        key_id: &KeyId,
        grant_id: &str,
    ) -> Result<Option<GrantRecord>, StoreError>;
    async fn delete_grant(
        &self,
        region: &Region,
        key_id: &KeyId,
        grant_id: &str,
    ) -> Result<bool, StoreError>;
    /// Grants of a key in creation order, after position `after`; (position, grant).
    async fn list_grants(
        &self,
        region: &Region,
        key_id: &KeyId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, GrantRecord)>, StoreError>;
    /// Grants (of any key) whose retiring principal is `retiring_principal`.
    async fn list_retirable_grants(
        &self,
        retiring_principal: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, GrantRecord)>, StoreError>;
    async fn count_grants(&self, region: &Region, key_id: &KeyId) -> Result<u64, StoreError>;

    /// Records the latest use of keys (newer timestamps win).
    async fn record_key_usage(&self, usage: &[KeyUsageRecord]) -> Result<(), StoreError>;
    async fn get_key_usage(
        &self,
        region: &Region,
        key_id: &KeyId,
    ) -> Result<Option<KeyUsageRecord>, StoreError>;
    async fn list_principals(&self) -> Result<Vec<PrincipalRecord>, StoreError>;

    /// The invalidation feed of a store shared by several nodes: every committed write that
    /// changes state a node caches (a key record, a key's grants or aliases, a principal, an access
    /// key) is announced to every subscriber on every node, this one included. A backend publishes
    /// as part of the write itself (atomically with its commit), so no caller can forget to.
    /// Subscribers drop what the announcement names; when announcements may have been lost (the
    /// backend reconnected, or the subscriber lagged) they see [`Invalidation::All`] or a lag error
    /// and drop everything. The caches' one-second TTL bounds staleness even when the feed is silent.
    ///
    /// `None` for a backend only one node can use (SQLite: one process owns the file, and the core
    /// invalidates its own caches after its own writes; out-of-process writers such as
    /// `tresor admin` are bounded by the TTL).
    fn subscribe_invalidations(&self) -> Option<tokio::sync::broadcast::Receiver<Invalidation>>;
}

/// Cached state that a committed write made stale (see [`Store::subscribe_invalidations`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// A key's record, grants or aliases changed, or the key was deleted.
    Key { region: Region, key_id: KeyId },
    /// A principal changed (its identity policies).
    Principal { arn: String },
    /// An access key changed (created, disabled, re-keyed).
    AccessKey { access_key_id: String },
    /// Announcements may have been lost: drop everything cached.
    All,
}

pub(crate) mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

mod opt_b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_some(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| {
                STANDARD
                    .decode(s.as_bytes())
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

mod material_id_hex {
    use serde::{Deserialize, Deserializer, Serializer};
    use tresor_crypto::KeyMaterialId;

    pub fn serialize<S: Serializer>(v: &KeyMaterialId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_hex())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KeyMaterialId, D::Error> {
        let s = String::deserialize(d)?;
        KeyMaterialId::from_hex(&s).ok_or_else(|| serde::de::Error::custom("bad key material id"))
    }
}

mod opt_material_id_hex {
    use serde::{Deserialize, Deserializer, Serializer};
    use tresor_crypto::KeyMaterialId;

    pub fn serialize<S: Serializer>(v: &Option<KeyMaterialId>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(id) => s.serialize_some(&id.to_hex()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<KeyMaterialId>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            KeyMaterialId::from_hex(&s)
                .ok_or_else(|| serde::de::Error::custom("bad key material id"))
        })
        .transpose()
    }
}
