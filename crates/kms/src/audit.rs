//! Audit emission: every KMS call, success or failure, yields one CloudTrail-format record, built
//! here inside the core (so in-process services cannot bypass it) and handed to an [`AuditSink`]
//! before the response is returned. Records never contain plaintext, ciphertext, key material,
//! grant tokens or secrets: operations choose explicitly which request members they log.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::context::CallContext;
use crate::error::KmsError;
use crate::identity::CallerType;
use crate::types::{AccountId, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit sink failed: {0}")]
pub struct AuditError(pub String);

/// Where audit records go. `record` returns only once the record is durable (for durable sinks);
/// a failure fails the call (no response without its record).
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    async fn record(&self, event: AuditEvent) -> Result<(), AuditError>;
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditResource {
    #[serde(rename = "accountId")]
    pub account_id: String,
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    #[serde(rename = "ARN")]
    pub arn: String,
}

/// A record's `userIdentity` block. Its members serialise in alphabetical order, the order
/// records have always had (they were built as JSON objects, which keep keys sorted): the stored
/// JSON of a record is what its hash covers, so the same call must keep producing the same text.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// Assumed-role callers only: `sessionIssuer` and `attributes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_context: Option<Value>,
    /// `IAMUser`, `AssumedRole`, `Root` or `AWSService`; absent for KMS's own service events.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// One CloudTrail record (eventVersion 1.11 field set for KMS management events).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub event_version: &'static str,
    pub user_identity: UserIdentity,
    pub event_time: String,
    pub event_source: &'static str,
    pub event_name: String,
    pub aws_region: String,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
    pub user_agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub request_parameters: Option<Value>,
    pub response_elements: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<Value>,
    /// Empty (and not serialised) for KMS-initiated service events, which have no request.
    #[serde(rename = "requestID", skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub read_only: bool,
    pub resources: Vec<AuditResource>,
    pub event_type: &'static str,
    /// `AwsServiceEvent` records only: what the event is about (`{"keyId": …}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_event_details: Option<Value>,
    pub management_event: bool,
    pub recipient_account_id: String,
    #[serde(rename = "sharedEventID", skip_serializing_if = "Option::is_none")]
    pub shared_event_id: Option<String>,
    pub event_category: &'static str,
    /// Milliseconds since the epoch; the precise time for ordering and queries (not a CloudTrail field).
    #[serde(skip)]
    pub event_time_millis: i64,
}

/// What an operation learns while it runs that belongs in its audit record.
#[derive(Debug, Default)]
pub struct Trail {
    /// Request parameters to log (camelCase, non-secret only). Operations overwrite members whose
    /// logged form is the resolved one (e.g. Decrypt's `keyId` is the key ARN).
    pub request_parameters: Option<Map<String, Value>>,
    pub response_elements: Option<Value>,
    pub additional_event_data: Map<String, Value>,
    /// Keys touched: (account, key ARN), in order, without duplicates.
    pub resources: Vec<(AccountId, String)>,
}

impl Trail {
    pub fn with_parameters(params: Map<String, Value>) -> Trail {
        Trail {
            request_parameters: Some(params),
            ..Trail::default()
        }
    }
    pub fn set_param(&mut self, name: &str, value: impl Into<Value>) {
        self.request_parameters
            .get_or_insert_with(Map::new)
            .insert(name.to_owned(), value.into());
    }
    pub fn add_resource(&mut self, account: &AccountId, arn: &str) {
        if !self.resources.iter().any(|(_, a)| a == arn) {
            self.resources.push((account.clone(), arn.to_owned()));
        }
    }
    pub fn set_additional(&mut self, name: &str, value: impl Into<Value>) {
        self.additional_event_data
            .insert(name.to_owned(), value.into());
    }
}

/// The `userIdentity` block for the caller in `ctx`.
pub fn user_identity(ctx: &CallContext) -> UserIdentity {
    // A service acting as itself (under a grant): CloudTrail shows only the service.
    if let Some(service) = &ctx.service_principal {
        return UserIdentity {
            kind: Some("AWSService"),
            invoked_by: Some(service.clone()),
            ..UserIdentity::default()
        };
    }
    let c = &ctx.caller;
    let (user_name, session_context) = match c.caller_type {
        CallerType::IamUser => (Some(c.principal.name.clone()), None),
        CallerType::AssumedRole => (
            None,
            Some(serde_json::json!({
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": c.principal.principal_id,
                    "arn": c.principal.arn,
                    "accountId": c.account.as_str(),
                    "userName": c.principal.name,
                },
                "attributes": {
                    "creationDate": c.principal.created.to_iso8601_seconds(),
                    "mfaAuthenticated": "false",
                }
            })),
        ),
        CallerType::Root => (None, None),
    };
    UserIdentity {
        access_key_id: c.access_key_id.clone(),
        account_id: Some(c.account.as_str().to_owned()),
        arn: Some(c.arn.clone()),
        invoked_by: ctx.via_service.clone(),
        principal_id: Some(c.user_id.clone()),
        session_context,
        kind: Some(c.caller_type.cloudtrail_name()),
        user_name,
    }
}

