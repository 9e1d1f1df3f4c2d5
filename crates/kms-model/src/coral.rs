//! Pieces of Coral's behaviour that are not in the service model: the order
//! in which an enum's value set is printed, the member-path spelling, and
//! the texts of deserialization errors.

use crate::model::ShapeKind;
use serde_json::Value;

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16
/// code units, in wrapping 32-bit arithmetic.
pub(crate) fn java_string_hash(s: &str) -> u32 {
    s.encode_utf16().fold(0u32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(u32::from(unit))
    })
}

/// The order in which Coral prints an enum's value set in `Member must
/// satisfy enum value set: [...]`.
///
/// Coral prints a hash set, not the model order. The rule below reproduces
/// every such message from AWS KMS we could find:
///
/// * the table has the size `java.util.HashSet(Collection)` gives it: the
///   next power of two at or above `max(n / 0.75 + 1, 16)`;
/// * an element's bucket is `String.hashCode() & (size - 1)` — the plain
///   hash code, *without* the `h ^ (h >>> 16)` spreading of Java 8's
///   `HashMap` (with spreading the 12-value set below comes out wrong);
/// * buckets are printed in ascending order; inside a bucket the value that
///   comes later in the model comes first.
///
/// Checked against: `MacAlgorithmSpec` → `[HMAC_SHA_384, HMAC_SHA_256,
/// HMAC_SHA_224, HMAC_SHA_512]` (LocalStack snapshot recorded against AWS,
/// 2023) and the 12-value `KeySpec` of 2022/2023 → `[RSA_2048,
/// ECC_NIST_P384, ECC_NIST_P256, ECC_NIST_P521, HMAC_384, RSA_3072,
/// ECC_SECG_P256K1, RSA_4096, SYMMETRIC_DEFAULT, HMAC_256, HMAC_224,
/// HMAC_512]` (boto/boto3#3428 and the same snapshot), which needs both
/// the 32-slot table and the in-bucket order. Known miss: the same snapshot
/// shows `keyUsage` (3 values then) as `[ENCRYPT_DECRYPT, SIGN_VERIFY,
/// GENERATE_VERIFY_MAC]`, which no hash-set layout of those strings gives;
/// that check is probably KMS's own, so its set may print differently.
pub fn coral_enum_order(values: &[&'static str]) -> Vec<&'static str> {
    let n = values.len();
    let wanted = (n * 4 / 3 + 1).max(16);
    let size = wanted.next_power_of_two();
    let mask = size - 1;
    let mut keyed: Vec<(usize, usize, &'static str)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| ((java_string_hash(v) as usize) & mask, n - i, *v))
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, _, v)| v).collect()
}

/// Coral's member path segment: the wire name with its first character
/// lower-cased and nothing else changed (`KeyId` → `keyId`,
/// `AWSAccountId` → `aWSAccountId`).
pub(crate) fn push_lower_camel(path: &mut String, name: &str) {
    let mut chars = name.chars();
    if let Some(first) = chars.next() {
        path.extend(first.to_lowercase());
        path.push_str(chars.as_str());
    }
}

/// The Java class name Coral uses for a scalar shape, with its article.
fn java_type(kind: ShapeKind) -> &'static str {
    match kind {
        ShapeKind::String => "a String",
        ShapeKind::Integer => "an Integer",
        ShapeKind::Long => "a Long",
        ShapeKind::Boolean => "a Boolean",
        ShapeKind::Blob => "a Blob",
        ShapeKind::Timestamp => "a Timestamp",
        // Not scalars; not used with this function.
        ShapeKind::Structure | ShapeKind::List | ShapeKind::Map => "a Structure",
    }
}

