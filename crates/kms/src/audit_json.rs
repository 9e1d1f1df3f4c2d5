//! An audit record's JSON, written straight into a buffer: the same bytes `serde_json` makes of
//! an [`AuditEvent`] (its derived `Serialize` stays the definition, and a test holds the two
//! equal), without serde's per-field dispatch and with the strings scanned for characters to
//! escape eight bytes at a time. Every call builds one record of 1–2 KB, almost all of it string
//! content with nothing to escape (ARNs, ids, the user agent, the encryption context).

use serde_json::Value;

use crate::audit::{AuditEvent, AuditResource, UserIdentity};

/// `event` as compact JSON, members in the order of its derived `Serialize`.
pub(crate) fn write_event(out: &mut String, e: &AuditEvent) {
    out.push('{');
    key_first(out, "eventVersion");
    string(out, e.event_version);
    key(out, "userIdentity");
    user_identity(out, &e.user_identity);
    key(out, "eventTime");
    string(out, &e.event_time);
    key(out, "eventSource");
    string(out, e.event_source);
    key(out, "eventName");
    string(out, &e.event_name);
    key(out, "awsRegion");
    string(out, &e.aws_region);
    key(out, "sourceIPAddress");
    string(out, &e.source_ip_address);
    key(out, "userAgent");
    string(out, &e.user_agent);
    if let Some(code) = &e.error_code {
        key(out, "errorCode");
        string(out, code);
    }
    if let Some(message) = &e.error_message {
        key(out, "errorMessage");
        string(out, message);
    }
    key(out, "requestParameters");
    optional_value(out, e.request_parameters.as_ref());
    key(out, "responseElements");
    optional_value(out, e.response_elements.as_ref());
    if let Some(data) = &e.additional_event_data {
        key(out, "additionalEventData");
        value(out, data);
    }
    if !e.request_id.is_empty() {
        key(out, "requestID");
        string(out, &e.request_id);
    }
    key(out, "eventID");
    string(out, &e.event_id);
    key(out, "readOnly");
    boolean(out, e.read_only);
    key(out, "resources");
    resources(out, &e.resources);
    key(out, "eventType");
    string(out, e.event_type);
    if let Some(details) = &e.service_event_details {
        key(out, "serviceEventDetails");
        value(out, details);
    }
    key(out, "managementEvent");
    boolean(out, e.management_event);
    key(out, "recipientAccountId");
    string(out, &e.recipient_account_id);
    if let Some(shared) = &e.shared_event_id {
        key(out, "sharedEventID");
        string(out, shared);
    }
    key(out, "eventCategory");
    string(out, e.event_category);
    out.push('}');
}

fn user_identity(out: &mut String, u: &UserIdentity) {
    out.push('{');
    let mut first = true;
    let mut member = |out: &mut String, name: &str| {
        if first {
            first = false;
            key_first(out, name);
        } else {
            key(out, name);
        }
    };
    for (name, v) in [
        ("accessKeyId", u.access_key_id.as_deref()),
        ("accountId", u.account_id.as_deref()),
        ("arn", u.arn.as_deref()),
        ("invokedBy", u.invoked_by.as_deref()),
        ("principalId", u.principal_id.as_deref()),
    ] {
        if let Some(v) = v {
            member(out, name);
            string(out, v);
        }
    }
    if let Some(v) = &u.session_context {
        member(out, "sessionContext");
        value(out, v);
    }
    for (name, v) in [("type", u.kind), ("userName", u.user_name.as_deref())] {
        if let Some(v) = v {
            member(out, name);
            string(out, v);
        }
    }
    out.push('}');
}

fn resources(out: &mut String, resources: &[AuditResource]) {
    out.push('[');
    for (i, r) in resources.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        key_first(out, "accountId");
        string(out, &r.account_id);
        key(out, "type");
        string(out, r.resource_type);
        key(out, "ARN");
        string(out, &r.arn);
        out.push('}');
    }
    out.push(']');
}

/// `"name":` as the first member of an object (`name` is one of this file's member names, none
/// of which has a character to escape).
fn key_first(out: &mut String, name: &str) {
    out.push('"');
    out.push_str(name);
    out.push_str("\":");
}

/// `,"name":`.
fn key(out: &mut String, name: &str) {
    out.push(',');
    key_first(out, name);
}

fn boolean(out: &mut String, b: bool) {
    out.push_str(if b { "true" } else { "false" });
}

fn optional_value(out: &mut String, v: Option<&Value>) {
    match v {
        Some(v) => value(out, v),
        None => out.push_str("null"),
    }
}

