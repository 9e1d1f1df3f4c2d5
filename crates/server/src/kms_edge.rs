//! The KMS protocol edge: AWS JSON 1.1 (`X-Amz-Target: TrentService.<Op>`). Parses once,
//! validates against the published model, runs the operation in the core, and maps errors to
//! AWS's wire types — the only place that knows them.

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tresor_kms::ops::Operation;
use tresor_kms::{CallContext, Kms, KmsError};
use tresor_kms_model::WireError;

use crate::throttle::Throttle;

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const TARGET_PREFIX: &str = "TrentService.";

/// A JSON-protocol response: status, body.
pub struct JsonReply {
    pub status: StatusCode,
    pub body: Bytes,
    /// The error type, also sent as `x-amzn-ErrorType`.
    pub error_type: Option<&'static str>,
}

impl JsonReply {
    pub fn ok(body: Vec<u8>) -> JsonReply {
        JsonReply {
            status: StatusCode::OK,
            body: Bytes::from(body),
            error_type: None,
        }
    }

    /// `{"__type": "<Type>", "message": "<text>"}`; AWS omits the message entirely for some types.
    pub fn error(status: StatusCode, error_type: &'static str, message: &str) -> JsonReply {
        let body = if message.is_empty() {
            serde_json::json!({ "__type": error_type })
        } else {
            serde_json::json!({ "__type": error_type, "message": message })
        };
        JsonReply {
            status,
            body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
            error_type: Some(error_type),
        }
    }
}

/// Wire form of a core error. Exhaustive: adding a variant forces a decision here.
pub fn error_reply(e: &KmsError) -> JsonReply {
    let (status, ty) = match e {
        KmsError::AccessDenied(_) => (StatusCode::BAD_REQUEST, "AccessDeniedException"),
        KmsError::AlreadyExists(_) => (StatusCode::BAD_REQUEST, "AlreadyExistsException"),
        KmsError::Conflict(_) => (StatusCode::BAD_REQUEST, "ConflictException"),
        KmsError::CustomKeyStoreNotFound(_) => {
            (StatusCode::BAD_REQUEST, "CustomKeyStoreNotFoundException")
        }
        KmsError::DependencyTimeout(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "DependencyTimeoutException",
        ),
        KmsError::Disabled(_) => (StatusCode::BAD_REQUEST, "DisabledException"),
        KmsError::DryRunOperation => (StatusCode::BAD_REQUEST, "DryRunOperationException"),
        KmsError::ExpiredImportToken(_) => (StatusCode::BAD_REQUEST, "ExpiredImportTokenException"),
        KmsError::IncorrectKey => (StatusCode::BAD_REQUEST, "IncorrectKeyException"),
        KmsError::IncorrectKeyMaterial(_) => {
            (StatusCode::BAD_REQUEST, "IncorrectKeyMaterialException")
        }
        KmsError::InvalidImportToken(_) => (StatusCode::BAD_REQUEST, "InvalidImportTokenException"),
        KmsError::InvalidCiphertext => (StatusCode::BAD_REQUEST, "InvalidCiphertextException"),
        KmsError::InvalidArn(_) => (StatusCode::BAD_REQUEST, "InvalidArnException"),
        KmsError::InvalidGrantId(_) => (StatusCode::BAD_REQUEST, "InvalidGrantIdException"),
        KmsError::InvalidGrantToken(_) => (StatusCode::BAD_REQUEST, "InvalidGrantTokenException"),
        KmsError::InvalidKeyUsage(_) => (StatusCode::BAD_REQUEST, "InvalidKeyUsageException"),
        KmsError::InvalidSignature => (StatusCode::BAD_REQUEST, "KMSInvalidSignatureException"),
        KmsError::InvalidMac => (StatusCode::BAD_REQUEST, "KMSInvalidMacException"),
        KmsError::InvalidMarker(_) => (StatusCode::BAD_REQUEST, "InvalidMarkerException"),
        KmsError::InvalidState(_) => (StatusCode::BAD_REQUEST, "KMSInvalidStateException"),
        KmsError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "KMSInternalException"),
        KmsError::LimitExceeded(_) => (StatusCode::BAD_REQUEST, "LimitExceededException"),
        KmsError::MalformedPolicyDocument(_) => {
            (StatusCode::BAD_REQUEST, "MalformedPolicyDocumentException")
        }
        // AWS-DEVIATION (unverified): not a modeled KMS exception; what emulators answer for the
        // reserved alias/aws/ namespace.
        KmsError::NotAuthorized => (StatusCode::BAD_REQUEST, "NotAuthorizedException"),
        KmsError::NotFound(_) => (StatusCode::BAD_REQUEST, "NotFoundException"),
        KmsError::Tag(_) => (StatusCode::BAD_REQUEST, "TagException"),
        KmsError::Throttling => (StatusCode::BAD_REQUEST, "ThrottlingException"),
        KmsError::UnsupportedOperation(_) => {
            (StatusCode::BAD_REQUEST, "UnsupportedOperationException")
        }
        KmsError::Validation(_) => (StatusCode::BAD_REQUEST, "ValidationException"),
    };
    JsonReply::error(status, ty, &e.to_string())
}