/// Coral's name for the JSON token it found.
fn token(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "STRING_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::Bool(true) => "TRUE_VALUE",
        Value::Bool(false) => "FALSE_VALUE",
        Value::Null => "VALUE_NULL",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

/// Verified: Athena (athena-local measurements), kinesalite against Kinesis.
pub(crate) const START_OF_LIST: &str = "Start of list found where not expected";
/// Verified, including the final period: Athena, kinesalite against Kinesis.
pub(crate) const START_OF_OBJECT: &str = "Start of structure or map found where not expected.";

/// The `SerializationException` message for `value` where a shape of
/// `expected` kind was wanted.
///
/// Verified texts are listed in the crate docs. Built by analogy with them
/// and unverified: a scalar token into `a Boolean`, `a Blob` or `a
/// Timestamp` (older Coral printed `'<value>' can not be converted to an
/// Boolean` and `class java.lang.Boolean can not be converted to a Blob`;
/// `NUMBER_VALUE can not be converted to a Boolean` is also claimed by the
/// floci emulator), `NUMBER_VALUE can not be converted to an Integer` / `a
/// Long` for a fraction or an out-of-range number (Athena was measured to
/// truncate `1.5` to `1` instead), and `Expected map or null` (seen on
/// Kinesis in older kinesalite tests, not on a newer service).
pub(crate) fn type_mismatch(expected: ShapeKind, value: &Value) -> String {
    match (expected, value) {
        (ShapeKind::Structure, Value::Array(_)) | (ShapeKind::Map, Value::Array(_)) => {
            START_OF_LIST.to_string()
        }
        (ShapeKind::Structure, _) => "Expected null".to_string(),
        (ShapeKind::Map, _) => "Expected map or null".to_string(),
        (ShapeKind::List, Value::Object(_)) => START_OF_OBJECT.to_string(),
        (ShapeKind::List, _) => "Expected list or null".to_string(),
        (_, Value::Array(_)) => START_OF_LIST.to_string(),
        (_, Value::Object(_)) => START_OF_OBJECT.to_string(),
        (kind, v) => format!("{} can not be converted to {}", token(v), java_type(kind)),
    }
}

/// Why a blob's string is not accepted as base64.
///
/// Coral decodes strictly: standard alphabet, padded to a multiple of four,
/// no stray bits in the last symbol, no whitespace. The reasons are the ones
/// kinesalite recorded from Kinesis (including Coral's `dectected`); they
/// are from an older Coral and unverified for KMS today.
pub(crate) fn base64_reason(text: &str, err: Option<base64::DecodeError>) -> String {
    let len = text.encode_utf16().count();
    if !len.is_multiple_of(4) {
        return format!("Base64 encoded length is expected a multiple of 4 bytes but found: {len}");
    }
    match err {
        Some(base64::DecodeError::InvalidLastSymbol { .. }) => {
            "Invalid last non-pad Base64 character dectected".to_string()
        }
        Some(base64::DecodeError::InvalidByte(offset, _)) => {
            let ch = text
                .get(offset..)
                .and_then(|s| s.chars().next())
                .unwrap_or('=');
            let mut shown = [0u8; 4];
            format!(
                "Invalid Base64 character: '{}'",
                crate::validate::escape_controls(ch.encode_utf8(&mut shown))
            )
        }
        _ => "Invalid Base64 character: '='".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_known_values() {
        // Values of "".hashCode(), "a".hashCode(), "hello".hashCode() in Java.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello") as i32, 99_162_322);
        assert_eq!(java_string_hash("polygenelubricants") as i32, i32::MIN);
    }

    #[test]
    fn enum_order_reproduces_observed_mac_set() {
        let model = [
            "HMAC_SHA_224",
            "HMAC_SHA_256",
            "HMAC_SHA_384",
            "HMAC_SHA_512",
        ];
        assert_eq!(
            coral_enum_order(&model),
            [
                "HMAC_SHA_384",
                "HMAC_SHA_256",
                "HMAC_SHA_224",
                "HMAC_SHA_512"
            ]
        );
    }

    #[test]
    fn enum_order_reproduces_observed_twelve_value_key_spec_set() {
        // KeySpec as it was in 2022/2023, in model order.
        let model = [
            "RSA_2048",
            "RSA_3072",
            "RSA_4096",
            "ECC_NIST_P256",
            "ECC_NIST_P384",
            "ECC_NIST_P521",
            "ECC_SECG_P256K1",
            "SYMMETRIC_DEFAULT",
            "HMAC_224",
            "HMAC_256",
            "HMAC_384",
            "HMAC_512",
        ];
        assert_eq!(
            coral_enum_order(&model).join(", "),
            "RSA_2048, ECC_NIST_P384, ECC_NIST_P256, ECC_NIST_P521, HMAC_384, RSA_3072, \
             ECC_SECG_P256K1, RSA_4096, SYMMETRIC_DEFAULT, HMAC_256, HMAC_224, HMAC_512"
        );
    }

    #[test]
    fn enum_order_keeps_data_key_spec() {
        assert_eq!(
            coral_enum_order(&["AES_256", "AES_128"]),
            ["AES_256", "AES_128"]
        );
    }

    #[test]
    fn lower_camel_only_touches_the_first_character() {
        for (wire, path) in [
            ("KeyId", "keyId"),
            ("AWSAccountId", "aWSAccountId"),
            ("", ""),
        ] {
            let mut s = String::new();
            push_lower_camel(&mut s, wire);
            assert_eq!(s, path);
        }
    }

    #[test]
    fn base64_reasons() {
        assert_eq!(
            base64_reason("23456", None),
            "Base64 encoded length is expected a multiple of 4 bytes but found: 5"
        );
    }
}
