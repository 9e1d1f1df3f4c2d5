//! The generic validator: walks a parsed JSON body along the model.
//!
//! Choices where no real Coral output was found (unverified):
//!
//! * Values are rendered Java-style: strings as they are, integers in
//!   decimal, lists as `[a, b]`, maps and structures as `{k=v, k2=v2}` (maps
//!   in the order of the parsed JSON object, structures in model order of
//!   the members present), blobs as `java.nio.HeapByteBuffer[pos=0 lim=N
//!   cap=N]` (verified for Kinesis/Firehose/Rekognition). Sensitive values
//!   inside a rendered list or map are shown as `*** Sensitive Data Redacted
//!   ***`; a sensitive member itself is reported without its value (`Value at
//!   'plaintext' ...`, verified).
//! * One member failing several constraints gives one violation each, in
//!   the order length, range, pattern, enum.
//! * A list's or map's own constraints are reported before its items'.
//! * Map keys and scalar map values that break their shape's constraints
//!   are reported on the map as `Value at '<map>' failed to satisfy
//!   constraint: Map keys must satisfy constraint: [<c>, ...]` (resp. `Map
//!   value must satisfy constraint: [...]`), the form the floci emulator
//!   documents as probed on SES; structure/list/map values are walked with
//!   the path `<map>.<key>`. No KMS input map has such constraints today.
//! * A JSON `null` list item or map value is skipped (Athena accepts
//!   `null` list items and drops them), and items are numbered after that.
//! * A blob whose text is not valid base64 gives `'<text>' can not be
//!   converted to a Blob: <reason>` (kinesalite, older Coral); for a
//!   sensitive member the text is left out: `Value can not be converted to a
//!   Blob: <reason>`.
//! * A top-level JSON value that is not an object or an array gives a
//!   `SerializationException` without message (Athena, measured); an array
//!   gives `Start of list found where not expected` (Athena, measured).

use crate::WireError;
use crate::coral::{self, START_OF_LIST, push_lower_camel, type_mismatch};
use crate::generated::{PATTERNS, SHAPES};
use crate::model::{Pattern, Shape, ShapeKind};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use regex_lite::Regex;
use serde_json::{Map, Number, Value};
use std::sync::OnceLock;

/// How deep the walk follows the model. The KMS input model is at most four
/// levels deep and the generator refuses recursive shapes, so this only
/// guards against a broken table.
const MAX_DEPTH: usize = 32;

const REDACTED: &str = "*** Sensitive Data Redacted ***";

pub(crate) fn validate(input_shape: usize, input: &Value) -> Result<(), WireError> {
    let object = match input {
        Value::Object(object) => object,
        Value::Array(_) => return Err(WireError::Serialization(START_OF_LIST.to_string())),
        _ => return Err(WireError::Serialization(String::new())),
    };
    let Some(shape) = SHAPES.get(input_shape) else {
        return Ok(());
    };
    let mut walker = Walker {
        path: String::new(),
        violations: Vec::new(),
    };
    walker.structure(shape, object, 0)?;
    match walker.violations.len() {
        0 => Ok(()),
        1 => Err(WireError::Validation(format!(
            "1 validation error detected: {}",
            walker.violations.join("; ")
        ))),
        n => Err(WireError::Validation(format!(
            "{n} validation errors detected: {}",
            walker.violations.join("; ")
        ))),
    }
}

struct Walker {
    /// Coral path of the value being looked at (`tags.1.member.tagKey`).
    path: String,
    violations: Vec<String>,
}

/// What a scalar check found: the failed constraints and, if any, the value
/// as it is printed.
struct Scalar {
    failures: Vec<String>,
    rendered: String,
}