/// A JSON value as `serde_json` writes it compactly: objects in their map's order.
fn value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => boolean(out, *b),
        // Numbers are rare here (numberOfBytes, a key spec's size); serde_json's own formatting
        // (itoa / ryu, `null` for what JSON cannot hold) is kept exactly by using it.
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(out, k);
                out.push(':');
                value(out, item);
            }
            out.push('}');
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes in `w` must be escaped in a JSON string: a control character
/// (below 0x20), `"` or `\`. Exact as a yes/no answer (the classic "has a zero / has a byte less
/// than n" word tests); bytes of 0x80 and above (UTF-8 sequences) never match.
fn needs_escape(w: u64) -> bool {
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    (below_space | has_zero(w ^ (ONES * u64::from(b'"'))) | has_zero(w ^ (ONES * u64::from(b'\\'))))
        != 0
}

/// Whether `b` must be escaped in a JSON string.
fn escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// How many bytes at the start of `bytes` need no escaping: eight at a time, then one by one.
fn clean_run(bytes: &[u8]) -> usize {
    let (words, _) = bytes.as_chunks::<8>();
    let mut n = 0;
    for w in words {
        if needs_escape(u64::from_le_bytes(*w)) {
            break;
        }
        n += 8;
    }
    n + bytes[n..].iter().take_while(|&&b| !escaped(b)).count()
}

/// `s` as a JSON string, escaped as `serde_json` escapes: `\"`, `\\`, `\b`, `\t`, `\n`, `\f`,
/// `\r`, other control characters as `\u00xx` (lower-case hex), everything else as it is.
fn string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut rest = s;
    loop {
        // A run ends at an ASCII byte or at the end, so it ends on a character boundary.
        let Some((run, tail)) = rest.split_at_checked(clean_run(rest.as_bytes())) else {
            rest.chars().for_each(|c| escape(out, c));
            break;
        };
        out.push_str(run);
        let mut chars = tail.chars();
        let Some(c) = chars.next() else {
            break;
        };
        escape(out, c);
        rest = chars.as_str();
    }
    out.push('"');
}

