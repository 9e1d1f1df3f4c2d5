//! The seed scenarios that need a service acting in-process (the wire cannot set
//! `kms:ViaService` or act as a service principal): the same core the server runs, over a real
//! SQLite store, called with the CallContext the S3/domains services will use.

use std::sync::Arc;

use tresor_kms::audit::MemoryAuditSink;
use tresor_kms::clock::SystemClock;
use tresor_kms::identity::{Caller, IdentityPolicy, PrincipalRecord};
use tresor_kms::ops::create_grant::{Constraints, CreateGrant};
use tresor_kms::ops::create_key::CreateKey;
use tresor_kms::ops::decrypt::Decrypt;
use tresor_kms::ops::describe_key::DescribeKey;
use tresor_kms::ops::generate_data_key::GenerateDataKey;
use tresor_kms::ops::revoke_grant::RevokeGrant;
use tresor_kms::store::Store;
use tresor_kms::types::{AccountId, DataKeySpec, Region, Timestamp};
use tresor_kms::{CallContext, Kms, KmsConfig, KmsError};

const A: &str = "111122223333";
const DOMAIN: &str = "arn:aws:voiceid:us-west-2:111122223333:domain/sampleDomainId";

struct Core {
    kms: Kms,
    audit: Arc<MemoryAuditSink>,
    _tmp: tempfile::TempDir,
}

async fn principal(
    store: &dyn Store,
    arn: &str,
    id: &str,
    policies: Vec<IdentityPolicy>,
) -> PrincipalRecord {
    let mut p = PrincipalRecord::from_arn(arn, Timestamp(0)).unwrap();
    p.principal_id = id.to_owned();
    p.policies = policies;
    store.upsert_principal(&p).await.unwrap();
    p
}

async fn core() -> (Core, PrincipalRecord, PrincipalRecord) {
    let tmp = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(tresor_store::SqliteStore::open(&tmp.path().join("t.db")).unwrap());
    let admin = principal(
        &*store,
        &format!("arn:aws:iam::{A}:user/admin"),
        "AIDAADMIN",
        vec![IdentityPolicy {
            name: "Admin".into(),
            document: r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#.into(),
        }],
    )
    .await;
    let role = principal(
        &*store,
        &format!("arn:aws:iam::{A}:role/VoiceIdRole"),
        "AROAVOICE",
        vec![],
    )
    .await;
    let audit = Arc::new(MemoryAuditSink::new(1000));
    let kms = Kms::new(
        store,
        Arc::new(tresor_crypto::RootKey::generate().unwrap()),
        Arc::new(SystemClock::default()),
        audit.clone(),
        KmsConfig::default(),
    );
    (
        Core {
            kms,
            audit,
            _tmp: tmp,
        },
        admin,
        role,
    )
}

fn ctx(p: &PrincipalRecord, session: Option<&str>) -> CallContext {
    CallContext::direct(
        Caller::from_records(
            p.clone(),
            Some("AKIATEST".into()),
            session.map(str::to_owned),
        ),
        Region::parse("us-west-2").unwrap(),
        uuid::Uuid::new_v4().to_string(),
    )
}

fn voice_id_policy() -> String {
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Sid": "Admin", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{A}:root"}}, "Action": "kms:*", "Resource": "*"}},
            {{"Sid": "Allow access through Amazon Connect Voice ID for all principals in the account that are authorized to use Amazon Connect Voice ID",
              "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{A}:role/VoiceIdRole"}},
              "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*",
              "Condition": {{"StringEquals": {{"kms:ViaService": "voiceid.us-west-2.amazonaws.com"}}}}}}
        ]}}"#
    )
}

