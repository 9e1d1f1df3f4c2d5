//! One module per KMS operation. Each request type deserialises from the AWS JSON member names
//! (PascalCase) and is equally built by in-process services; each output serialises to AWS's
//! output shape. Every operation runs through [`crate::Kms::call`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use tresor_crypto::SecretBytes;

use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::store::KeyRecord;
use crate::types::{EncryptionAlgorithm, KeySpec, KeyState, KeyUsage, Timestamp};

pub mod cancel_key_deletion;
pub mod create_alias;
pub mod create_grant;
pub mod create_key;
pub mod decrypt;
pub mod delete_alias;
pub mod delete_imported_key_material;
pub mod derive_shared_secret;
pub mod describe_key;
pub mod disable_key;
pub mod disable_key_rotation;
pub mod enable_key;
pub mod enable_key_rotation;
pub mod encrypt;
pub mod generate_data_key;
pub mod generate_data_key_pair;
pub mod generate_data_key_pair_without_plaintext;
pub mod generate_data_key_without_plaintext;
pub mod generate_mac;
pub mod generate_random;
pub mod get_key_last_usage;
pub mod get_key_policy;
pub mod get_key_rotation_status;
pub mod get_parameters_for_import;
pub mod get_public_key;
pub mod import_key_material;
pub mod list_aliases;
pub mod list_grants;
pub mod list_key_policies;
pub mod list_key_rotations;
pub mod list_keys;
pub mod list_resource_tags;
pub mod put_key_policy;
pub mod re_encrypt;
pub mod revoke_grant;
pub mod rotate_key_on_demand;
pub mod schedule_key_deletion;
pub mod sign;
pub mod tag_resource;
pub mod untag_resource;
pub mod update_alias;
pub mod update_key_description;
pub mod verify;
pub mod verify_mac;

/// A KMS operation.
#[async_trait]
pub trait Operation: Send + Sized + 'static {
    /// The API name (CloudTrail `eventName`, the `X-Amz-Target` suffix).
    const NAME: &'static str;
    /// CloudTrail `readOnly`.
    const READ_ONLY: bool;
    type Output: Serialize + Send;
    /// The request members CloudTrail logs for this operation (never plaintext, ciphertext,
    /// grant tokens or other secrets).
    fn audit_parameters(&self) -> Option<Map<String, Value>>;
    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<Self::Output, KmsError>;
}

/// The output of operations that have none (AWS answers 200 with an empty body; `{}` is accepted by every SDK).
#[derive(Debug, Default, Serialize)]
pub struct Empty {}

/// A non-secret binary value (ciphertext blobs): base64 on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}
impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map(Blob)
            .map_err(|_| serde::de::Error::custom("invalid base64"))
    }
}

/// A secret binary value (plaintexts, data keys): base64 on the wire, zeroized in memory, never logged.
#[derive(Clone)]
pub struct SecretBlob(pub SecretBytes);

impl std::fmt::Debug for SecretBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBlob([REDACTED; {}])", self.0.len())
    }
}
impl Serialize for SecretBlob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let encoded = zeroize::Zeroizing::new(STANDARD.encode(self.0.expose()));
        s.serialize_str(&encoded)
    }
}
impl<'de> Deserialize<'de> for SecretBlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = zeroize::Zeroizing::new(String::deserialize(d)?);
        STANDARD
            .decode(s.as_bytes())
            .map(|v| SecretBlob(SecretBytes::new(v)))
            .map_err(|_| serde::de::Error::custom("invalid base64"))
    }
}

/// An encryption context: string → string, compared exactly (case-sensitive) when decrypting.
pub type EncryptionContext = BTreeMap<String, String>;

/// Tresor's bound on an encryption context: the summed UTF-8 length of all keys and values.
// AWS-DEVIATION: AWS enforces an undocumented overall cap; Tresor's is explicit.
pub const MAX_ENCRYPTION_CONTEXT_BYTES: usize = 8192;

pub(crate) fn check_encryption_context(
    ctx: &EncryptionContext,
    member: &str,
) -> Result<(), KmsError> {
    let total: usize = ctx.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_ENCRYPTION_CONTEXT_BYTES {
        return Err(KmsError::validation(format!(
            "Value at '{member}' failed to satisfy constraint: Member must have a total size of keys and values less than or equal to {MAX_ENCRYPTION_CONTEXT_BYTES} bytes"
        )));
    }
    Ok(())
}

