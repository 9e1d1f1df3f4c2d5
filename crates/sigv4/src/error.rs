//! Verification failures, worded the way AWS words them.

/// Why a request failed SigV4 verification.
///
/// `Display` gives the message AWS returns for the same failure and
/// [`Error::aws_error_code`] the exception name (`__type`) that goes with it,
/// as returned by the JSON-protocol services (KMS, DynamoDB, Kinesis, ...).
/// S3 uses other codes (`SignatureDoesNotMatch`, `AuthorizationHeaderMalformed`,
/// `RequestTimeTooSkewed`, ...); mapping to those is the caller's business.
///
/// Where a message text comes from is noted on each variant. "dynalite" refers
/// to the comments in `mhart/dynalite`'s `index.js`, which record the
/// responses of the real DynamoDB endpoint (a Coral service, like KMS).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No usable `Authorization` header: absent, empty, or not an `AWS4-`
    /// scheme at all (for example `Basic ...`).
    ///
    /// AWS code `MissingAuthenticationTokenException`, message
    /// `Request is missing Authentication Token`. Source: dynalite, which
    /// also records that a header not starting with `AWS4-` gets this error;
    /// the same text appears in captured DynamoDB responses
    /// (`{"__type":"com.amazon.coral.service#MissingAuthenticationTokenException",
    /// "message":"Request is missing Authentication Token"}`). API Gateway
    /// says `Missing Authentication Token` instead; the Coral wording is used
    /// because KMS is a Coral service. Not verified against KMS itself.
    #[error("Request is missing Authentication Token")]
    MissingAuthorization,

    /// The `Authorization` header (or the request date) is malformed.
    ///
    /// AWS code `IncompleteSignatureException`. The message is built where the
    /// error is raised; each construction site documents its text and source.
    #[error("{0}")]
    Incomplete(String),

    /// The header is well-formed but its credential scope or signed-header
    /// list is unacceptable: wrong terminator, scope date not the request's
    /// date, wrong region or service, `host` not signed.
    ///
    /// AWS code `InvalidSignatureException` (dynalite records these scope and
    /// `Host` errors under that type, not `IncompleteSignatureException`).
    /// Each construction site documents its text and source.
    #[error("{0}")]
    InvalidSignature(String),

    /// The signature does not match the one computed here, or a header the
    /// client claims to have signed is absent (the client signed a value the
    /// server cannot see, so the outcome is the same).
    ///
    /// AWS code `InvalidSignatureException`. Text from dynalite and from the
    /// AWS IAM user guide ("Troubleshoot signed requests"); AWS appends the
    /// canonical request and string to sign it computed, which is left out
    /// here.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. \
         Consult the service documentation for details."
    )]
    SignatureMismatch,

    /// The request time is more than the allowed skew before server time.
    ///
    /// AWS code `InvalidSignatureException`, e.g. `Signature expired:
    /// 20180707T233021Z is now earlier than 20180710T071214Z
    /// (20180710T071714Z - 5 min.)` (quoted from m0ngr31/kanzi issue 270; the
    /// same shape with `15 min.` in aws/aws-sdk-js issue 254).
    #[error(
        "Signature expired: {request} is now earlier than {limit} ({now} - {skew_minutes} min.)"
    )]
    SignatureExpired {
        /// The request's signing time, `YYYYMMDD'T'HHMMSS'Z'`.
        request: String,
        /// Server time minus the allowed skew.
        limit: String,
        /// Server time.
        now: String,
        /// The allowed skew in whole minutes.
        skew_minutes: i64,
    },

    /// The request time is more than the allowed skew after server time.
    ///
    /// AWS code `InvalidSignatureException`, e.g. `Signature not yet current:
    /// 20181002T170509Z is still later than 20181002T170312Z
    /// (20181002T165812Z + 5 min.)` (quoted from aws-sdk-go issue 2194, also
    /// JuliaCloud/AWS.jl issue 206 and aws-sdk-js issue 1652).
    #[error(
        "Signature not yet current: {request} is still later than {limit} ({now} + {skew_minutes} min.)"
    )]
    SignatureNotYetCurrent {
        /// The request's signing time, `YYYYMMDD'T'HHMMSS'Z'`.
        request: String,
        /// Server time plus the allowed skew.
        limit: String,
        /// Server time.
        now: String,
        /// The allowed skew in whole minutes.
        skew_minutes: i64,
    },
}

impl Error {
    /// The AWS exception name (`__type`) a JSON-protocol service such as KMS
    /// returns for this failure.
    pub fn aws_error_code(&self) -> &'static str {
        match self {
            Error::MissingAuthorization => "MissingAuthenticationTokenException",
            Error::Incomplete(_) => "IncompleteSignatureException",
            Error::InvalidSignature(_)
            | Error::SignatureMismatch
            | Error::SignatureExpired { .. }
            | Error::SignatureNotYetCurrent { .. } => "InvalidSignatureException",
        }
    }
}