/// One character of a JSON string.
fn escape(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{8}' => out.push_str("\\b"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\u{c}' => out.push_str("\\f"),
        '\r' => out.push_str("\\r"),
        '\0'..='\u{1f}' => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let b = c as usize;
            out.push_str("\\u00");
            out.push(char::from(HEX[b >> 4]));
            out.push(char::from(HEX[b & 0x0f]));
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ours(e: &AuditEvent) -> String {
        let mut out = String::new();
        write_event(&mut out, e);
        out
    }

    fn theirs(e: &AuditEvent) -> String {
        serde_json::to_string(e).expect("serialise")
    }

    /// Every string a test puts into an event: each character JSON escapes, at every position
    /// of an eight-byte word, beside multi-byte UTF-8 and bytes near the escaped ones.
    fn awkward_strings() -> Vec<String> {
        let mut out = vec![
            String::new(),
            "a".into(),
            "plain ascii text that is longer than one word".into(),
            "\u{7f}\u{80}é€😀 ~!#$%&'()*+,-./:;<=>?@[]^_`{|}".into(),
            " !#[]".into(),
        ];
        for c in (0u8..0x20).chain([b'"', b'\\', b'/', b' ', b'!', b'#', 0x7f]) {
            for at in 0..17 {
                let mut s = "x".repeat(at);
                s.push(char::from(c));
                s.push_str(&"y".repeat(17 - at));
                out.push(s);
            }
            out.push(char::from(c).to_string().repeat(9));
        }
        out.push("é\"😀\\\n".repeat(5));
        out
    }

    fn event(s: &str) -> AuditEvent {
        AuditEvent {
            event_version: "1.11",
            user_identity: UserIdentity {
                access_key_id: Some(s.into()),
                account_id: Some("111122223333".into()),
                arn: Some(format!("arn:aws:iam::111122223333:user/{s}")),
                invoked_by: None,
                principal_id: Some(s.into()),
                session_context: Some(json!({"sessionIssuer": {"userName": s}, "n": 1})),
                kind: Some("IAMUser"),
                user_name: Some(s.into()),
            },
            event_time: "2026-11-30T15:00:00Z".into(),
            event_source: "kms.amazonaws.com",
            event_name: "GenerateDataKey".into(),
            aws_region: "us-east-1".into(),
            source_ip_address: "127.0.0.1".into(),
            user_agent: s.into(),
            error_code: Some(s.into()),
            error_message: Some(s.into()),
            request_parameters: Some(json!({
                "keyId": s,
                "encryptionContext": {s: s, "tenant": "a"},
                "numberOfBytes": 32,
                "negative": -7,
                "large": u64::MAX,
                "ratio": 0.25,
                "grantTokens": [s, null, true, false, []],
                "empty": {},
            })),
            response_elements: None,
            additional_event_data: Some(json!({"customerMasterKey": s})),
            request_id: s.into(),
            event_id: "c0ffee00-0000-4000-8000-000000000000".into(),
            read_only: true,
            resources: vec![
                AuditResource {
                    account_id: "111122223333".into(),
                    resource_type: "AWS::KMS::Key",
                    arn: format!("arn:aws:kms:us-east-1:111122223333:key/{s}"),
                },
                AuditResource {
                    account_id: "444455556666".into(),
                    resource_type: "AWS::KMS::Key",
                    arn: "arn:aws:kms:us-east-1:444455556666:key/k".into(),
                },
            ],
            event_type: "AwsApiCall",
            service_event_details: Some(json!({"keyId": s})),
            management_event: true,
            recipient_account_id: "111122223333".into(),
            shared_event_id: Some(s.into()),
            event_category: "Management",
            event_time_millis: 0,
        }
    }

    #[test]
    fn every_member_and_every_escape_is_written_as_serde_json_writes_it() {
        for s in awkward_strings() {
            let e = event(&s);
            assert_eq!(ours(&e), theirs(&e), "string {s:?}");
        }
    }

    #[test]
    fn absent_members_are_left_out_as_serde_json_leaves_them_out() {
        let mut e = event("k");
        e.user_identity = UserIdentity::default();
        e.error_code = None;
        e.error_message = None;
        e.request_parameters = None;
        e.additional_event_data = None;
        e.request_id = String::new();
        e.resources.clear();
        e.service_event_details = None;
        e.shared_event_id = None;
        assert_eq!(ours(&e), theirs(&e));
        // Each optional identity member alone (the first member has no comma before it).
        let full = event("k").user_identity;
        let alone = [
            UserIdentity {
                access_key_id: full.access_key_id.clone(),
                ..UserIdentity::default()
            },
            UserIdentity {
                account_id: full.account_id.clone(),
                ..UserIdentity::default()
            },
            UserIdentity {
                arn: full.arn.clone(),
                ..UserIdentity::default()
            },
            UserIdentity {
                invoked_by: Some("AWS Internal".into()),
                ..UserIdentity::default()
            },
            UserIdentity {
                principal_id: full.principal_id.clone(),
                ..UserIdentity::default()
            },
            UserIdentity {
                session_context: full.session_context.clone(),
                ..UserIdentity::default()
            },
            UserIdentity {
                kind: full.kind,
                ..UserIdentity::default()
            },
            UserIdentity {
                user_name: full.user_name.clone(),
                ..UserIdentity::default()
            },
        ];
        for u in alone {
            e.user_identity = u;
            assert_eq!(ours(&e), theirs(&e));
        }
    }

    #[test]
    fn random_strings_are_written_as_serde_json_writes_them() {
        // xorshift64: reproducible strings mixing ASCII, control characters, quotes,
        // backslashes and multi-byte characters, of every length up to three words and more.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const PICK: [char; 12] = [
            'a', 'Z', ' ', '"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', 'é', '€', '😀',
        ];
        for _ in 0..2000 {
            let len = usize::try_from(next() % 30).unwrap_or(0);
            let s: String = (0..len)
                .map(|_| {
                    let r = next();
                    match r % 4 {
                        // Mostly plain ASCII, as in real records, so whole clean words occur.
                        0 | 1 => char::from(b'!' + u8::try_from((r >> 8) % 94).unwrap_or(0)),
                        _ => PICK[usize::try_from((r >> 8) % 12).unwrap_or(0)],
                    }
                })
                .collect();
            let e = event(&s);
            assert_eq!(ours(&e), theirs(&e), "string {s:?}");
        }
    }

    #[test]
    fn the_word_test_finds_exactly_the_bytes_to_escape() {
        for b in 0..=255u8 {
            let expected = b < 0x20 || b == b'"' || b == b'\\';
            for at in 0..8 {
                let mut word = [b'a'; 8];
                word[at] = b;
                assert_eq!(
                    needs_escape(u64::from_le_bytes(word)),
                    expected,
                    "byte {b:#x} at {at}"
                );
                // Beside bytes of 0x80 and above, whose borrows must not make a false match.
                let mut high = [0xffu8; 8];
                high[at] = b;
                assert_eq!(
                    needs_escape(u64::from_le_bytes(high)),
                    expected,
                    "byte {b:#x} at {at} among 0xff"
                );
            }
        }
    }
}
