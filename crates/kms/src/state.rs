//! The one key-state × operation table: the single place that decides what each key state allows.
//! (AWS KMS Developer Guide, "Key states of AWS KMS keys", with the observed errors of the reference.)

use crate::error::KmsError;
use crate::types::KeyState;

/// Every operation that acts on a key resource.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum KeyOp {
    Encrypt,
    Decrypt,
    ReEncryptFrom,
    ReEncryptTo,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateMac,
    VerifyMac,
    Sign,
    Verify,
    GetPublicKey,
    DeriveSharedSecret,
    CreateGrant,
    DescribeKey,
    GetKeyPolicy,
    PutKeyPolicy,
    ListGrants,
    ListKeyPolicies,
    ListResourceTags,
    RetireGrant,
    RevokeGrant,
    DeleteAlias,
    CreateAlias,
    UpdateAliasNewTarget,
    UpdateAliasOldTarget,
    TagResource,
    UntagResource,
    UpdateKeyDescription,
    EnableKey,
    DisableKey,
    ScheduleKeyDeletion,
    CancelKeyDeletion,
    ListKeyRotations,
    GetKeyLastUsage,
    ListAliases,
    EnableKeyRotation,
    DisableKeyRotation,
    GetKeyRotationStatus,
    RotateKeyOnDemand,
    GetParametersForImport,
    ImportKeyMaterial,
    DeleteImportedKeyMaterial,
}

impl KeyOp {
    pub const ALL: &'static [KeyOp] = &[
        KeyOp::Encrypt,
        KeyOp::Decrypt,
        KeyOp::ReEncryptFrom,
        KeyOp::ReEncryptTo,
        KeyOp::GenerateDataKey,
        KeyOp::GenerateDataKeyWithoutPlaintext,
        KeyOp::GenerateDataKeyPair,
        KeyOp::GenerateDataKeyPairWithoutPlaintext,
        KeyOp::GenerateMac,
        KeyOp::VerifyMac,
        KeyOp::Sign,
        KeyOp::Verify,
        KeyOp::GetPublicKey,
        KeyOp::DeriveSharedSecret,
        KeyOp::CreateGrant,
        KeyOp::DescribeKey,
        KeyOp::GetKeyPolicy,
        KeyOp::PutKeyPolicy,
        KeyOp::ListGrants,
        KeyOp::ListKeyPolicies,
        KeyOp::ListResourceTags,
        KeyOp::RetireGrant,
        KeyOp::RevokeGrant,
        KeyOp::DeleteAlias,
        KeyOp::CreateAlias,
        KeyOp::UpdateAliasNewTarget,
        KeyOp::UpdateAliasOldTarget,
        KeyOp::TagResource,
        KeyOp::UntagResource,
        KeyOp::UpdateKeyDescription,
        KeyOp::EnableKey,
        KeyOp::DisableKey,
        KeyOp::ScheduleKeyDeletion,
        KeyOp::CancelKeyDeletion,
        KeyOp::ListKeyRotations,
        KeyOp::GetKeyLastUsage,
        KeyOp::ListAliases,
        KeyOp::EnableKeyRotation,
        KeyOp::DisableKeyRotation,
        KeyOp::GetKeyRotationStatus,
        KeyOp::RotateKeyOnDemand,
        KeyOp::GetParametersForImport,
        KeyOp::ImportKeyMaterial,
        KeyOp::DeleteImportedKeyMaterial,
    ];
}

/// Why a state refuses an operation; each maps to one AWS error and message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refusal {
    /// `DisabledException: <arn> is disabled.`
    Disabled,
    /// `KMSInvalidStateException: <arn> is pending deletion.`
    PendingDeletion,
    /// `KMSInvalidStateException: <arn> is not pending deletion.`
    NotPendingDeletion,
    /// `KMSInvalidStateException: <arn> is pending import.`
    PendingImport,
    /// `KMSInvalidStateException: <arn> is unavailable.`
    Unavailable,
    /// `KMSInvalidStateException: <arn> is creating.`
    Creating,
    /// `KMSInvalidStateException: <arn> is updating.`
    Updating,
    /// `UnsupportedOperationException: <arn> origin is EXTERNAL which is not valid for this
    /// operation.` (a key waiting for imported material is always an EXTERNAL key)
    OriginExternal,
    /// `UnsupportedOperationException` for a key in a custom key store (never in Tresor, which has
    /// none).
    CustomKeyStore,
}

