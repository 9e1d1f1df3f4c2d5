//! The one error type of this crate.

/// Why a policy document was rejected.
///
/// The core maps every variant to `MalformedPolicyDocumentException`; the
/// message says where the document is wrong (`Statement[1] (Sid "Admins"): ...`)
/// so that an operator can fix it without guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not a policy document this crate accepts.
    #[error("{0}")]
    Malformed(String),
}
