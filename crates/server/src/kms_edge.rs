//! The KMS protocol edge: AWS JSON 1.1 (`X-Amz-Target: TrentService.<Op>`). Parses once,
//! validates against the published model, runs the operation in the core, and maps errors to
//! AWS's wire types — the only place that knows them.

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tresor_kms::ops::{self, Operation};
use tresor_kms::{CallContext, Kms, KmsError};
use tresor_kms_model::WireError;

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
        Ok(out) => match serde_json::to_vec(&out) {
            Ok(body) => JsonReply::ok(body),
            Err(e) => error_reply(&KmsError::internal(e)),
        },
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

/// Handles one authenticated KMS request.
pub async fn handle(kms: &Kms, ctx: &CallContext, target: Option<&str>, body: &[u8]) -> JsonReply {
    let Some(op) = target
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .filter(|op| tresor_kms_model::is_operation(op))
    else {
        // AWS-DEVIATION (unverified text): the message of UnknownOperationException.
        return JsonReply::error(StatusCode::BAD_REQUEST, "UnknownOperationException", "");
    };
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                let err = KmsError::validation_plain(
                    "Start of structure or map found where not expected.",
                );
                return malformed(kms, ctx, op, "SerializationException", &err).await;
            }
        }
    };
    if let Err(e) = tresor_kms_model::validate_input(op, &input) {
        let (ty, err) = match e {
            WireError::Serialization(m) => {
                ("SerializationException", KmsError::validation_plain(m))
            }
            WireError::Validation(m) => ("ValidationException", KmsError::Validation(m)),
        };
        return malformed(kms, ctx, op, ty, &err).await;
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

async fn dispatch(kms: &Kms, ctx: &CallContext, op: &str, input: Value) -> JsonReply {
    use ops::*;
    match op {
        "CreateKey" => run::<create_key::CreateKey>(kms, ctx, input).await,
        "DescribeKey" => run::<describe_key::DescribeKey>(kms, ctx, input).await,
        "ListKeys" => run::<list_keys::ListKeys>(kms, ctx, input).await,
        "EnableKey" => run::<enable_key::EnableKey>(kms, ctx, input).await,
        "DisableKey" => run::<disable_key::DisableKey>(kms, ctx, input).await,
        "UpdateKeyDescription" => {
            run::<update_key_description::UpdateKeyDescription>(kms, ctx, input).await
        }
        "GetKeyPolicy" => run::<get_key_policy::GetKeyPolicy>(kms, ctx, input).await,
        "ListKeyPolicies" => run::<list_key_policies::ListKeyPolicies>(kms, ctx, input).await,
        "Encrypt" => run::<encrypt::Encrypt>(kms, ctx, input).await,
        "Decrypt" => run::<decrypt::Decrypt>(kms, ctx, input).await,
        "ReEncrypt" => run::<re_encrypt::ReEncrypt>(kms, ctx, input).await,
        "GenerateDataKey" => run::<generate_data_key::GenerateDataKey>(kms, ctx, input).await,
        "GenerateDataKeyWithoutPlaintext" => {
            run::<generate_data_key_without_plaintext::GenerateDataKeyWithoutPlaintext>(
                kms, ctx, input,
            )
            .await
        }
        "GenerateRandom" => run::<generate_random::GenerateRandom>(kms, ctx, input).await,
        "PutKeyPolicy" => run::<put_key_policy::PutKeyPolicy>(kms, ctx, input).await,
        "CreateGrant" => run::<create_grant::CreateGrant>(kms, ctx, input).await,
        "ListGrants" => run::<list_grants::ListGrants>(kms, ctx, input).await,
        "ListRetirableGrants" => run::<list_grants::ListRetirableGrants>(kms, ctx, input).await,
        "RetireGrant" => run::<revoke_grant::RetireGrant>(kms, ctx, input).await,
        "RevokeGrant" => run::<revoke_grant::RevokeGrant>(kms, ctx, input).await,
        // Key lifecycle: aliases, tags, deletion, rotation, imported material, last usage.
        "CreateAlias" => run::<create_alias::CreateAlias>(kms, ctx, input).await,
        "UpdateAlias" => run::<update_alias::UpdateAlias>(kms, ctx, input).await,
        "DeleteAlias" => run::<delete_alias::DeleteAlias>(kms, ctx, input).await,
        "ListAliases" => run::<list_aliases::ListAliases>(kms, ctx, input).await,
        "TagResource" => run::<tag_resource::TagResource>(kms, ctx, input).await,
        "UntagResource" => run::<untag_resource::UntagResource>(kms, ctx, input).await,
        "ListResourceTags" => run::<list_resource_tags::ListResourceTags>(kms, ctx, input).await,
        "ScheduleKeyDeletion" => {
            run::<schedule_key_deletion::ScheduleKeyDeletion>(kms, ctx, input).await
        }
        "CancelKeyDeletion" => run::<cancel_key_deletion::CancelKeyDeletion>(kms, ctx, input).await,
        "EnableKeyRotation" => run::<enable_key_rotation::EnableKeyRotation>(kms, ctx, input).await,
        "DisableKeyRotation" => {
            run::<disable_key_rotation::DisableKeyRotation>(kms, ctx, input).await
        }
        "GetKeyRotationStatus" => {
            run::<get_key_rotation_status::GetKeyRotationStatus>(kms, ctx, input).await
        }
        "RotateKeyOnDemand" => {
            run::<rotate_key_on_demand::RotateKeyOnDemand>(kms, ctx, input).await
        }
        "ListKeyRotations" => run::<list_key_rotations::ListKeyRotations>(kms, ctx, input).await,
        "GetParametersForImport" => {
            run::<get_parameters_for_import::GetParametersForImport>(kms, ctx, input).await
        }
        "ImportKeyMaterial" => run::<import_key_material::ImportKeyMaterial>(kms, ctx, input).await,
        "DeleteImportedKeyMaterial" => {
            run::<delete_imported_key_material::DeleteImportedKeyMaterial>(kms, ctx, input).await
        }
        "GetKeyLastUsage" => run::<get_key_last_usage::GetKeyLastUsage>(kms, ctx, input).await,
        // Asymmetric, HMAC and key agreement keys.
        "GetPublicKey" => run::<get_public_key::GetPublicKey>(kms, ctx, input).await,
        "Sign" => run::<sign::Sign>(kms, ctx, input).await,
        "Verify" => run::<verify::Verify>(kms, ctx, input).await,
        "GenerateMac" => run::<generate_mac::GenerateMac>(kms, ctx, input).await,
        "VerifyMac" => run::<verify_mac::VerifyMac>(kms, ctx, input).await,
        "DeriveSharedSecret" => {
            run::<derive_shared_secret::DeriveSharedSecret>(kms, ctx, input).await
        }
        "GenerateDataKeyPair" => {
            run::<generate_data_key_pair::GenerateDataKeyPair>(kms, ctx, input).await
        }
        "GenerateDataKeyPairWithoutPlaintext" => {
            run::<generate_data_key_pair_without_plaintext::GenerateDataKeyPairWithoutPlaintext>(
                kms, ctx, input,
            )
            .await
        }
        other => {
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
        }
    }
}