impl Refusal {
    pub fn into_error(self, key_arn: &str) -> KmsError {
        match self {
            Refusal::Disabled => KmsError::Disabled(format!("{key_arn} is disabled.")),
            Refusal::PendingDeletion => {
                KmsError::InvalidState(format!("{key_arn} is pending deletion."))
            }
            Refusal::NotPendingDeletion => {
                KmsError::InvalidState(format!("{key_arn} is not pending deletion."))
            }
            Refusal::PendingImport => {
                KmsError::InvalidState(format!("{key_arn} is pending import."))
            }
            Refusal::Unavailable => KmsError::InvalidState(format!("{key_arn} is unavailable.")),
            Refusal::Creating => KmsError::InvalidState(format!("{key_arn} is creating.")),
            Refusal::Updating => KmsError::InvalidState(format!("{key_arn} is updating.")),
            Refusal::OriginExternal => KmsError::UnsupportedOperation(format!(
                "{key_arn} origin is EXTERNAL which is not valid for this operation."
            )),
            // AWS-DEVIATION (unverified text): Tresor has no custom key stores, so no key is ever
            // Unavailable; the text is Tresor's.
            Refusal::CustomKeyStore => KmsError::UnsupportedOperation(format!(
                "{key_arn} is in a custom key store, which is not valid for this operation."
            )),
        }
    }
}

