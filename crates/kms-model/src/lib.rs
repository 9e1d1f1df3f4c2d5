//! The AWS KMS wire model and Coral-style input validation.
//!
//! [`validate_input`] rejects a request body the way AWS KMS (a Coral
//! service) does before it looks at any key:
//!
//! * a body that is not a JSON object, or a member of the wrong JSON type,
//!   is a [`WireError::Serialization`];
//! * violations of the model's constraints (required, length, range, enum,
//!   pattern) are collected, all of them, into one
//!   [`WireError::Validation`] in Coral's message format.
//!
//! The constraint tables in [`generated`] are produced from botocore's copy
//! of the official service model by `python3 scripts/gen-kms-model.py`.
//! Nothing here does I/O, and nothing panics.
//!
//! # Where the message texts come from
//!
//! Verified means seen in a response of a real AWS Coral service, quoted in a
//! public source; everything else is marked unverified where it is built.
//!
//! * Validation: `1 validation error detected: Value '0' at 'numberOfBytes'
//!   failed to satisfy constraint: Member must have value greater than or
//!   equal to 1` (and `... less than or equal to 1024`), `Value at
//!   'plaintext' failed to satisfy constraint: Member must have length less
//!   than or equal to 4096` (sensitive form), and the enum sets of
//!   `macAlgorithm` and `keySpec`: LocalStack's KMS snapshot tests recorded
//!   against AWS (tests/aws/services/kms/test_kms.snapshot.json, 2023) and
//!   boto/boto3#3428 (2022). `Value null at ... Member must not be null`:
//!   Athena measurements published by athena-local. List paths
//!   `records.36.member.data` and blob values rendered as
//!   `java.nio.HeapByteBuffer[pos=0 lim=N cap=N]`: Kinesis, Firehose and
//!   Rekognition errors quoted in public code. `N validation errors
//!   detected: e1; e2`: Athena (athena-local) and kinesalite.
//! * Serialization: `STRING_VALUE can not be converted to an Integer`
//!   (CodeDeploy, aws/aws-cdk#27087; Athena), `NUMBER_VALUE can not be
//!   converted to a String` (Lambda, aarondfrancis/sidecar#148; Athena),
//!   `TRUE_VALUE`/`FALSE_VALUE can not be converted to a String` / `an
//!   Integer`, `Start of list found where not expected`, `Start of structure
//!   or map found where not expected.` (with the final period), `Expected
//!   list or null`, `Expected null` (Athena, measured by athena-local;
//!   the last four also in kinesalite's tests against Kinesis),
//!   `STRING_VALUE can not be converted to a Long` (Amazon Ads API error
//!   quoted in segmentio/action-destinations tests), `Expected map or null`
//!   (kinesalite). The unverified texts and choices are documented where
//!   they are built (`src/coral.rs`, `src/validate.rs`).

mod coral;
#[rustfmt::skip]
pub mod generated;
pub mod model;
mod validate;

use std::fmt;

pub use coral::coral_enum_order;
pub use generated::{API_VERSION, BOTOCORE_VERSION};
use model::{Operation, Shape};

/// Why a request body was rejected before any key lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// `SerializationException`: the body is not a JSON object or a member
    /// has the wrong JSON type. The string is the message; it is empty where
    /// Coral sends no message at all (a body that is JSON `null`, a string,
    /// a number or a boolean), in which case the response should carry only
    /// `__type`.
    Serialization(String),
    /// `ValidationException`: `N validation error(s) detected: ...`.
    Validation(String),
}

impl WireError {
    /// The error code for `__type`: `SerializationException` or `ValidationException`.
    pub fn error_type(&self) -> &'static str {
        match self {
            WireError::Serialization(_) => "SerializationException",
            WireError::Validation(_) => "ValidationException",
        }
    }

    /// The message (may be empty for [`WireError::Serialization`]).
    pub fn message(&self) -> &str {
        match self {
            WireError::Serialization(m) | WireError::Validation(m) => m,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message().is_empty() {
            f.write_str(self.error_type())
        } else {
            write!(f, "{}: {}", self.error_type(), self.message())
        }
    }
}

impl std::error::Error for WireError {}

/// All KMS operation names in the model (e.g. `GenerateDataKey`), sorted.
pub fn operation_names() -> impl Iterator<Item = &'static str> {
    generated::OPERATIONS.iter().map(|op| op.name)
}

/// Whether `name` is an operation of the model (case-sensitive, without the
/// `TrentService.` prefix).
pub fn is_operation(name: &str) -> bool {
    operation(name).is_some()
}

/// The model's entry for an operation.
pub fn operation(name: &str) -> Option<&'static Operation> {
    generated::OPERATIONS
        .binary_search_by(|op| op.name.cmp(name))
        .ok()
        .and_then(|i| generated::OPERATIONS.get(i))
}

/// A shape by its index (as found in [`model::Member::target`] etc.).
pub fn shape(index: usize) -> Option<&'static Shape> {
    generated::SHAPES.get(index)
}

/// The input structure of an operation.
pub fn input_shape(operation_name: &str) -> Option<&'static Shape> {
    operation(operation_name).and_then(|op| shape(op.input))
}

/// Validate a parsed request body against the operation's input shape.
///
/// Unknown members are ignored (AWS ignores members it does not know; newer
/// SDKs send newer ones) and never looked into. JSON `null` for a member, a
/// list item or a map value counts as absent. An operation that is not in
/// the model is not this function's business: it returns `Ok(())` (the
/// caller answers `UnknownOperationException` first).
///
/// Members are walked in model order, depth first; the first JSON type
/// mismatch found that way is returned at once as
/// [`WireError::Serialization`]; otherwise every constraint violation is
/// reported, in the same order, in one [`WireError::Validation`].
pub fn validate_input(operation: &str, input: &serde_json::Value) -> Result<(), WireError> {
    match self::operation(operation) {
        Some(op) => validate::validate(op.input, input),
        None => Ok(()),
    }
}