impl Walker {
    fn structure(
        &mut self,
        shape: &Shape,
        object: &Map<String, Value>,
        depth: usize,
    ) -> Result<(), WireError> {
        for member in shape.members {
            let value = object.get(member.name).filter(|v| !v.is_null());
            if value.is_none() && !member.required {
                // Nothing to check and nothing to report: the path is built only for members
                // that are looked at (most of an operation's members are absent from a call).
                continue;
            }
            let mark = self.path.len();
            if !self.path.is_empty() {
                self.path.push('.');
            }
            push_lower_camel(&mut self.path, member.name);
            match value {
                None => self.violations.push(format!(
                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                    self.path
                )),
                Some(value) => self.value(member.target, value, member.sensitive, depth + 1)?,
            }
            self.path.truncate(mark);
        }
        Ok(())
    }

    fn value(
        &mut self,
        target: usize,
        value: &Value,
        sensitive: bool,
        depth: usize,
    ) -> Result<(), WireError> {
        let Some(shape) = SHAPES.get(target) else {
            return Ok(());
        };
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let sensitive = sensitive || shape.sensitive;
        match shape.kind {
            ShapeKind::Structure => match value {
                Value::Object(object) => self.structure(shape, object, depth),
                other => Err(mismatch(shape.kind, other)),
            },
            ShapeKind::List => match value {
                Value::Array(items) => self.list(shape, items, sensitive, depth),
                other => Err(mismatch(shape.kind, other)),
            },
            ShapeKind::Map => match value {
                Value::Object(entries) => self.map(shape, entries, sensitive, depth),
                other => Err(mismatch(shape.kind, other)),
            },
            _ => {
                let scalar = scalar(shape, value, sensitive)?;
                for failure in scalar.failures {
                    self.push(&failure, sensitive, &scalar.rendered);
                }
                Ok(())
            }
        }
    }

    fn list(
        &mut self,
        shape: &Shape,
        items: &[Value],
        sensitive: bool,
        depth: usize,
    ) -> Result<(), WireError> {
        let present = || items.iter().filter(|v| !v.is_null());
        let count = present().count();
        let failures = length_failures(shape, count);
        if !failures.is_empty() {
            let rendered = render(shape, &Value::Array(present().cloned().collect()), 0);
            for failure in failures {
                self.push(&failure, sensitive, &rendered);
            }
        }
        let Some(member) = shape.member else {
            return Ok(());
        };
        for (i, item) in present().enumerate() {
            let mark = self.path.len();
            self.path.push('.');
            self.path.push_str(&(i + 1).to_string());
            self.path.push_str(".member");
            self.value(member, item, sensitive, depth + 1)?;
            self.path.truncate(mark);
        }
        Ok(())
    }