/// CloudTrail `readOnly` of an operation that failed before reaching the core.
fn read_only(op: &str) -> bool {
    op.starts_with("Describe")
        || op.starts_with("Get")
        || op.starts_with("List")
        || matches!(
            op,
            "Encrypt"
                | "Decrypt"
                | "ReEncrypt"
                | "GenerateDataKey"
                | "GenerateDataKeyWithoutPlaintext"
                | "GenerateDataKeyPair"
                | "GenerateDataKeyPairWithoutPlaintext"
                | "GenerateRandom"
                | "GenerateMac"
                | "VerifyMac"
                | "Sign"
                | "Verify"
                | "DeriveSharedSecret"
        )
}

async fn run<O>(kms: &Kms, ctx: &CallContext, input: Value) -> JsonReply
where
    O: Operation + DeserializeOwned,
    O::Output: Serialize,
{
    let op: O = match serde_json::from_value(input) {
        Ok(op) => op,
        Err(e) => {
            // The model validator accepted the shape, so this is a value serde rejects (an enum
            // member outside the set, say): report it as AWS does for unreadable input.
            let err = KmsError::validation_plain(format!(
                "Unable to read the request: {}",
                sanitize(&e.to_string())
            ));
            return serialization_failure(kms, ctx, O::NAME, &err).await;
        }
    };
    match kms.call(ctx, op).await {
        Ok(out) => {
            // Most answers fit: one allocation instead of the doubling from empty.
            let mut body = Vec::with_capacity(1024);
            match serde_json::to_writer(&mut body, &out) {
                Ok(()) => JsonReply::ok(body),
                Err(e) => error_reply(&KmsError::internal(e)),
            }
        }
        Err(e) => error_reply(&e),
    }
}

/// serde messages can quote input; keep them short and single-line.
fn sanitize(s: &str) -> String {
    s.chars().take(200).filter(|c| !c.is_control()).collect()
}

async fn serialization_failure(
    kms: &Kms,
    ctx: &CallContext,
    op: &str,
    err: &KmsError,
) -> JsonReply {
    if let Err(audit) = kms.record_rejected(ctx, op, read_only(op), None, err).await {
        return error_reply(&audit);
    }
    JsonReply::error(
        StatusCode::BAD_REQUEST,
        "SerializationException",
        &err.to_string(),
    )
}

/// Why a request body was refused before the operation ran: the wire type and the core error
/// (whose text is the message).
pub struct Refused {
    pub error_type: &'static str,
    pub error: KmsError,
}

/// A JSON value like `serde_json::Value`, except that an object with two members of the same name
/// is an error. serde_json keeps the last of them, so a body with two `KeyId`s would be read
/// differently by Tresor and by anything in front of it that keeps the first.
struct StrictJson(Value);

impl<'de> serde::Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StrictJson, D::Error> {
        d.deserialize_any(StrictJsonVisitor)
    }
}

struct StrictJsonVisitor;

