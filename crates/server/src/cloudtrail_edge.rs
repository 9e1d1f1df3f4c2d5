//! The CloudTrail protocol edge (JSON 1.1): `LookupEvents` over the audit log, so
//! `aws cloudtrail lookup-events --endpoint-url …` and boto3 work. Events are those of the
//! caller's account in the request's region, newest first, as CloudTrail returns them.

use base64::Engine as _;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tresor_kms::audit_log::{AuditBackend, AuditQuery};
use tresor_kms::identity::Caller;
use tresor_kms::types::Region;

use crate::kms_edge::JsonReply;

const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct LookupAttribute {
    attribute_key: String,
    attribute_value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct LookupEvents {
    lookup_attributes: Option<Vec<LookupAttribute>>,
    start_time: Option<f64>,
    end_time: Option<f64>,
    event_category: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

fn err(ty: &'static str, message: &str) -> JsonReply {
    JsonReply::error(StatusCode::BAD_REQUEST, ty, message)
}

fn encode_token(t: i64, chain: &str, seq: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{t}\n{chain}\n{seq}"))
}

fn decode_token(s: &str) -> Option<(i64, String, u64)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.splitn(3, '\n');
    let t = parts.next()?.parse().ok()?;
    let chain = parts.next()?.to_owned();
    let seq = parts.next()?.parse().ok()?;
    Some((t, chain, seq))
}

/// Handles one authenticated CloudTrail request.
pub async fn handle(
    audit: &dyn AuditBackend,
    caller: &Caller,
    region: &Region,
    target: Option<&str>,
    body: &[u8],
) -> JsonReply {
    match target.and_then(|t| t.strip_prefix(TARGET_PREFIX)) {
        Some("LookupEvents") => {}
        // AWS-DEVIATION: Tresor's CloudTrail endpoint serves LookupEvents only.
        Some(other) => {
            return err(
                "UnsupportedOperationException",
                &format!("{other} is not supported by this server."),
            );
        }
        None => return err("UnknownOperationException", ""),
    }
    let input: LookupEvents = if body.iter().all(u8::is_ascii_whitespace) {
        LookupEvents::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                return err(
                    "SerializationException",
                    "Start of structure or map found where not expected.",
                );
            }
        }
    };
    let max = input.max_results.unwrap_or(50);
    if !(1..=50).contains(&max) {
        // AWS-DEVIATION (unverified text).
        return err(
            "InvalidMaxResultsException",
            "MaxResults must be between 1 and 50.",
        );
    }
    if input
        .event_category
        .as_deref()
        .is_some_and(|c| c != "insight")
    {
        return err(
            "InvalidEventCategoryException",
            "EventCategory must be insight.",
        );
    }
    let mut q = AuditQuery {
        account: Some(caller.account.as_str().to_owned()),
        region: Some(region.as_str().to_owned()),
        start_millis: input.start_time.map(|t| (t * 1000.0) as i64),
        end_millis: input.end_time.map(|t| (t * 1000.0) as i64),
        limit: usize::try_from(max).unwrap_or(50),
        ..AuditQuery::default()
    };
    if let (Some(s), Some(e)) = (q.start_millis, q.end_millis)
        && s > e
    {
        return err(
            "InvalidTimeRangeException",
            "Start time must be earlier than end time.",
        );
    }
    if input.event_category.is_some() {
        // Tresor records no Insights events.
        return JsonReply::ok(b"{\"Events\":[]}".to_vec());
    }
    let attrs = input.lookup_attributes.unwrap_or_default();
    if attrs.len() > 1 {
        return err(
            "InvalidLookupAttributesException",
            "You can only specify one lookup attribute.",
        );
    }
    if let Some(a) = attrs.first() {
        let v = Some(a.attribute_value.clone());
        match a.attribute_key.as_str() {
            "EventId" => q.event_id = v,
            "EventName" => q.event_name = v,
            "ReadOnly" => match a.attribute_value.as_str() {
                "true" => q.read_only = Some(true),
                "false" => q.read_only = Some(false),
                _ => {
                    return err(
                        "InvalidLookupAttributesException",
                        "ReadOnly must be true or false.",
                    );
                }
            },
            "Username" => q.username = v,
            "AccessKeyId" => q.access_key_id = v,
            "ResourceName" => q.resource_arn = v,
            "ResourceType" if a.attribute_value == "AWS::KMS::Key" => {}
            "ResourceType" => return JsonReply::ok(b"{\"Events\":[]}".to_vec()),
            "EventSource" if a.attribute_value == "kms.amazonaws.com" => {}
            "EventSource" => return JsonReply::ok(b"{\"Events\":[]}".to_vec()),
            other => {
                return err(
                    "InvalidLookupAttributesException",
                    &format!("{other} is not a valid lookup attribute key."),
                );
            }
        }
    }
    if let Some(t) = &input.next_token {
        match decode_token(t) {
            Some(before) => q.before = Some(before),
            None => return err("InvalidNextTokenException", "Invalid NextToken."),
        }
    }
    // One extra row tells whether there is another page.
    let limit = q.limit;
    q.limit = limit + 1;
    let mut rows = match audit.lookup(&q).await {
        Ok(r) => r,
        Err(e) => return crate::kms_edge::error_reply(&e.into()),
    };
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last()
            .map(|r| encode_token(r.index.event_time_millis, &r.chain, r.seq))
    } else {
        None
    };
    let events: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut e = json!({
                "EventId": r.index.event_id,
                "EventName": r.index.event_name,
                "ReadOnly": if r.index.read_only { "true" } else { "false" },
                "EventTime": r.index.event_time_millis as f64 / 1000.0,
                "EventSource": "kms.amazonaws.com",
                "Resources": r.index.resources.iter().map(|a| json!({"ResourceType": "AWS::KMS::Key", "ResourceName": a})).collect::<Vec<_>>(),
                "CloudTrailEvent": r.json,
            });
            if let Some(obj) = e.as_object_mut() {
                if let Some(k) = &r.index.access_key_id {
                    obj.insert("AccessKeyId".into(), json!(k));
                }
                if let Some(u) = &r.index.username {
                    obj.insert("Username".into(), json!(u));
                }
            }
            e
        })
        .collect();
    let mut out = json!({ "Events": events });
    if let (Some(n), Some(obj)) = (next, out.as_object_mut()) {
        obj.insert("NextToken".into(), json!(n));
    }
    match serde_json::to_vec(&out) {
        Ok(body) => JsonReply::ok(body),
        Err(e) => crate::kms_edge::error_reply(&tresor_kms::KmsError::internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = encode_token(1_700_000_000_000, "main", 42);
        assert_eq!(
            decode_token(&t),
            Some((1_700_000_000_000, "main".to_owned(), 42))
        );
        assert_eq!(decode_token("!!"), None);
    }
}