/// The table. `None` = allowed.
pub fn refusal(op: KeyOp, state: KeyState) -> Option<Refusal> {
    use KeyOp as O;
    use KeyState as S;
    use Refusal as R;
    let pending_deletion = matches!(state, S::PendingDeletion | S::PendingReplicaDeletion);
    match op {
        // Cryptographic use of the key (symmetric, asymmetric, HMAC alike).
        O::Encrypt
        | O::Decrypt
        | O::ReEncryptFrom
        | O::ReEncryptTo
        | O::GenerateDataKey
        | O::GenerateDataKeyWithoutPlaintext
        | O::GenerateDataKeyPair
        | O::GenerateDataKeyPairWithoutPlaintext
        | O::GenerateMac
        | O::VerifyMac
        | O::Sign
        | O::Verify
        | O::GetPublicKey
        | O::DeriveSharedSecret => match state {
            S::Enabled | S::Updating => None,
            S::Disabled => Some(R::Disabled),
            S::PendingDeletion | S::PendingReplicaDeletion => Some(R::PendingDeletion),
            S::PendingImport => Some(R::PendingImport),
            S::Unavailable => Some(R::Unavailable),
            S::Creating => Some(R::Creating),
        },
        O::CreateGrant => match state {
            S::Enabled | S::Updating | S::Unavailable => None,
            S::Disabled => Some(R::Disabled),
            S::PendingDeletion | S::PendingReplicaDeletion => Some(R::PendingDeletion),
            S::PendingImport => Some(R::PendingImport),
            S::Creating => Some(R::Creating),
        },
        // Allowed in every state.
        O::DescribeKey
        | O::GetKeyPolicy
        | O::PutKeyPolicy
        | O::ListGrants
        | O::ListKeyPolicies
        | O::ListResourceTags
        | O::RetireGrant
        | O::RevokeGrant
        | O::DeleteAlias
        | O::UpdateAliasOldTarget
        | O::ListKeyRotations
        | O::GetKeyLastUsage
        | O::ListAliases => None,
        O::CreateAlias
        | O::UpdateAliasNewTarget
        | O::TagResource
        | O::UntagResource
        | O::UpdateKeyDescription => pending_deletion.then_some(R::PendingDeletion),
        O::EnableKey | O::DisableKey => match state {
            S::Enabled | S::Disabled | S::Unavailable => None,
            S::PendingDeletion | S::PendingReplicaDeletion => Some(R::PendingDeletion),
            S::PendingImport => Some(R::PendingImport),
            S::Creating => Some(R::Creating),
            S::Updating => Some(R::Updating),
        },
        O::ScheduleKeyDeletion => match state {
            S::Enabled | S::Disabled | S::PendingImport | S::Unavailable | S::Creating => None,
            S::PendingDeletion | S::PendingReplicaDeletion => Some(R::PendingDeletion),
            S::Updating => Some(R::Updating),
        },
        O::CancelKeyDeletion => (!pending_deletion).then_some(R::NotPendingDeletion),
        // Automatic rotation exists only for symmetric AWS_KMS keys; their type is checked by the
        // operation, the state here.
        O::EnableKeyRotation | O::DisableKeyRotation => match state {
            S::Enabled | S::Updating => None,
            S::Disabled => Some(R::Disabled),
            S::PendingDeletion | S::PendingReplicaDeletion => Some(R::PendingDeletion),
            S::PendingImport => Some(R::OriginExternal),
            S::Unavailable => Some(R::CustomKeyStore),
            S::Creating => Some(R::Creating),
        },
        O::GetKeyRotationStatus => match state {
            S::PendingImport => Some(R::OriginExternal),
            S::Unavailable => Some(R::CustomKeyStore),
            _ => None,
        },
        O::RotateKeyOnDemand => match state {
            S::Enabled => None,
            S::Disabled => Some(R::Disabled),
            S::PendingDeletion | S::PendingReplicaDeletion => Some(R::PendingDeletion),
            S::PendingImport => Some(R::PendingImport),
            S::Unavailable => Some(R::Unavailable),
            S::Creating => Some(R::Creating),
            S::Updating => Some(R::Updating),
        },
        // Whether the key takes imported material at all (origin EXTERNAL) is the operation's
        // check.
        O::GetParametersForImport | O::ImportKeyMaterial => match state {
            S::Enabled | S::Disabled | S::PendingImport => None,
            S::Updating => (op == O::GetParametersForImport).then_some(R::Updating),
            S::PendingDeletion | S::PendingReplicaDeletion => Some(R::PendingDeletion),
            S::Unavailable => Some(R::CustomKeyStore),
            S::Creating => Some(R::Creating),
        },
        O::DeleteImportedKeyMaterial => match state {
            S::Enabled
            | S::Disabled
            | S::PendingDeletion
            | S::PendingReplicaDeletion
            | S::PendingImport => None,
            S::Unavailable => Some(R::CustomKeyStore),
            S::Creating => Some(R::Creating),
            S::Updating => Some(R::Updating),
        },
    }
}