#[tokio::test]
async fn seed_a_the_role_works_via_the_service_only() {
    let (core, admin, role) = core().await;
    let key = core
        .kms
        .call(
            &ctx(&admin, None),
            CreateKey {
                policy: Some(voice_id_policy()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .key_metadata;
    let direct = ctx(&role, Some("SampleUser"));
    let denied = core
        .kms
        .call(
            &direct,
            DescribeKey {
                key_id: key.arn.clone(),
                grant_tokens: vec![],
            },
        )
        .await;
    assert!(
        matches!(denied, Err(KmsError::AccessDenied(_))),
        "{denied:?}"
    );
    let mut via = direct.clone();
    via.via_service = Some("voiceid.us-west-2.amazonaws.com".into());
    core.kms
        .call(
            &via,
            DescribeKey {
                key_id: key.arn.clone(),
                grant_tokens: vec![],
            },
        )
        .await
        .unwrap();
    // Another service is not the one the policy names.
    let mut other = direct.clone();
    other.via_service = Some("s3.us-west-2.amazonaws.com".into());
    assert!(matches!(
        core.kms
            .call(
                &other,
                DescribeKey {
                    key_id: key.arn.clone(),
                    grant_tokens: vec![]
                }
            )
            .await,
        Err(KmsError::AccessDenied(_))
    ));
    // The audit record of the service call names the service as invoker.
    let last = core
        .audit
        .events()
        .into_iter()
        .rev()
        .find(|e| e.event_name == "DescribeKey" && e.error_code.is_none())
        .unwrap();
    assert_eq!(
        last.user_identity.invoked_by.as_deref(),
        Some("voiceid.us-west-2.amazonaws.com")
    );
    assert_eq!(last.user_identity.kind, Some("AssumedRole"));
}

#[tokio::test]
async fn seed_b_the_service_principal_grant_is_bound_to_the_domain_context() {
    let (core, admin, role) = core().await;
    let admin_ctx = ctx(&admin, None);
    let key = core
        .kms
        .call(
            &admin_ctx,
            CreateKey {
                policy: Some(voice_id_policy()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .key_metadata;
    // The role creates the grant through the service, for the service principal.
    let mut via = ctx(&role, Some("SampleUser"));
    via.via_service = Some("voiceid.us-west-2.amazonaws.com".into());
    let ops = [
        "CreateGrant",
        "Decrypt",
        "DescribeKey",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
    ];
    let grant = core
        .kms
        .call(
            &via,
            CreateGrant {
                key_id: key.arn.clone(),
                grantee_principal: "voiceid.amazonaws.com".into(),
                retiring_principal: Some("voiceid.amazonaws.com".into()),
                operations: ops.iter().map(|s| (*s).to_owned()).collect(),
                constraints: Some(Constraints {
                    encryption_context_subset: Some(
                        [("aws:voiceid:domain:arn".to_owned(), DOMAIN.to_owned())].into(),
                    ),
                    encryption_context_equals: None,
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The service acting as itself under the grant.
    let mut service = ctx(&role, Some("SampleUser"));
    service.service_principal = Some("voiceid.amazonaws.com".into());
    let gdk = |ec: Vec<(&str, &str)>| GenerateDataKey {
        key_id: key.arn.clone(),
        key_spec: Some(DataKeySpec::Aes256),
        encryption_context: Some(
            ec.into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ),
        ..Default::default()
    };
    let ok = core
        .kms
        .call(&service, gdk(vec![("aws:voiceid:domain:arn", DOMAIN)]))
        .await
        .unwrap();
    assert!(matches!(
        core.kms
            .call(
                &service,
                gdk(vec![(
                    "aws:voiceid:domain:arn",
                    "arn:aws:voiceid:us-west-2:111122223333:domain/other"
                )])
            )
            .await,
        Err(KmsError::AccessDenied(_))
    ));
    assert!(matches!(
        core.kms.call(&service, gdk(vec![])).await,
        Err(KmsError::AccessDenied(_))
    ));
    let decrypt = Decrypt {
        ciphertext_blob: Some(ok.ciphertext_blob.clone()),
        encryption_context: Some([("aws:voiceid:domain:arn".to_owned(), DOMAIN.to_owned())].into()),
        ..Default::default()
    };
    core.kms.call(&service, decrypt.clone()).await.unwrap();
    // The audit record of a service call shows the service, like the reference's Decrypt example.
    let rec = core
        .audit
        .events()
        .into_iter()
        .rev()
        .find(|e| e.event_name == "Decrypt")
        .unwrap();
    assert_eq!(
        serde_json::to_value(&rec.user_identity).unwrap(),
        serde_json::json!({"type": "AWSService", "invokedBy": "voiceid.amazonaws.com"})
    );
    assert_eq!(rec.source_ip_address, "voiceid.amazonaws.com");
    assert!(rec.shared_event_id.is_some());
    // (d) Revoking the grant denies the very next call.
    core.kms
        .call(
            &admin_ctx,
            RevokeGrant {
                key_id: key.arn.clone(),
                grant_id: grant.grant_id.clone(),
                dry_run: None,
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        core.kms.call(&service, decrypt).await,
        Err(KmsError::AccessDenied(_))
    ));
    let _ = AccountId::parse(A);
}