impl<'de> serde::de::Visitor<'de> for StrictJsonVisitor {
    type Value = StrictJson;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::Number(v.into())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<StrictJson, E> {
        Ok(StrictJson(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E>(self, v: &str) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::Null))
    }
    fn visit_none<E>(self) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::Null))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<StrictJson, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictJson(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(StrictJson(Value::Array(out)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StrictJson, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some((k, StrictJson(v))) = map.next_entry::<String, StrictJson>()? {
            if out.insert(k, v).is_some() {
                return Err(serde::de::Error::custom("duplicate member"));
            }
        }
        Ok(StrictJson(Value::Object(out)))
    }
}

/// Parses a request body: empty (or only whitespace) is an empty input; anything else must be
/// one JSON value (nesting bounded by serde_json's recursion limit) without duplicate member
/// names. The model validator then checks its shape.
pub fn parse_body(body: &[u8]) -> Result<Value, Refused> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_slice::<StrictJson>(body) {
        Ok(StrictJson(v)) => Ok(v),
        // The visitor accepts every JSON value, so a data error can only be a duplicate member.
        // AWS-DEVIATION (unverified): AWS's JSON reader may keep one of duplicate members.
        Err(e) if e.classify() == serde_json::error::Category::Data => Err(Refused {
            error_type: "SerializationException",
            error: KmsError::validation_plain("Duplicate member name in a JSON object."),
        }),
        Err(_) => Err(Refused {
            error_type: "SerializationException",
            error: KmsError::validation_plain(
                "Start of structure or map found where not expected.",
            ),
        }),
    }
}

/// Checks a parsed input against the operation's model.
pub fn validate(op: &str, input: &Value) -> Result<(), Refused> {
    tresor_kms_model::validate_input(op, input).map_err(|e| match e {
        WireError::Serialization(m) => Refused {
            error_type: "SerializationException",
            error: KmsError::validation_plain(m),
        },
        WireError::Validation(m) => Refused {
            error_type: "ValidationException",
            error: KmsError::Validation(m),
        },
    })
}

/// The member that names the key a request uses, for the per-key throttle: `KeyId`, else
/// `SourceKeyId`, else the key named in the `CiphertextBlob` header (not yet authenticated, which
/// only matters for which bucket a forged blob draws from).
fn key_identifier(input: &Value) -> Option<String> {
    let member = |name: &str| input.get(name).and_then(Value::as_str).map(str::to_owned);
    member("KeyId")
        .or_else(|| member("SourceKeyId"))
        .or_else(|| {
            use base64::Engine as _;
            let blob = input.get("CiphertextBlob").and_then(Value::as_str)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(blob)
                .ok()?;
            let header = tresor_crypto::blob::parse_header(&bytes).ok()?;
            Some(header.key_id.hyphenated().to_string())
        })
}

/// A throttled call: audited as a failure, then answered `ThrottlingException`.
async fn throttled(kms: &Kms, ctx: &CallContext, op: &str) -> JsonReply {
    let err = KmsError::Throttling;
    if let Err(audit) = kms
        .record_rejected(ctx, op, read_only(op), None, &err)
        .await
    {
        return error_reply(&audit);
    }
    error_reply(&err)
}

/// Handles one authenticated KMS request.
pub async fn handle(
    kms: &Kms,
    throttle: &Throttle,
    ctx: &CallContext,
    target: Option<&str>,
    body: &[u8],
) -> JsonReply {
    let Some(op) = target
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .filter(|op| tresor_kms_model::is_operation(op))
    else {
        // AWS-DEVIATION (unverified text): the message of UnknownOperationException.
        return JsonReply::error(StatusCode::BAD_REQUEST, "UnknownOperationException", "");
    };
    // The caller's rate is checked before any parsing, so a throttled flood costs little.
    if !throttle.allow_principal(&ctx.caller.arn) {
        return throttled(kms, ctx, op).await;
    }
    let input = match parse_body(body).and_then(|input| validate(op, &input).map(|()| input)) {
        Ok(input) => input,
        Err(r) => return malformed(kms, ctx, op, r.error_type, &r.error).await,
    };
    if throttle.limits_keys()
        && let Some(key) = key_identifier(&input)
        && !throttle.allow_key(&crate::throttle::key_bucket_name(
            ctx.region.as_str(),
            ctx.caller.account.as_str(),
            &key,
        ))
    {
        return throttled(kms, ctx, op).await;
    }
    dispatch(kms, ctx, op, input).await
}

/// A request that failed parsing or model validation: audited (the caller is authenticated), then answered.
async fn malformed(
    kms: &Kms,
    ctx: &CallContext,
    op: &str,
    ty: &'static str,
    err: &KmsError,
) -> JsonReply {
    if let Err(audit) = kms.record_rejected(ctx, op, read_only(op), None, err).await {
        return error_reply(&audit);
    }
    JsonReply::error(StatusCode::BAD_REQUEST, ty, &err.to_string())
}

