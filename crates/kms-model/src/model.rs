//! Types of the generated model tables (`generated.rs`).
//!
//! Shapes refer to each other by index into [`crate::generated::SHAPES`].

/// The wire type of a shape (botocore's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeKind {
    Structure,
    String,
    Blob,
    Integer,
    Long,
    Boolean,
    Timestamp,
    List,
    Map,
}

/// A structure member, in model order.
#[derive(Debug)]
pub struct Member {
    /// Name on the wire (the JSON object key), e.g. `KeyId`.
    pub name: &'static str,
    /// Index of the target shape in [`crate::generated::SHAPES`].
    pub target: usize,
    /// Listed in the structure's `required`.
    pub required: bool,
    /// The member or its target shape is marked `sensitive`: its value is
    /// never echoed in error messages.
    pub sensitive: bool,
}

/// A `pattern` constraint.
#[derive(Debug)]
pub struct Pattern {
    /// Index into [`crate::generated::PATTERNS`] (used for the compiled-regex cache).
    pub id: usize,
    /// The pattern as the model spells it (Java syntax); quoted in messages.
    pub model: &'static str,
    /// The same pattern for `regex-lite`, anchored at both ends.
    pub regex: &'static str,
}

/// One shape and the constraints validation needs.
#[derive(Debug)]
pub struct Shape {
    pub name: &'static str,
    pub kind: ShapeKind,
    /// The shape itself is marked `sensitive`.
    pub sensitive: bool,
    /// Structure members in model order (empty for other kinds).
    pub members: &'static [Member],
    /// Enum values in model order (strings only; empty if not an enum).
    pub enum_values: &'static [&'static str],
    /// Minimum: UTF-16 length (string), decoded bytes (blob), items (list),
    /// entries (map) or value (integer/long).
    pub min: Option<i64>,
    /// Maximum, same units as `min`.
    pub max: Option<i64>,
    pub pattern: Option<&'static Pattern>,
    /// List member shape.
    pub member: Option<usize>,
    /// Map key shape.
    pub key: Option<usize>,
    /// Map value shape.
    pub value: Option<usize>,
}

/// An operation of the service.
#[derive(Debug)]
pub struct Operation {
    /// e.g. `GenerateDataKey` (the part after `TrentService.` in `X-Amz-Target`).
    pub name: &'static str,
    /// Index of the input structure in [`crate::generated::SHAPES`].
    pub input: usize,
    /// Member names of the output structure, in model order.
    pub output_members: &'static [&'static str],
}
