//! The core's one error enum. Variants name AWS KMS exceptions; their wire strings (`__type`) are
//! written only by the protocol edge, through an exhaustive match.

/// An error a KMS operation answers. The `String` payloads are AWS's message texts; they never
/// contain key material, plaintext or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    CustomKeyStoreNotFound(String),
    #[error("{0}")]
    DependencyTimeout(String),
    #[error("{0}")]
    Disabled(String),
    #[error("The request would have succeeded, but the DryRun option is set.")]
    DryRunOperation,
    #[error("{0}")]
    ExpiredImportToken(String),
    #[error("The key ID in the request does not identify a CMK that can perform this operation.")]
    IncorrectKey,
    #[error("{0}")]
    IncorrectKeyMaterial(String),
    #[error("{0}")]
    InvalidImportToken(String),
    /// Decryption failed. AWS sends no message at all, whatever the cause (no oracle).
    #[error("")]
    InvalidCiphertext,
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    InvalidGrantId(String),
    #[error("{0}")]
    InvalidGrantToken(String),
    #[error("{0}")]
    InvalidKeyUsage(String),
    /// Verify: the signature does not verify. AWS sends no message.
    #[error("")]
    InvalidSignature,
    /// VerifyMac: the MAC does not verify. AWS sends no message.
    #[error("")]
    InvalidMac,
    #[error("{0}")]
    InvalidMarker(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// Creating, changing or deleting an alias in the reserved `alias/aws/` namespace. AWS sends no
    /// message.
    #[error("")]
    NotAuthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Tag(String),
    /// The caller (or the key) exceeded its configured request rate. SDKs retry this code.
    #[error(
        "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
    )]
    Throttling,
    #[error("{0}")]
    UnsupportedOperation(String),
    /// A complete Coral validation message (`1 validation error detected: ...`).
    #[error("{0}")]
    Validation(String),
}

impl KmsError {
    /// The AWS exception name, for audit records (the edge has its own exhaustive mapping for the wire).
    pub fn aws_code(&self) -> &'static str {
        match self {
            KmsError::AccessDenied(_) => "AccessDeniedException",
            KmsError::AlreadyExists(_) => "AlreadyExistsException",
            KmsError::Conflict(_) => "ConflictException",
            KmsError::CustomKeyStoreNotFound(_) => "CustomKeyStoreNotFoundException",
            KmsError::DependencyTimeout(_) => "DependencyTimeoutException",
            KmsError::Disabled(_) => "DisabledException",
            KmsError::DryRunOperation => "DryRunOperationException",
            KmsError::ExpiredImportToken(_) => "ExpiredImportTokenException",
            KmsError::IncorrectKey => "IncorrectKeyException",
            KmsError::IncorrectKeyMaterial(_) => "IncorrectKeyMaterialException",
            KmsError::InvalidImportToken(_) => "InvalidImportTokenException",
            KmsError::InvalidCiphertext => "InvalidCiphertextException",
            KmsError::InvalidArn(_) => "InvalidArnException",
            KmsError::InvalidGrantId(_) => "InvalidGrantIdException",
            KmsError::InvalidGrantToken(_) => "InvalidGrantTokenException",
            KmsError::InvalidKeyUsage(_) => "InvalidKeyUsageException",
            KmsError::InvalidSignature => "KMSInvalidSignatureException",
            KmsError::InvalidMac => "KMSInvalidMacException",
            KmsError::InvalidMarker(_) => "InvalidMarkerException",
            KmsError::InvalidState(_) => "KMSInvalidStateException",
            KmsError::Internal(_) => "KMSInternalException",
            KmsError::LimitExceeded(_) => "LimitExceededException",
            KmsError::MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            KmsError::NotAuthorized => "NotAuthorizedException",
            KmsError::NotFound(_) => "NotFoundException",
            KmsError::Tag(_) => "TagException",
            KmsError::Throttling => "ThrottlingException",
            KmsError::UnsupportedOperation(_) => "UnsupportedOperationException",
            KmsError::Validation(_) => "ValidationException",
        }
    }

    /// A single Coral-format validation error: `1 validation error detected: <detail>`.
    pub fn validation(detail: impl std::fmt::Display) -> KmsError {
        KmsError::Validation(format!("1 validation error detected: {detail}"))
    }

    /// A semantic validation failure whose message AWS sends without the Coral prefix.
    pub fn validation_plain(message: impl Into<String>) -> KmsError {
        KmsError::Validation(message.into())
    }

    /// Internal failures are logged with their cause and answered with a generic message, so no
    /// internal detail (paths, SQL, library errors) reaches a client.
    pub fn internal(cause: impl std::fmt::Display) -> KmsError {
        tracing::error!(%cause, "internal error");
        KmsError::Internal("An internal error occurred. Try the request again.".to_owned())
    }
}

impl From<crate::store::StoreError> for KmsError {
    fn from(e: crate::store::StoreError) -> KmsError {
        match e {
            crate::store::StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                KmsError::DependencyTimeout(
                    "The system timed out while trying to fulfill the request. The request can be retried."
                        .to_owned(),
                )
            }
            other => KmsError::internal(other),
        }
    }
}