/// Expands `$body` with the type alias `$t` bound to the operation type named `$op` (a KMS
/// operation name), or evaluates `$other` for a model operation Tresor does not implement. The
/// one table of implemented operations, shared by the server and the fuzzing entry point.
macro_rules! with_operation {
    ($op:expr, |$t:ident| $body:expr, $other:ident => $fallback:expr) => {{
        #[allow(unused_imports)]
        use tresor_kms::ops::*;
        match $op {
            "CreateKey" => {
                type $t = create_key::CreateKey;
                $body
            }
            "DescribeKey" => {
                type $t = describe_key::DescribeKey;
                $body
            }
            "ListKeys" => {
                type $t = list_keys::ListKeys;
                $body
            }
            "EnableKey" => {
                type $t = enable_key::EnableKey;
                $body
            }
            "DisableKey" => {
                type $t = disable_key::DisableKey;
                $body
            }
            "UpdateKeyDescription" => {
                type $t = update_key_description::UpdateKeyDescription;
                $body
            }
            "GetKeyPolicy" => {
                type $t = get_key_policy::GetKeyPolicy;
                $body
            }
            "ListKeyPolicies" => {
                type $t = list_key_policies::ListKeyPolicies;
                $body
            }
            "Encrypt" => {
                type $t = encrypt::Encrypt;
                $body
            }
            "Decrypt" => {
                type $t = decrypt::Decrypt;
                $body
            }
            "ReEncrypt" => {
                type $t = re_encrypt::ReEncrypt;
                $body
            }
            "GenerateDataKey" => {
                type $t = generate_data_key::GenerateDataKey;
                $body
            }
            "GenerateDataKeyWithoutPlaintext" => {
                type $t = generate_data_key_without_plaintext::GenerateDataKeyWithoutPlaintext;
                $body
            }
            "GenerateRandom" => {
                type $t = generate_random::GenerateRandom;
                $body
            }
            "PutKeyPolicy" => {
                type $t = put_key_policy::PutKeyPolicy;
                $body
            }
            "CreateGrant" => {
                type $t = create_grant::CreateGrant;
                $body
            }
            "ListGrants" => {
                type $t = list_grants::ListGrants;
                $body
            }
            "ListRetirableGrants" => {
                type $t = list_grants::ListRetirableGrants;
                $body
            }
            "RetireGrant" => {
                type $t = revoke_grant::RetireGrant;
                $body
            }
            "RevokeGrant" => {
                type $t = revoke_grant::RevokeGrant;
                $body
            }
            "CreateAlias" => {
                type $t = create_alias::CreateAlias;
                $body
            }
            "UpdateAlias" => {
                type $t = update_alias::UpdateAlias;
                $body
            }
            "DeleteAlias" => {
                type $t = delete_alias::DeleteAlias;
                $body
            }
            "ListAliases" => {
                type $t = list_aliases::ListAliases;
                $body
            }
            "TagResource" => {
                type $t = tag_resource::TagResource;
                $body
            }
            "UntagResource" => {
                type $t = untag_resource::UntagResource;
                $body
            }
            "ListResourceTags" => {
                type $t = list_resource_tags::ListResourceTags;
                $body
            }
            "ScheduleKeyDeletion" => {
                type $t = schedule_key_deletion::ScheduleKeyDeletion;
                $body
            }
            "CancelKeyDeletion" => {
                type $t = cancel_key_deletion::CancelKeyDeletion;
                $body
            }
            "EnableKeyRotation" => {
                type $t = enable_key_rotation::EnableKeyRotation;
                $body
            }
            "DisableKeyRotation" => {
                type $t = disable_key_rotation::DisableKeyRotation;
                $body
            }
            "GetKeyRotationStatus" => {
                type $t = get_key_rotation_status::GetKeyRotationStatus;
                $body
            }
            "RotateKeyOnDemand" => {
                type $t = rotate_key_on_demand::RotateKeyOnDemand;
                $body
            }
            "ListKeyRotations" => {
                type $t = list_key_rotations::ListKeyRotations;
                $body
            }
            "GetParametersForImport" => {
                type $t = get_parameters_for_import::GetParametersForImport;
                $body
            }
            "ImportKeyMaterial" => {
                type $t = import_key_material::ImportKeyMaterial;
                $body
            }
            "DeleteImportedKeyMaterial" => {
                type $t = delete_imported_key_material::DeleteImportedKeyMaterial;
                $body
            }
            "GetKeyLastUsage" => {
                type $t = get_key_last_usage::GetKeyLastUsage;
                $body
            }
            "GetPublicKey" => {
                type $t = get_public_key::GetPublicKey;
                $body
            }
            "Sign" => {
                type $t = sign::Sign;
                $body
            }
            "Verify" => {
                type $t = verify::Verify;
                $body
            }
            "GenerateMac" => {
                type $t = generate_mac::GenerateMac;
                $body
            }
            "VerifyMac" => {
                type $t = verify_mac::VerifyMac;
                $body
            }
            "DeriveSharedSecret" => {
                type $t = derive_shared_secret::DeriveSharedSecret;
                $body
            }
            "GenerateDataKeyPair" => {
                type $t = generate_data_key_pair::GenerateDataKeyPair;
                $body
            }
            "GenerateDataKeyPairWithoutPlaintext" => {
                type $t =
                    generate_data_key_pair_without_plaintext::GenerateDataKeyPairWithoutPlaintext;
                $body
            }
            $other => $fallback,
        }
    }};
}