/// An IP address as `Display` writes it; IPv4 (every call's source on most deployments) without
/// the formatting machinery.
fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut out = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
    out
}

/// Builds the record for one finished call.
pub fn build_event(
    ctx: &CallContext,
    event_name: &str,
    read_only: bool,
    now: Timestamp,
    trail: Trail,
    error: Option<&KmsError>,
) -> AuditEvent {
    // Calls made by a service on a customer's behalf show the service as source and user agent.
    let service = ctx.service_principal.as_ref().or(ctx.via_service.as_ref());
    let source_ip = match service {
        Some(s) => s.clone(),
        None => ctx
            .source_ip
            .map(ip_text)
            .unwrap_or_else(|| "AWS Internal".to_owned()),
    };
    let user_agent = match service {
        Some(s) => s.clone(),
        None => ctx.user_agent.clone().unwrap_or_default(),
    };
    let additional = (!trail.additional_event_data.is_empty())
        .then_some(Value::Object(trail.additional_event_data));
    AuditEvent {
        event_version: "1.11",
        user_identity: user_identity(ctx),
        event_time: now.to_iso8601_seconds(),
        event_source: "kms.amazonaws.com",
        event_name: event_name.to_owned(),
        aws_region: ctx.region.as_str().to_owned(),
        source_ip_address: source_ip,
        user_agent,
        error_code: error.map(|e| e.aws_code().to_owned()),
        error_message: error.and_then(|e| {
            let m = e.to_string();
            (!m.is_empty()).then_some(m)
        }),
        request_parameters: trail.request_parameters.map(Value::Object),
        response_elements: trail.response_elements,
        additional_event_data: additional,
        request_id: ctx.request_id.clone(),
        event_id: tresor_crypto::random_uuid().to_string(),
        read_only,
        resources: trail
            .resources
            .into_iter()
            .map(|(account, arn)| AuditResource {
                account_id: account.as_str().to_owned(),
                resource_type: "AWS::KMS::Key",
                arn,
            })
            .collect(),
        event_type: "AwsApiCall",
        service_event_details: None,
        management_event: true,
        recipient_account_id: ctx.caller.account.as_str().to_owned(),
        // Calls a service makes on a customer's behalf carry a shared event id.
        shared_event_id: service.map(|_| tresor_crypto::random_uuid().to_string()),
        event_category: "Management",
        event_time_millis: now.millis(),
    }
}

/// A record of work KMS did on its own (`AwsServiceEvent`): the deletion of a key at the end of its
/// waiting period (`DeleteKey`), an automatic rotation (`RotateKey`), the expiry of imported key
/// material (`DeleteExpiredKeyMaterial`). The identity is the key's account as invoked by
/// `AWS Internal`; there is no request.
pub fn build_service_event(
    event_name: &str,
    account: &AccountId,
    region: &crate::types::Region,
    key_arn: &str,
    service_event_details: Value,
    additional_event_data: Option<Value>,
    now: Timestamp,
) -> AuditEvent {
    AuditEvent {
        event_version: "1.11",
        user_identity: UserIdentity {
            account_id: Some(account.as_str().to_owned()),
            invoked_by: Some("AWS Internal".to_owned()),
            ..UserIdentity::default()
        },
        event_time: now.to_iso8601_seconds(),
        event_source: "kms.amazonaws.com",
        event_name: event_name.to_owned(),
        aws_region: region.as_str().to_owned(),
        source_ip_address: "AWS Internal".to_owned(),
        user_agent: "AWS Internal".to_owned(),
        error_code: None,
        error_message: None,
        request_parameters: None,
        response_elements: None,
        additional_event_data,
        request_id: String::new(),
        event_id: tresor_crypto::random_uuid().to_string(),
        read_only: false,
        resources: vec![AuditResource {
            account_id: account.as_str().to_owned(),
            resource_type: "AWS::KMS::Key",
            arn: key_arn.to_owned(),
        }],
        event_type: "AwsServiceEvent",
        service_event_details: Some(service_event_details),
        management_event: true,
        recipient_account_id: account.as_str().to_owned(),
        shared_event_id: None,
        event_category: "Management",
        event_time_millis: now.millis(),
    }
}

/// A successful call's record plus a copy for each key owner account other than the caller's
/// (CloudTrail logs cross-account use in both accounts). Each copy has its own eventID and the
/// owner as recipient; the record and its copies share one sharedEventID.
pub fn with_owner_copies(mut event: AuditEvent) -> (AuditEvent, Vec<AuditEvent>) {
    let mut owners: Vec<String> = event
        .resources
        .iter()
        .map(|r| r.account_id.clone())
        .filter(|a| *a != event.recipient_account_id)
        .collect();
    owners.sort_unstable();
    owners.dedup();
    if owners.is_empty() {
        return (event, Vec::new());
    }
    if event.shared_event_id.is_none() {
        event.shared_event_id = Some(tresor_crypto::random_uuid().to_string());
    }
    let copies = owners
        .into_iter()
        .map(|owner| AuditEvent {
            recipient_account_id: owner,
            event_id: tresor_crypto::random_uuid().to_string(),
            ..event.clone()
        })
        .collect();
    (event, copies)
}