pub(crate) fn context_json(ctx: &EncryptionContext) -> Value {
    Value::Object(
        ctx.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Grant tokens are accepted by every grantable operation: at most 10, each well-formed.
pub(crate) fn check_grant_tokens(tokens: &[String]) -> Result<(), KmsError> {
    crate::grant_token::check_tokens(tokens)
}

/// `Plaintext` of Encrypt: 1–4096 bytes (also enforced for in-process callers).
pub(crate) fn check_plaintext_len(len: usize) -> Result<(), KmsError> {
    if len == 0 {
        return Err(KmsError::validation(
            "Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    if len > 4096 {
        return Err(KmsError::validation(
            "Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
        ));
    }
    Ok(())
}

/// The key must be a symmetric encryption key for this operation.
pub(crate) fn require_symmetric_encryption(
    key: &KeyRecord,
    arn: &str,
    operation: &str,
) -> Result<(), KmsError> {
    if key.key_usage != KeyUsage::EncryptDecrypt {
        return Err(KmsError::InvalidKeyUsage(format!(
            "{arn} key usage is {} which is not valid for {operation}.",
            key.key_usage
        )));
    }
    if key.key_spec != KeySpec::SymmetricDefault {
        return Err(KmsError::InvalidKeyUsage(format!(
            "{arn} key spec is {} which is not valid for {operation}.",
            key.key_spec
        )));
    }
    Ok(())
}

/// The algorithm a request names, with AWS's default (`kms:EncryptionAlgorithm` counts defaults).
pub(crate) fn algorithm_name(alg: Option<EncryptionAlgorithm>) -> &'static str {
    alg.unwrap_or(EncryptionAlgorithm::SymmetricDefault)
        .as_str()
}

/// Symmetric keys take only `SYMMETRIC_DEFAULT`.
// AWS-DEVIATION (unverified text): AWS's exact message for an asymmetric algorithm on a symmetric key.
pub(crate) fn check_symmetric_algorithm(
    alg: Option<EncryptionAlgorithm>,
) -> Result<EncryptionAlgorithm, KmsError> {
    match alg.unwrap_or(EncryptionAlgorithm::SymmetricDefault) {
        EncryptionAlgorithm::SymmetricDefault => Ok(EncryptionAlgorithm::SymmetricDefault),
        other => Err(KmsError::InvalidKeyUsage(format!(
            "Algorithm {other} is incompatible with key spec SYMMETRIC_DEFAULT."
        ))),
    }
}

/// `KeyMetadata` as DescribeKey, CreateKey and friends return it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadata {
    #[serde(rename = "AWSAccountId")]
    pub aws_account_id: String,
    pub key_id: String,
    pub arn: String,
    pub creation_date: Timestamp,
    pub enabled: bool,
    pub description: String,
    pub key_usage: KeyUsage,
    pub key_state: KeyState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<Timestamp>,
    /// `EXTERNAL` keys whose imported material expires: when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Timestamp>,
    pub origin: crate::types::Origin,
    /// `EXTERNAL` keys with imported material.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_model: Option<crate::types::ExpirationModel>,
    pub key_manager: crate::types::KeyManager,
    pub customer_master_key_spec: KeySpec,
    pub key_spec: KeySpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_algorithms: Option<Vec<EncryptionAlgorithm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_algorithms: Option<Vec<crate::types::SigningAlgorithm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_algorithms: Option<Vec<crate::types::MacAlgorithm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_agreement_algorithms: Option<Vec<crate::types::KeyAgreementAlgorithm>>,
    pub multi_region: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_key_material_id: Option<String>,
}

impl KeyMetadata {
    pub fn from_record(r: &KeyRecord) -> KeyMetadata {
        KeyMetadata {
            aws_account_id: r.account.as_str().to_owned(),
            key_id: r.key_id.to_string(),
            arn: r.arn(),
            creation_date: r.created,
            enabled: r.state == KeyState::Enabled,
            description: r.description.clone(),
            key_usage: r.key_usage,
            key_state: r.state,
            deletion_date: (r.state == KeyState::PendingDeletion)
                .then_some(r.deletion_date)
                .flatten(),
            valid_to: r
                .imported
                .as_ref()
                .filter(|_| r.has_material())
                .and_then(|i| i.valid_to),
            origin: r.origin,
            expiration_model: r
                .imported
                .as_ref()
                .filter(|_| r.has_material())
                .map(|i| i.expiration_model),
            key_manager: r.key_manager,
            customer_master_key_spec: r.key_spec,
            key_spec: r.key_spec,
            encryption_algorithms: crate::asymmetric::encryption_algorithms(
                r.key_spec,
                r.key_usage,
            ),
            signing_algorithms: crate::asymmetric::signing_algorithms(r.key_spec, r.key_usage),
            mac_algorithms: crate::asymmetric::mac_algorithms(r.key_spec),
            key_agreement_algorithms: crate::asymmetric::key_agreement_algorithms(r.key_usage),
            multi_region: false,
            // Only keys that can rotate (symmetric encryption keys) report their material.
            current_key_material_id: (r.key_spec == KeySpec::SymmetricDefault)
                .then_some(r.current_material)
                .flatten()
                .map(|m| m.to_hex()),
        }
    }
}

/// Helper to build audit parameter maps.
pub(crate) fn params() -> Map<String, Value> {
    Map::new()
}

pub(crate) fn put<V: Into<Value>>(m: &mut Map<String, Value>, name: &str, v: Option<V>) {
    if let Some(v) = v {
        m.insert(name.to_owned(), v.into());
    }
}

/// Encrypts under the key's current material.
pub(crate) fn seal(
    key: &crate::kms::LoadedKey,
    ec: &EncryptionContext,
    plaintext: &[u8],
) -> Result<(Vec<u8>, tresor_crypto::KeyMaterialId), KmsError> {
    let (material_id, material) = key.current_material()?;
    let blob = tresor_crypto::blob::seal(material, key.record.key_id.0, material_id, ec, plaintext)
        .map_err(KmsError::internal)?;
    Ok((blob, material_id))
}

/// A ciphertext opened by [`open`].
pub(crate) struct Opened {
    pub key: std::sync::Arc<crate::kms::LoadedKey>,
    pub plaintext: SecretBytes,
    pub material_id: tresor_crypto::KeyMaterialId,
}

/// AWS's (legacy) answer when the key a ciphertext names does not exist here.
fn unknown_ciphertext_key() -> KmsError {
    KmsError::AccessDenied(
        "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access."
            .to_owned(),
    )
}

/// The decrypt half shared by Decrypt and ReEncrypt: parse the blob, find its key (checking a
/// caller-supplied `KeyId` against it), authorize, check state, usage and algorithm, open.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn open(
    kms: &Kms,
    ctx: &CallContext,
    blob: &[u8],
    key_id: Option<&str>,
    ec: &EncryptionContext,
    algorithm: Option<EncryptionAlgorithm>,
    op: crate::state::KeyOp,
    access: crate::authz::Access<'_>,
    trail: &mut Trail,
    dry_run: bool,
) -> Result<Opened, KmsError> {
    let header =
        tresor_crypto::blob::parse_header(blob).map_err(|_| KmsError::InvalidCiphertext)?;
    let blob_key = crate::types::KeyId(header.key_id);
    let op_name = if access.action == "Decrypt" {
        "Decrypt"
    } else {
        "ReEncrypt"
    };
    let key = match key_id {
        Some(given) => {
            let r = kms.resolve_for(ctx, given, true, access, trail).await?;
            if r.key.record.key_id != blob_key {
                return Err(KmsError::IncorrectKey);
            }
            r.key
        }
        None => {
            let key = kms
                .load_key(&ctx.region, &blob_key)
                .await?
                .ok_or_else(unknown_ciphertext_key)?;
            trail.add_resource(&key.record.account, &key.arn);
            kms.authorize(ctx, &key, &access, None).await?;
            key
        }
    };
    kms.check_state(op, &key)?;
    require_symmetric_encryption(&key.record, &key.arn, op_name)?;
    check_symmetric_algorithm(algorithm)?;
    let material = key
        .material(&header.material_id)
        .ok_or(KmsError::InvalidCiphertext)?;
    let plaintext =
        tresor_crypto::blob::open(material, blob, ec).map_err(|_| KmsError::InvalidCiphertext)?;
    if dry_run {
        return Err(KmsError::DryRunOperation);
    }
    trail.set_additional("keyMaterialId", header.material_id.to_hex());
    Ok(Opened {
        key,
        plaintext,
        material_id: header.material_id,
    })
}