async fn dispatch(kms: &Kms, ctx: &CallContext, op: &str, input: Value) -> JsonReply {
    with_operation!(op, |O| run::<O>(kms, ctx, input).await, other => {
        // AWS-DEVIATION: operations of the KMS model that Tresor does not implement yet.
        let err = KmsError::UnsupportedOperation(format!(
            "{other} is not supported by this server yet."
        ));
        if let Err(audit) = kms
            .record_rejected(ctx, other, read_only(other), None, &err)
            .await
        {
            return error_reply(&audit);
        }
        error_reply(&err)
    })
}

/// Whether Tresor implements the model operation `op`.
pub fn is_implemented(op: &str) -> bool {
    with_operation!(op, |O| {
        let _ = std::marker::PhantomData::<O>;
        true
    }, _other => false)
}

/// Decodes a body for `op` exactly as the server does before running it: parse, model
/// validation, then the operation type. (For the fuzzing entry point and its corpus replay.)
pub fn decode(op: &str, body: &[u8]) -> Result<(), Refused> {
    let input = parse_body(body)?;
    validate(op, &input)?;
    with_operation!(op, |O| serde_json::from_value::<O>(input).map(|_| ()).map_err(|e| Refused {
        error_type: "SerializationException",
        error: KmsError::validation_plain(format!(
            "Unable to read the request: {}",
            sanitize(&e.to_string())
        )),
    }), _other => Ok(()))
}

#[doc(hidden)]
pub mod fuzzing {
    //! The invariants the `kms_request` fuzz target checks (`fuzz/`), also replayed over the
    //! committed corpus by `tests/fuzz_corpus.rs`.

    use super::{Refused, decode};

    /// The first byte picks one of the model's operations; the rest is the request body.
    /// Panics when an invariant is broken: decoding never panics, every refusal is a
    /// `SerializationException` or a `ValidationException` with a bounded, single-line message,
    /// and a body that decodes still decodes after a JSON round trip (parse, print, parse).
    pub fn check_request(data: &[u8]) {
        let Some((&pick, body)) = data.split_first() else {
            return;
        };
        let ops: Vec<&'static str> = tresor_kms_model::operation_names().collect();
        let Some(op) = ops.get(usize::from(pick) % ops.len().max(1)).copied() else {
            return;
        };
        check_operation(op, body);
    }

    /// [`check_request`] for a named operation.
    pub fn check_operation(op: &str, body: &[u8]) {
        let outcome = decode(op, body);
        if let Err(Refused { error_type, error }) = &outcome {
            assert!(
                matches!(
                    *error_type,
                    "SerializationException" | "ValidationException"
                ),
                "{op}: refused as {error_type}"
            );
            assert!(
                matches!(error, tresor_kms::KmsError::Validation(_)),
                "{op}: core error {error:?}"
            );
            let message = error.to_string();
            assert!(
                !message.contains(['\n', '\r']),
                "{op}: multi-line message {message:?}"
            );
            if *error_type == "ValidationException" {
                assert!(!message.is_empty(), "{op}: empty validation message");
            }
        }
        if let Ok(value) = super::parse_body(body) {
            let printed = serde_json::to_vec(&value).unwrap_or_default();
            let again = super::parse_body(&printed).map_err(|r| r.error);
            assert_eq!(again.as_ref().ok(), Some(&value), "{op}: JSON round trip");
            let redo = decode(op, &printed);
            assert_eq!(
                redo.as_ref().map_err(|r| (r.error_type, r.error.clone())),
                outcome
                    .as_ref()
                    .map_err(|r| (r.error_type, r.error.clone())),
                "{op}: decoding differs after a JSON round trip"
            );
        }
    }
}
