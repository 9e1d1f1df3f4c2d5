//! Behaviour of `validate_input` against the messages AWS KMS sends.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tresor_kms_model::{
    WireError, coral_enum_order, generated, input_shape, is_operation, model::ShapeKind,
    operation_names, validate_input,
};

fn validation(op: &str, body: Value) -> String {
    match validate_input(op, &body) {
        Err(WireError::Validation(message)) => message,
        other => format!("<{op} {body}: expected a ValidationException, got {other:?}>"),
    }
}

fn serialization(op: &str, body: Value) -> String {
    match validate_input(op, &body) {
        Err(WireError::Serialization(message)) => message,
        other => format!("<{op} {body}: expected a SerializationException, got {other:?}>"),
    }
}

fn one(error: &str) -> String {
    format!("1 validation error detected: {error}")
}

fn b64(len: usize) -> String {
    STANDARD.encode(vec![7u8; len])
}

// ---- GenerateDataKey -------------------------------------------------------

#[test]
fn generate_data_key_number_of_bytes_too_small() {
    assert_eq!(
        validation("GenerateDataKey", json!({"KeyId": "k", "NumberOfBytes": 0})),
        one(
            "Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )
    );
}

#[test]
fn generate_data_key_number_of_bytes_too_large() {
    assert_eq!(
        validation(
            "GenerateDataKey",
            json!({"KeyId": "k", "NumberOfBytes": 1025})
        ),
        one(
            "Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
        )
    );
}

#[test]
fn generate_data_key_key_spec_not_in_enum() {
    assert_eq!(
        validation(
            "GenerateDataKey",
            json!({"KeyId": "k", "KeySpec": "INVALID"})
        ),
        one(
            "Value 'INVALID' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
        )
    );
}

#[test]
fn generate_data_key_key_id_missing() {
    assert_eq!(
        validation("GenerateDataKey", json!({"KeySpec": "AES_256"})),
        one("Value null at 'keyId' failed to satisfy constraint: Member must not be null")
    );
}

#[test]
fn generate_data_key_key_id_too_long() {
    let key_id = "k".repeat(2049);
    assert_eq!(
        validation("GenerateDataKey", json!({"KeyId": key_id})),
        one(&format!(
            "Value '{key_id}' at 'keyId' failed to satisfy constraint: Member must have length less than or equal to 2048"
        ))
    );
    // 2048 is fine, and so is the boundary of NumberOfBytes.
    let ok = json!({"KeyId": "k".repeat(2048), "NumberOfBytes": 1024, "KeySpec": "AES_128"});
    assert_eq!(validate_input("GenerateDataKey", &ok), Ok(()));
}

#[test]
fn key_id_empty_string_is_too_short() {
    assert_eq!(
        validation("DescribeKey", json!({"KeyId": ""})),
        one(
            "Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1"
        )
    );
}

#[test]
fn two_violations_use_the_plural_and_model_order() {
    // Model order of GenerateDataKeyRequest: KeyId, EncryptionContext,
    // NumberOfBytes, KeySpec, ... -- not the order in the body.
    assert_eq!(
        validation(
            "GenerateDataKey",
            json!({"KeySpec": "AES-256", "NumberOfBytes": 0})
        ),
        "3 validation errors detected: \
         Value null at 'keyId' failed to satisfy constraint: Member must not be null; \
         Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1; \
         Value 'AES-256' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
    );
    assert_eq!(
        validation("GenerateDataKey", json!({"NumberOfBytes": 2000})),
        "2 validation errors detected: \
         Value null at 'keyId' failed to satisfy constraint: Member must not be null; \
         Value '2000' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
    );
}

// ---- Encrypt ---------------------------------------------------------------

#[test]
fn encrypt_plaintext_too_long_is_reported_without_its_value() {
    assert_eq!(
        validation("Encrypt", json!({"KeyId": "k", "Plaintext": b64(4097)})),
        one(
            "Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
        )
    );
    assert_eq!(
        validate_input("Encrypt", &json!({"KeyId": "k", "Plaintext": b64(4096)})),
        Ok(())
    );
}

#[test]
fn encrypt_plaintext_empty_is_too_short() {
    assert_eq!(
        validation("Encrypt", json!({"KeyId": "k", "Plaintext": ""})),
        one(
            "Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1"
        )
    );
}

#[test]
fn encrypt_plaintext_invalid_base64_is_a_serialization_error() {
    for bad in ["abc", "ab$=", "YQ", "YR==", "YQ==YQ==x", "Y Q=="] {
        let message = serialization("Encrypt", json!({"KeyId": "k", "Plaintext": bad}));
        assert!(
            message.starts_with("Value can not be converted to a Blob: "),
            "{bad}: {message}"
        );
        assert!(!message.contains(bad), "sensitive text echoed: {message}");
    }
    assert_eq!(
        serialization("Encrypt", json!({"KeyId": "k", "Plaintext": "abc"})),
        "Value can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 3"
    );
    assert_eq!(
        serialization("Encrypt", json!({"KeyId": "k", "Plaintext": "YR=="})),
        "Value can not be converted to a Blob: Invalid last non-pad Base64 character dectected"
    );
    assert_eq!(
        serialization("Encrypt", json!({"KeyId": "k", "Plaintext": "ab$="})),
        "Value can not be converted to a Blob: Invalid Base64 character: '$'"
    );
}

#[test]
fn non_sensitive_blob_errors_echo_the_text_and_render_byte_buffers() {
    assert_eq!(
        serialization("Decrypt", json!({"CiphertextBlob": "23456"})),
        "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"
    );
    assert_eq!(
        validation("Decrypt", json!({"CiphertextBlob": b64(6145)})),
        one(
            "Value 'java.nio.HeapByteBuffer[pos=0 lim=6145 cap=6145]' at 'ciphertextBlob' failed to satisfy constraint: Member must have length less than or equal to 6144"
        )
    );
}

// ---- CreateKey -------------------------------------------------------------

#[test]
fn create_key_description_too_long() {
    let description = "d".repeat(8193);
    assert_eq!(
        validation("CreateKey", json!({"Description": description})),
        one(&format!(
            "Value '{description}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192"
        ))
    );
    assert_eq!(
        validate_input("CreateKey", &json!({"Description": ""})),
        Ok(())
    );
}

#[test]
fn create_key_tag_key_too_long_has_a_list_path() {
    let tag_key = "t".repeat(129);
    assert_eq!(
        validation(
            "CreateKey",
            json!({"Tags": [{"TagKey": tag_key, "TagValue": "v"}]})
        ),
        one(&format!(
            "Value '{tag_key}' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128"
        ))
    );
    assert_eq!(
        validation(
            "TagResource",
            json!({"KeyId": "k", "Tags": [{"TagKey": "a", "TagValue": "b"}, {"TagKey": "c"}]})
        ),
        one(
            "Value null at 'tags.2.member.tagValue' failed to satisfy constraint: Member must not be null"
        )
    );
}

#[test]
fn create_key_key_usage_not_in_enum() {
    // Set order from coral_enum_order (see its docs: AWS was seen printing
    // the older three-value set in another order).
    assert_eq!(
        validation("CreateKey", json!({"KeyUsage": "RANDOM"})),
        one(
            "Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [GENERATE_VERIFY_MAC, ENCRYPT_DECRYPT, KEY_AGREEMENT, SIGN_VERIFY]"
        )
    );
}

#[test]
fn create_key_policy_outside_pattern() {
    let policy = "{\"Version\": \"2012-10-17\", \"Id\": \"\u{20ac}\"}";
    assert_eq!(
        validation("CreateKey", json!({"Policy": policy})),
        one(&format!(
            "Value '{policy}' at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"
        ))
    );
    // Tabs, newlines and Latin-1 are inside the pattern.
    let ok = "{\n\t\"Id\": \"caf\u{e9}\"\r\n}";
    assert_eq!(validate_input("CreateKey", &json!({"Policy": ok})), Ok(()));
}

#[test]
fn string_length_counts_utf16_code_units() {
    // 1024 U+1F600 are 2048 UTF-16 code units: within KeyIdType's 2048.
    let ok = "\u{1F600}".repeat(1024);
    assert_eq!(validate_input("DescribeKey", &json!({"KeyId": ok})), Ok(()));
    let too_long = format!("{ok}a");
    assert!(
        validation("DescribeKey", json!({"KeyId": too_long}))
            .ends_with("Member must have length less than or equal to 2048")
    );
}

// ---- CreateAlias / GenerateMac -----------------------------------------------

#[test]
fn create_alias_name_outside_pattern() {
    assert_eq!(
        validation(
            "CreateAlias",
            json!({"AliasName": "a b", "TargetKeyId": "k"})
        ),
        one(
            "Value 'a b' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
        )
    );
    // The whole value must match, not a part of it; a trailing newline too.
    assert!(
        validate_input(
            "CreateAlias",
            &json!({"AliasName": "alias/x\n", "TargetKeyId": "k"})
        )
        .is_err()
    );
    assert_eq!(
        validate_input(
            "CreateAlias",
            &json!({"AliasName": "alias/my-key_1:x", "TargetKeyId": "k"})
        ),
        Ok(())
    );
}

#[test]
fn create_alias_reports_every_broken_constraint_of_a_member() {
    let name = format!("{} x", "a".repeat(256));
    assert_eq!(
        validation("CreateAlias", json!({"AliasName": name})),
        format!(
            "3 validation errors detected: \
             Value '{name}' at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256; \
             Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$; \
             Value null at 'targetKeyId' failed to satisfy constraint: Member must not be null"
        )
    );
}

#[test]
fn generate_mac_algorithm_uses_the_observed_set_order() {
    assert_eq!(
        validation(
            "GenerateMac",
            json!({"KeyId": "k", "Message": "aGVsbG8=", "MacAlgorithm": "INVALID"})
        ),
        one(
            "Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]"
        )
    );
}

#[test]
fn nested_structure_and_list_values_are_rendered() {
    // The GrantOperation set order below is what coral_enum_order computes
    // (cross-checked with an independent Python version), not an observation.
    let tokens: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
    assert_eq!(
        validation("DescribeKey", json!({"KeyId": "k", "GrantTokens": tokens})),
        one(
            "Value '[t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10]' at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10"
        )
    );
    assert_eq!(
        validation(
            "CreateGrant",
            json!({"KeyId": "k", "GranteePrincipal": "p", "Operations": ["Nope"],
                   "Constraints": {"EncryptionContextSubset": {"a": "b"}}})
        ),
        one(
            "Value 'Nope' at 'operations.1.member' failed to satisfy constraint: Member must satisfy enum value set: [CreateGrant, GetPublicKey, GenerateDataKey, RetireGrant, Encrypt, GenerateDataKeyPairWithoutPlaintext, ReEncryptTo, Decrypt, GenerateDataKeyWithoutPlaintext, DescribeKey, VerifyMac, Verify, GenerateMac, GenerateDataKeyPair, DeriveSharedSecret, ReEncryptFrom, Sign]"
        )
    );
}

// ---- SerializationException --------------------------------------------------

#[test]
fn wrong_json_types_are_serialization_errors() {
    let cases = [
        // string given a number / a boolean / a list / an object
        (
            "DescribeKey",
            json!({"KeyId": 1}),
            "NUMBER_VALUE can not be converted to a String",
        ),
        (
            "DescribeKey",
            json!({"KeyId": 1.5}),
            "NUMBER_VALUE can not be converted to a String",
        ),
        (
            "DescribeKey",
            json!({"KeyId": true}),
            "TRUE_VALUE can not be converted to a String",
        ),
        (
            "DescribeKey",
            json!({"KeyId": false}),
            "FALSE_VALUE can not be converted to a String",
        ),
        (
            "DescribeKey",
            json!({"KeyId": ["k"]}),
            "Start of list found where not expected",
        ),
        (
            "DescribeKey",
            json!({"KeyId": {"a": 1}}),
            "Start of structure or map found where not expected.",
        ),
        // integer given a string / a boolean / a fraction / out of range
        (
            "GenerateRandom",
            json!({"NumberOfBytes": "1"}),
            "STRING_VALUE can not be converted to an Integer",
        ),
        (
            "GenerateRandom",
            json!({"NumberOfBytes": false}),
            "FALSE_VALUE can not be converted to an Integer",
        ),
        (
            "GenerateRandom",
            json!({"NumberOfBytes": 1.5}),
            "NUMBER_VALUE can not be converted to an Integer",
        ),
        (
            "GenerateRandom",
            json!({"NumberOfBytes": 2_147_483_648_i64}),
            "NUMBER_VALUE can not be converted to an Integer",
        ),
        (
            "GenerateRandom",
            json!({"NumberOfBytes": []}),
            "Start of list found where not expected",
        ),
        // boolean given a string / a number
        (
            "Encrypt",
            json!({"KeyId": "k", "Plaintext": "YQ==", "DryRun": "true"}),
            "STRING_VALUE can not be converted to a Boolean",
        ),
        (
            "CreateKey",
            json!({"MultiRegion": 1}),
            "NUMBER_VALUE can not be converted to a Boolean",
        ),
        // blob given a number
        (
            "Decrypt",
            json!({"CiphertextBlob": 12}),
            "NUMBER_VALUE can not be converted to a Blob",
        ),
        // timestamp given a string
        (
            "ImportKeyMaterial",
            json!({"KeyId": "k", "ImportToken": "YQ==", "EncryptedKeyMaterial": "YQ==", "ValidTo": "2030-01-01"}),
            "STRING_VALUE can not be converted to a Timestamp",
        ),
        // list given an object / a string
        (
            "DescribeKey",
            json!({"KeyId": "k", "GrantTokens": {}}),
            "Start of structure or map found where not expected.",
        ),
        (
            "DescribeKey",
            json!({"KeyId": "k", "GrantTokens": "t"}),
            "Expected list or null",
        ),
        // list item of the wrong type
        (
            "DescribeKey",
            json!({"KeyId": "k", "GrantTokens": ["t", 2]}),
            "NUMBER_VALUE can not be converted to a String",
        ),
        // map given a list / a string; map value given a number
        (
            "Encrypt",
            json!({"KeyId": "k", "Plaintext": "YQ==", "EncryptionContext": []}),
            "Start of list found where not expected",
        ),
        (
            "Encrypt",
            json!({"KeyId": "k", "Plaintext": "YQ==", "EncryptionContext": "a=b"}),
            "Expected map or null",
        ),
        (
            "Encrypt",
            json!({"KeyId": "k", "Plaintext": "YQ==", "EncryptionContext": {"a": 1}}),
            "NUMBER_VALUE can not be converted to a String",
        ),
        // structure given a list / a string
        (
            "CreateGrant",
            json!({"KeyId": "k", "GranteePrincipal": "p", "Operations": ["Decrypt"], "Constraints": []}),
            "Start of list found where not expected",
        ),
        ("GenerateRandom", json!({"Recipient": "x"}), "Expected null"),
        // nested: structure inside a list
        (
            "CreateKey",
            json!({"Tags": [{"TagKey": "a", "TagValue": 7}]}),
            "NUMBER_VALUE can not be converted to a String",
        ),
        ("CreateKey", json!({"Tags": ["a"]}), "Expected null"),
    ];
    for (op, body, expected) in cases {
        assert_eq!(serialization(op, body.clone()), expected, "{op} {body}");
    }
}

#[test]
fn a_type_error_wins_over_validation_errors() {
    // keyId is missing (validation) but numberOfBytes has the wrong type.
    assert_eq!(
        serialization(
            "GenerateDataKey",
            json!({"NumberOfBytes": "1", "KeySpec": "nope"})
        ),
        "STRING_VALUE can not be converted to an Integer"
    );
}

#[test]
fn top_level_must_be_an_object() {
    assert_eq!(
        serialization("ListKeys", json!([])),
        "Start of list found where not expected"
    );
    assert_eq!(
        serialization("ListKeys", json!([{"Limit": 1}])),
        "Start of list found where not expected"
    );
    for body in [json!(null), json!("x"), json!(1), json!(true)] {
        assert_eq!(serialization("ListKeys", body), "");
    }
    assert_eq!(validate_input("ListKeys", &json!({})), Ok(()));
}

#[test]
fn integral_numbers_written_as_floats_are_integers() {
    assert_eq!(
        validate_input("GenerateRandom", &json!({"NumberOfBytes": 32.0})),
        Ok(())
    );
    assert_eq!(
        validation("GenerateRandom", json!({"NumberOfBytes": 0.0})),
        one(
            "Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )
    );
}

// ---- unknown members, nulls ------------------------------------------------------

#[test]
fn unknown_members_are_ignored_and_not_looked_into() {
    let body = json!({
        "KeyId": "k",
        "SomethingNew": {"Nested": [1, "two", {"x": null}]},
        "keyid": 5,
        "NumberOfBytes": 32
    });
    assert_eq!(validate_input("GenerateDataKey", &body), Ok(()));
}

#[test]
fn null_members_count_as_absent() {
    let body = json!({"KeyId": "k", "NumberOfBytes": null, "KeySpec": null, "GrantTokens": null,
                      "EncryptionContext": null, "Recipient": null, "DryRun": null});
    assert_eq!(validate_input("GenerateDataKey", &body), Ok(()));
    assert_eq!(
        validation("GenerateDataKey", json!({"KeyId": null})),
        one("Value null at 'keyId' failed to satisfy constraint: Member must not be null")
    );
    // Null list items and map values are skipped.
    let body = json!({"KeyId": "k", "Plaintext": "YQ==", "GrantTokens": [null, "t"],
                      "EncryptionContext": {"a": null}});
    assert_eq!(validate_input("Encrypt", &body), Ok(()));
}

#[test]
fn sensitive_required_member_missing_reads_null() {
    assert_eq!(
        validation("Encrypt", json!({"KeyId": "k"})),
        one("Value null at 'plaintext' failed to satisfy constraint: Member must not be null")
    );
}

// ---- the model ----------------------------------------------------------------------

#[test]
fn every_operation_has_an_input_structure() {
    let names: Vec<&str> = operation_names().collect();
    assert_eq!(names.len(), 54);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    for name in &names {
        assert!(is_operation(name));
        let shape = input_shape(name).unwrap_or_else(|| panic!("{name} has no input shape"));
        assert_eq!(shape.kind, ShapeKind::Structure, "{name}");
        assert_eq!(shape.name, format!("{name}Request"));
        // Every operation accepts an empty object or reports what is required.
        match validate_input(name, &json!({})) {
            Ok(()) | Err(WireError::Validation(_)) => {}
            Err(other) => panic!("{name}: {other:?}"),
        }
    }
    for name in [
        "GenerateDataKey",
        "Encrypt",
        "CreateKey",
        "CreateAlias",
        "GenerateMac",
        "DeriveSharedSecret",
    ] {
        assert!(is_operation(name), "{name}");
    }
    for name in ["", "generateDataKey", "TrentService.Encrypt", "Nope"] {
        assert!(!is_operation(name), "{name}");
        assert_eq!(validate_input(name, &json!([])), Ok(()));
    }
    let op = tresor_kms_model::operation("Encrypt").expect("Encrypt");
    assert_eq!(
        op.output_members,
        ["CiphertextBlob", "KeyId", "EncryptionAlgorithm"]
    );
}

#[test]
fn every_pattern_compiles_and_matches_like_java() {
    for p in generated::PATTERNS.iter() {
        assert!(
            regex_lite::Regex::new(p.regex).is_ok(),
            "{} -> {}",
            p.model,
            p.regex
        );
    }
    let ok = |op: &str, body: Value| assert_eq!(validate_input(op, &body), Ok(()), "{body}");
    let bad = |op: &str, body: Value| assert!(validate_input(op, &body).is_err(), "{body}");
    // [a-zA-Z0-9-_.]: '-' after a range is a literal in Java.
    ok("CreateKey", json!({"XksKeyId": "a-b_c.d"}));
    bad("CreateKey", json!({"XksKeyId": "a b"}));
    // [\w]+ is ASCII-only in Java.
    ok(
        "GetKeyPolicy",
        json!({"KeyId": "k", "PolicyName": "default_1"}),
    );
    bad(
        "GetKeyPolicy",
        json!({"KeyId": "k", "PolicyName": "d\u{e9}fault"}),
    );
    // Unanchored model pattern: still the whole value.
    ok(
        "UpdateCustomKeyStore",
        json!({"CustomKeyStoreId": "c", "XksProxyVpcEndpointServiceOwner": "123456789012"}),
    );
    bad(
        "UpdateCustomKeyStore",
        json!({"CustomKeyStoreId": "c", "XksProxyVpcEndpointServiceOwner": "12345678901a"}),
    );
    // Alternation with anchors; escaped '/'.
    ok(
        "UpdateCustomKeyStore",
        json!({"CustomKeyStoreId": "c", "XksProxyUriPath": "/kms/xks/v1"}),
    );
    ok(
        "UpdateCustomKeyStore",
        json!({"CustomKeyStoreId": "c", "XksProxyUriPath": "/a/b/kms/xks/v12"}),
    );
    bad(
        "UpdateCustomKeyStore",
        json!({"CustomKeyStoreId": "c", "XksProxyUriPath": "/kms/xks/v123"}),
    );
    // \u0020-\u00FF
    ok("ListKeys", json!({"Marker": "abc \u{ff}"}));
    bad("ListKeys", json!({"Marker": "abc\u{100}"}));
}

#[test]
fn enum_sets_are_printed_in_coral_order_for_every_enum() {
    for shape in generated::SHAPES
        .iter()
        .filter(|s| !s.enum_values.is_empty())
    {
        let mut printed = coral_enum_order(shape.enum_values);
        assert_eq!(printed.len(), shape.enum_values.len(), "{}", shape.name);
        printed.sort_unstable();
        let mut model = shape.enum_values.to_vec();
        model.sort_unstable();
        assert_eq!(printed, model, "{}", shape.name);
    }
}

#[test]
fn wire_error_accessors() {
    let e = WireError::Validation("1 validation error detected: x".into());
    assert_eq!(e.error_type(), "ValidationException");
    assert_eq!(
        e.to_string(),
        "ValidationException: 1 validation error detected: x"
    );
    let e = WireError::Serialization(String::new());
    assert_eq!(e.error_type(), "SerializationException");
    assert_eq!(e.message(), "");
    assert_eq!(e.to_string(), "SerializationException");
}