/// Keeps the most recent records in memory (bounded); for tests and embedding where durability
/// is not wanted.
#[derive(Debug)]
pub struct MemoryAuditSink {
    capacity: usize,
    events: std::sync::Mutex<std::collections::VecDeque<AuditEvent>>,
}

impl MemoryAuditSink {
    pub fn new(capacity: usize) -> MemoryAuditSink {
        MemoryAuditSink {
            capacity: capacity.max(1),
            events: std::sync::Mutex::new(Default::default()),
        }
    }
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl AuditSink for MemoryAuditSink {
    async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        let mut events = self
            .events
            .lock()
            .map_err(|_| AuditError("poisoned".into()))?;
        if events.len() >= self.capacity {
            events.pop_front();
        }
        events.push_back(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::identity::{PrincipalKind, PrincipalRecord};
    use crate::types::Region;

    #[test]
    fn ip_text_is_what_display_writes() {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        for octet in 0..=255u8 {
            for ip in [
                Ipv4Addr::new(octet, 0, 9, 10),
                Ipv4Addr::new(1, octet, 99, 100),
                Ipv4Addr::new(255, 199, octet, 0),
                Ipv4Addr::new(100, 10, 1, octet),
            ] {
                assert_eq!(super::ip_text(IpAddr::V4(ip)), ip.to_string());
            }
        }
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(super::ip_text(v6), "2001:db8::1");
    }

    fn ctx(kind: PrincipalKind, name: &str, arn: &str, session: Option<&str>) -> CallContext {
        let account = AccountId::parse("111122223333").unwrap();
        let principal = PrincipalRecord {
            arn: arn.to_owned(),
            account,
            kind,
            name: name.to_owned(),
            path: "/".to_owned(),
            principal_id: "AIDAEXAMPLE".to_owned(),
            created: Timestamp::from_unix_seconds(1_700_000_000),
            policies: Vec::new(),
        };
        let caller = crate::identity::Caller::from_records(
            principal,
            Some("AKIAEXAMPLE".to_owned()),
            session.map(str::to_owned),
        );
        CallContext::direct(caller, Region::parse("us-east-1").unwrap(), "r".to_owned())
    }

    fn identity_json(ctx: &CallContext) -> String {
        let text = serde_json::to_string(&user_identity(ctx)).unwrap();
        // The same text as a JSON object of the same members gives (keys sorted).
        let object = serde_json::to_value(user_identity(ctx)).unwrap();
        assert_eq!(text, serde_json::to_string(&object).unwrap());
        text
    }

    /// The exact text of `userIdentity`, members in alphabetical order: records written before
    /// it became a struct (when it was a JSON object, which sorts its keys) read the same way.
    #[test]
    fn user_identity_text_is_stable() {
        let user = ctx(
            PrincipalKind::User,
            "alice",
            "arn:aws:iam::111122223333:user/alice",
            None,
        );
        assert_eq!(
            identity_json(&user),
            r#"{"accessKeyId":"AKIAEXAMPLE","accountId":"111122223333","arn":"arn:aws:iam::111122223333:user/alice","principalId":"AIDAEXAMPLE","type":"IAMUser","userName":"alice"}"#
        );
        let mut via = user.clone();
        via.via_service = Some("s3.us-east-1.amazonaws.com".to_owned());
        assert_eq!(
            identity_json(&via),
            r#"{"accessKeyId":"AKIAEXAMPLE","accountId":"111122223333","arn":"arn:aws:iam::111122223333:user/alice","invokedBy":"s3.us-east-1.amazonaws.com","principalId":"AIDAEXAMPLE","type":"IAMUser","userName":"alice"}"#
        );
        let mut service = user.clone();
        service.service_principal = Some("voiceid.amazonaws.com".to_owned());
        assert_eq!(
            identity_json(&service),
            r#"{"invokedBy":"voiceid.amazonaws.com","type":"AWSService"}"#
        );
        let role = ctx(
            PrincipalKind::Role,
            "Reader",
            "arn:aws:iam::111122223333:role/Reader",
            Some("s1"),
        );
        assert_eq!(
            identity_json(&role),
            r#"{"accessKeyId":"AKIAEXAMPLE","accountId":"111122223333","arn":"arn:aws:sts::111122223333:assumed-role/Reader/s1","principalId":"AIDAEXAMPLE:s1","sessionContext":{"attributes":{"creationDate":"2023-11-14T22:13:20Z","mfaAuthenticated":"false"},"sessionIssuer":{"accountId":"111122223333","arn":"arn:aws:iam::111122223333:role/Reader","principalId":"AIDAEXAMPLE","type":"Role","userName":"Reader"}},"type":"AssumedRole"}"#
        );
        let root = ctx(
            PrincipalKind::Root,
            "",
            "arn:aws:iam::111122223333:root",
            None,
        );
        assert_eq!(
            identity_json(&root),
            r#"{"accessKeyId":"AKIAEXAMPLE","accountId":"111122223333","arn":"arn:aws:iam::111122223333:root","principalId":"111122223333","type":"Root"}"#
        );
    }
}
