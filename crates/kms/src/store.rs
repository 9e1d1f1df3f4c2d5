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