    fn map(
        &mut self,
        shape: &Shape,
        entries: &Map<String, Value>,
        sensitive: bool,
        depth: usize,
    ) -> Result<(), WireError> {
        let count = entries.values().filter(|v| !v.is_null()).count();
        let failures = length_failures(shape, count);
        if !failures.is_empty() {
            let rendered = render(shape, &Value::Object(entries.clone()), 0);
            for failure in failures {
                self.push(&failure, sensitive, &rendered);
            }
        }
        let key_shape = shape
            .key
            .and_then(|k| SHAPES.get(k))
            .filter(|k| has_constraints(k));
        let value_shape = shape.value.and_then(|v| SHAPES.get(v));
        for (key, value) in entries {
            if value.is_null() {
                continue;
            }
            if let Some(key_shape) = key_shape {
                let key_check = scalar(key_shape, &Value::String(key.clone()), sensitive)?;
                if !key_check.failures.is_empty() {
                    self.violations.push(format!(
                        "Value at '{}' failed to satisfy constraint: Map keys must satisfy constraint: [{}]",
                        self.path,
                        key_check.failures.join(", ")
                    ));
                }
            }
            let (Some(value_index), Some(value_shape)) = (shape.value, value_shape) else {
                continue;
            };
            match value_shape.kind {
                ShapeKind::Structure | ShapeKind::List | ShapeKind::Map => {
                    let mark = self.path.len();
                    self.path.push('.');
                    self.path.push_str(&escape_controls(key));
                    self.value(value_index, value, sensitive, depth + 1)?;
                    self.path.truncate(mark);
                }
                _ => {
                    let value_check = scalar(value_shape, value, sensitive)?;
                    if !value_check.failures.is_empty() {
                        self.violations.push(format!(
                            "Value at '{}' failed to satisfy constraint: Map value must satisfy constraint: [{}]",
                            self.path,
                            value_check.failures.join(", ")
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, constraint: &str, sensitive: bool, rendered: &str) {
        let message = if sensitive {
            format!(
                "Value at '{}' failed to satisfy constraint: {constraint}",
                self.path
            )
        } else {
            let rendered = escape_controls(rendered);
            format!(
                "Value '{rendered}' at '{}' failed to satisfy constraint: {constraint}",
                self.path
            )
        };
        self.violations.push(message);
    }
}

fn has_constraints(shape: &Shape) -> bool {
    shape.min.is_some()
        || shape.max.is_some()
        || shape.pattern.is_some()
        || !shape.enum_values.is_empty()
}

fn mismatch(kind: ShapeKind, value: &Value) -> WireError {
    WireError::Serialization(type_mismatch(kind, value))
}

/// Type-check a scalar and collect the constraints it breaks.
fn scalar(shape: &Shape, value: &Value, sensitive: bool) -> Result<Scalar, WireError> {
    let mut failures = Vec::new();
    let rendered = match shape.kind {
        ShapeKind::String => {
            let Value::String(text) = value else {
                return Err(mismatch(shape.kind, value));
            };
            let units = text.encode_utf16().count();
            failures.extend(length_failures(shape, units));
            if let Some(pattern) = shape.pattern
                && !pattern_matches(pattern, text)
            {
                failures.push(format!(
                    "Member must satisfy regular expression pattern: {}",
                    pattern.model
                ));
            }
            if !shape.enum_values.is_empty() && !shape.enum_values.contains(&text.as_str()) {
                failures.push(format!(
                    "Member must satisfy enum value set: [{}]",
                    coral::coral_enum_order(shape.enum_values).join(", ")
                ));
            }
            if failures.is_empty() {
                String::new()
            } else {
                text.clone()
            }
        }
        ShapeKind::Blob => {
            let Value::String(text) = value else {
                return Err(mismatch(shape.kind, value));
            };
            let bytes = decode_blob(text, sensitive)?;
            failures.extend(length_failures(shape, bytes));
            byte_buffer(bytes)
        }
        ShapeKind::Integer | ShapeKind::Long => {
            let Value::Number(number) = value else {
                return Err(mismatch(shape.kind, value));
            };
            let Some(n) = integral(number, shape.kind) else {
                return Err(mismatch(shape.kind, value));
            };
            if let Some(min) = shape.min
                && n < min
            {
                failures.push(format!(
                    "Member must have value greater than or equal to {min}"
                ));
            }
            if let Some(max) = shape.max
                && n > max
            {
                failures.push(format!(
                    "Member must have value less than or equal to {max}"
                ));
            }
            n.to_string()
        }
        ShapeKind::Boolean => match value {
            Value::Bool(b) => b.to_string(),
            other => return Err(mismatch(shape.kind, other)),
        },
        ShapeKind::Timestamp => match value {
            Value::Number(n) => n.to_string(),
            other => return Err(mismatch(shape.kind, other)),
        },
        ShapeKind::Structure | ShapeKind::List | ShapeKind::Map => String::new(),
    };
    Ok(Scalar { failures, rendered })
}

fn length_failures(shape: &Shape, len: usize) -> Vec<String> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut failures = Vec::new();
    if let Some(min) = shape.min
        && len < min
    {
        failures.push(format!(
            "Member must have length greater than or equal to {min}"
        ));
    }
    if let Some(max) = shape.max
        && len > max
    {
        failures.push(format!(
            "Member must have length less than or equal to {max}"
        ));
    }
    failures
}

/// A JSON number as an integer of the shape's width, or `None` if it is a
/// fraction or out of range (`1.0` and `1e3` are integers).
fn integral(number: &Number, kind: ShapeKind) -> Option<i64> {
    let n = if let Some(i) = number.as_i64() {
        i
    } else if number.is_u64() {
        return None;
    } else {
        let f = number.as_f64()?;
        // 2^63 as f64; every finite f64 in [-2^63, 2^63) converts exactly.
        const TWO_63: f64 = 9_223_372_036_854_775_808.0;
        if !(f.is_finite() && f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f)) {
            return None;
        }
        f as i64
    };
    match kind {
        ShapeKind::Integer => i32::try_from(n).ok().map(i64::from),
        _ => Some(n),
    }
}

/// Decode a blob's base64 text strictly (RFC 4648 standard alphabet, with
/// padding, canonical last symbol) and return the decoded length.
fn decode_blob(text: &str, sensitive: bool) -> Result<usize, WireError> {
    let err = if !text.len().is_multiple_of(4) {
        None
    } else {
        match STANDARD.decode(text) {
            Ok(bytes) => return Ok(bytes.len()),
            Err(err) => Some(err),
        }
    };
    let reason = coral::base64_reason(text, err);
    Err(WireError::Serialization(if sensitive {
        format!("Value can not be converted to a Blob: {reason}")
    } else {
        format!(
            "'{}' can not be converted to a Blob: {reason}",
            escape_controls(text)
        )
    }))
}

/// Decoded length of base64 text already known to be valid.
fn decoded_len(text: &str) -> usize {
    let padding = text.bytes().rev().take_while(|&b| b == b'=').count();
    (text.len() / 4 * 3).saturating_sub(padding)
}

fn byte_buffer(len: usize) -> String {
    format!("java.nio.HeapByteBuffer[pos=0 lim={len} cap={len}]")
}

static COMPILED: [OnceLock<Option<Regex>>; PATTERNS.len()] =
    [const { OnceLock::new() }; PATTERNS.len()];

/// Whether the whole value matches (Java `Matcher.matches()`). A pattern
/// regex-lite cannot compile (a test makes sure none exists) matches
/// everything rather than rejecting valid input.
fn pattern_matches(pattern: &Pattern, text: &str) -> bool {
    let compiled = COMPILED
        .get(pattern.id)
        .map(|cell| cell.get_or_init(|| Regex::new(pattern.regex).ok()));
    match compiled {
        Some(Some(regex)) => regex.is_match(text),
        _ => true,
    }
}

/// Render a value of `shape` the way Java's `toString` would print it
/// (see the module docs). Only called for values that already passed the
/// type checks.
fn render(shape: &Shape, value: &Value, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return String::new();
    }
    let child = |index: Option<usize>, v: &Value| -> String {
        match index.and_then(|i| SHAPES.get(i)) {
            Some(s) if s.sensitive => REDACTED.to_string(),
            Some(s) => render(s, v, depth + 1),
            None => String::new(),
        }
    };
    match (shape.kind, value) {
        (ShapeKind::Blob, Value::String(text)) => byte_buffer(decoded_len(text)),
        (ShapeKind::List, Value::Array(items)) => {
            let parts: Vec<String> = items
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| child(shape.member, v))
                .collect();
            format!("[{}]", parts.join(", "))
        }
        (ShapeKind::Map, Value::Object(entries)) => {
            let parts: Vec<String> = entries
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k}={}", child(shape.value, v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        (ShapeKind::Structure, Value::Object(fields)) => {
            let parts: Vec<String> = shape
                .members
                .iter()
                .filter_map(|m| {
                    let v = fields.get(m.name).filter(|v| !v.is_null())?;
                    let text = if m.sensitive {
                        REDACTED.to_string()
                    } else {
                        child(Some(m.target), v)
                    };
                    Some(format!("{}={text}", m.name))
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        (_, Value::String(text)) => text.clone(),
        (_, other) => other.to_string(),
    }
}

/// A caller's value as echoed in an error message, with control characters escaped (`\r`,
/// `\u{1b}`) so a message is always one line in logs and terminals.
/// AWS-DEVIATION: AWS echoes them raw (JSON-escaped in the body).
pub(crate) fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}