/// Checks `op` against the key's state, answering AWS's error for a refusal.
pub fn check(op: KeyOp, state: KeyState, key_arn: &str) -> Result<(), KmsError> {
    match refusal(op, state) {
        None => Ok(()),
        Some(r) => Err(r.into_error(key_arn)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the whole table and compares it with the reference's matrix, written out independently
    /// as rows of expected outcomes per state
    /// (Enabled, Disabled, PendingDeletion, PendingImport, Unavailable, Creating, Updating, PendingReplicaDeletion).
    #[test]
    fn state_matrix_matches_reference() {
        use KeyOp as O;
        const OK: &str = "ok";
        const DIS: &str = "DisabledException: A is disabled.";
        const PD: &str = "KMSInvalidStateException: A is pending deletion.";
        const NPD: &str = "KMSInvalidStateException: A is not pending deletion.";
        const PI: &str = "KMSInvalidStateException: A is pending import.";
        const UN: &str = "KMSInvalidStateException: A is unavailable.";
        const CR: &str = "KMSInvalidStateException: A is creating.";
        const UP: &str = "KMSInvalidStateException: A is updating.";
        const EXT: &str = "UnsupportedOperationException: A origin is EXTERNAL which is not valid for this operation.";
        const CKS: &str = "UnsupportedOperationException: A is in a custom key store, which is not valid for this operation.";
        let states = [
            KeyState::Enabled,
            KeyState::Disabled,
            KeyState::PendingDeletion,
            KeyState::PendingImport,
            KeyState::Unavailable,
            KeyState::Creating,
            KeyState::Updating,
            KeyState::PendingReplicaDeletion,
        ];
        let crypto = [OK, DIS, PD, PI, UN, CR, OK, PD];
        let all_ok = [OK; 8];
        let not_pd = [OK, OK, PD, OK, OK, OK, OK, PD];
        let rows: Vec<(KeyOp, [&str; 8])> = vec![
            (O::Encrypt, crypto),
            (O::Decrypt, crypto),
            (O::ReEncryptFrom, crypto),
            (O::ReEncryptTo, crypto),
            (O::GenerateDataKey, crypto),
            (O::GenerateDataKeyWithoutPlaintext, crypto),
            (O::GenerateDataKeyPair, crypto),
            (O::GenerateDataKeyPairWithoutPlaintext, crypto),
            (O::GenerateMac, crypto),
            (O::VerifyMac, crypto),
            (O::Sign, crypto),
            (O::Verify, crypto),
            (O::GetPublicKey, crypto),
            (O::DeriveSharedSecret, crypto),
            (O::CreateGrant, [OK, DIS, PD, PI, OK, CR, OK, PD]),
            (O::DescribeKey, all_ok),
            (O::GetKeyPolicy, all_ok),
            (O::PutKeyPolicy, all_ok),
            (O::ListGrants, all_ok),
            (O::ListKeyPolicies, all_ok),
            (O::ListResourceTags, all_ok),
            (O::RetireGrant, all_ok),
            (O::RevokeGrant, all_ok),
            (O::DeleteAlias, all_ok),
            (O::CreateAlias, not_pd),
            (O::UpdateAliasNewTarget, not_pd),
            (O::UpdateAliasOldTarget, all_ok),
            (O::TagResource, not_pd),
            (O::UntagResource, not_pd),
            (O::UpdateKeyDescription, not_pd),
            (O::EnableKey, [OK, OK, PD, PI, OK, CR, UP, PD]),
            (O::DisableKey, [OK, OK, PD, PI, OK, CR, UP, PD]),
            (O::ScheduleKeyDeletion, [OK, OK, PD, OK, OK, OK, UP, PD]),
            (O::CancelKeyDeletion, [NPD, NPD, OK, NPD, NPD, NPD, NPD, OK]),
            (O::ListKeyRotations, all_ok),
            (O::GetKeyLastUsage, all_ok),
            (O::ListAliases, all_ok),
            (O::EnableKeyRotation, [OK, DIS, PD, EXT, CKS, CR, OK, PD]),
            (O::DisableKeyRotation, [OK, DIS, PD, EXT, CKS, CR, OK, PD]),
            (O::GetKeyRotationStatus, [OK, OK, OK, EXT, CKS, OK, OK, OK]),
            (O::RotateKeyOnDemand, [OK, DIS, PD, PI, UN, CR, UP, PD]),
            (O::GetParametersForImport, [OK, OK, PD, OK, CKS, CR, UP, PD]),
            (O::ImportKeyMaterial, [OK, OK, PD, OK, CKS, CR, OK, PD]),
            (
                O::DeleteImportedKeyMaterial,
                [OK, OK, OK, OK, CKS, CR, UP, OK],
            ),
        ];
        assert_eq!(rows.len(), KeyOp::ALL.len(), "every operation has a row");
        for (op, expected) in rows {
            for (state, want) in states.iter().zip(expected) {
                let got = match check(op, *state, "A") {
                    Ok(()) => OK.to_owned(),
                    Err(e) => format!("{}: {e}", e.aws_code()),
                };
                assert_eq!(got, want, "{op:?} in {state:?}");
            }
        }
    }
}
