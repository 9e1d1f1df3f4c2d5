//! Authorization through the wire: key policies, identity policies, grants, cross-account use,
//! the lockout check, and the seed scenarios, driven by aws-sdk-kms.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, GrantConstraints, GrantOperation};

use crate::common::{self, Server};
use crate::expect_err;

const A: &str = common::ACCOUNT; // 111122223333
const B: &str = common::OTHER_ACCOUNT; // 444455556666
const KMS_ALL: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}"#;

fn config() -> String {
    let kms_all = KMS_ALL.replace('"', "\\\"");
    format!(
        r#"
default_account = "{A}"

[[principals]]
arn = "arn:aws:iam::{A}:user/alice"
[[principals.policies]]
name = "KmsFullAccess"
document = "{kms_all}"

[[principals]]
arn = "arn:aws:iam::{A}:user/bob"
policies = []

[[principals]]
arn = "arn:aws:iam::{A}:role/VoiceIdRole"
policies = []

[[principals]]
arn = "arn:aws:iam::{A}:role/AppRole"
policies = []

[[principals]]
arn = "arn:aws:iam::{B}:user/carol"
[[principals.policies]]
name = "UseForeignKeys"
document = "{kms_all}"

[[principals]]
arn = "arn:aws:iam::{B}:user/dave"
policies = []

[[access_keys]]
id = "ALICEKEY"
secret = "alicesecret"
principal = "arn:aws:iam::{A}:user/alice"

[[access_keys]]
id = "BOBKEY"
secret = "bobsecret"
principal = "arn:aws:iam::{A}:user/bob"

[[access_keys]]
id = "VOICEKEY"
secret = "voicesecret"
principal = "arn:aws:iam::{A}:role/VoiceIdRole"
session_name = "SampleUser"

[[access_keys]]
id = "APPKEY"
secret = "appsecret"
principal = "arn:aws:iam::{A}:role/AppRole"
session_name = "app"

[[access_keys]]
id = "ROOTAKEY"
secret = "rootasecret"
principal = "arn:aws:iam::{A}:root"

[[access_keys]]
id = "CAROLKEY"
secret = "carolsecret"
principal = "arn:aws:iam::{B}:user/carol"

[[access_keys]]
id = "DAVEKEY"
secret = "davesecret"
principal = "arn:aws:iam::{B}:user/dave"

[[access_keys]]
id = "ROOTBKEY"
secret = "rootbsecret"
principal = "arn:aws:iam::{B}:root"
"#
    )
}

struct Env {
    server: Server,
    _tmp: tempfile::TempDir,
}

impl Env {
    fn start() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let server = Server::start_in(&tmp.path().join("data"), &config(), &[]);
        Env { server, _tmp: tmp }
    }
    fn as_(&self, who: &str) -> aws_sdk_kms::Client {
        let (k, s) = match who {
            "alice" => ("ALICEKEY", "alicesecret"),
            "bob" => ("BOBKEY", "bobsecret"),
            "voice" => ("VOICEKEY", "voicesecret"),
            "app" => ("APPKEY", "appsecret"),
            "rootA" => ("ROOTAKEY", "rootasecret"),
            "carol" => ("CAROLKEY", "carolsecret"),
            "dave" => ("DAVEKEY", "davesecret"),
            "rootB" => ("ROOTBKEY", "rootbsecret"),
            other => panic!("unknown identity {other}"),
        };
        self.server.kms_as(k, s)
    }
}

/// A key of account A created by alice with `policy` (or the default policy).
async fn key_with(env: &Env, policy: Option<&str>) -> (String, String) {
    let mut req = env.as_("alice").create_key();
    if let Some(p) = policy {
        req = req.policy(p).bypass_policy_lockout_safety_check(true);
    }
    let md = req.send().await.unwrap().key_metadata.unwrap();
    (md.key_id().to_owned(), md.arn().unwrap().to_owned())
}

async fn gdk(kms: &aws_sdk_kms::Client, key: &str) -> Result<(), (String, String)> {
    kms.generate_data_key()
        .key_id(key)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| common::err_code(&e))
}

#[tokio::test]
async fn default_policy_delegates_to_identity_policies() {
    let env = Env::start();
    let (_, arn) = key_with(&env, None).await;
    gdk(&env.as_("alice"), &arn).await.unwrap();
    gdk(&env.as_("rootA"), &arn).await.unwrap();
    let (code, msg) = gdk(&env.as_("bob"), &arn).await.unwrap_err();
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        msg,
        format!(
            "User: arn:aws:iam::{A}:user/bob is not authorized to perform: kms:GenerateDataKey on resource: {arn} because no identity-based policy allows the kms:GenerateDataKey action"
        )
    );
    // A role session without identity policies is denied too, and the message names the session.
    let (code, msg) = gdk(&env.as_("app"), &arn).await.unwrap_err();
    assert_eq!(code, "AccessDeniedException");
    assert!(
        msg.starts_with(&format!(
            "User: arn:aws:sts::{A}:assumed-role/AppRole/app is not authorized"
        )),
        "{msg}"
    );
    // IAM-only actions: bob may not create keys or list them; alice may.
    let (code, msg) = expect_err!(env.as_("bob").create_key().send().await);
    assert_eq!(code, "AccessDeniedException");
    assert!(msg.contains("kms:CreateKey on resource: *"), "{msg}");
    assert_eq!(
        expect_err!(env.as_("bob").list_keys().send().await).0,
        "AccessDeniedException"
    );
    env.as_("alice").list_keys().send().await.unwrap();
}

#[tokio::test]
async fn explicit_denies_win_over_every_allow() {
    let env = Env::start();
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Sid": "Admin", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{A}:root"}}, "Action": "kms:*", "Resource": "*"}},
            {{"Sid": "NoDecryptForAlice", "Effect": "Deny", "Principal": {{"AWS": "arn:aws:iam::{A}:user/alice"}}, "Action": "kms:Decrypt", "Resource": "*"}}
        ]}}"#
    );
    let (_, arn) = key_with(&env, Some(&policy)).await;
    let alice = env.as_("alice");
    let ct = alice
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    // Even a grant does not override an explicit deny.
    alice
        .create_grant()
        .key_id(&arn)
        .grantee_principal(format!("arn:aws:iam::{A}:user/alice"))
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .unwrap();
    let (code, msg) = expect_err!(
        alice
            .decrypt()
            .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
            .send()
            .await
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        msg.ends_with("with an explicit deny in a resource-based policy"),
        "{msg}"
    );

    // An identity-based deny.
    let tmp_policy = r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"}]}"#;
    let doc = env.server.data_dir.parent().unwrap().join("bob.json");
    std::fs::write(&doc, tmp_policy).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args([
            "admin",
            "put-principal-policy",
            "--principal",
            &format!("arn:aws:iam::{A}:user/bob"),
            "--name",
            "Mixed",
            "--document",
        ])
        .arg(&doc)
        .arg("--data-dir")
        .arg(&env.server.data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server picks identity changes up within its one-second cache bound.
    let bob = env.as_("bob");
    let mut attempts = 0;
    while gdk(&bob, &arn).await.is_err() {
        attempts += 1;
        assert!(attempts < 100, "identity policy change was not picked up");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (code, msg) = expect_err!(
        bob.encrypt()
            .key_id(&arn)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        msg.ends_with("with an explicit deny in an identity-based policy"),
        "{msg}"
    );
}

#[tokio::test]
async fn cross_account_use_needs_key_policy_and_identity_policy() {
    let env = Env::start();
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Sid": "Owner", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{A}:root"}}, "Action": "kms:*", "Resource": "*"}},
            {{"Sid": "PartnerAccount", "Effect": "Allow", "Principal": {{"AWS": "{B}"}}, "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"}}
        ]}}"#
    );
    let (key_id, arn) = key_with(&env, Some(&policy)).await;
    let (_, other_arn) = key_with(&env, None).await;
    // carol (B, identity policy allows) may, by key ARN.
    gdk(&env.as_("carol"), &arn).await.unwrap();
    let d = env
        .as_("carol")
        .describe_key()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(d.key_metadata().unwrap().aws_account_id(), Some(A));
    // B's root needs no identity policy.
    gdk(&env.as_("rootB"), &arn).await.unwrap();
    // dave (B, no identity policy) may not.
    let (code, msg) = gdk(&env.as_("dave"), &arn).await.unwrap_err();
    assert_eq!(code, "AccessDeniedException");
    assert!(
        msg.ends_with("because no identity-based policy allows the kms:GenerateDataKey action"),
        "{msg}"
    );
    // Not an action the key policy grants to B.
    let (code, _) = expect_err!(env.as_("carol").disable_key().key_id(&arn).send().await);
    assert_eq!(code, "AccessDeniedException");
    // A key whose policy does not name B: denied, and the same answer as for a key that does not exist.
    let (code, msg) = gdk(&env.as_("carol"), &other_arn).await.unwrap_err();
    assert_eq!(code, "AccessDeniedException");
    assert!(
        msg.ends_with("because no resource-based policy allows the kms:GenerateDataKey action"),
        "{msg}"
    );
    let missing = format!("arn:aws:kms:us-east-1:{A}:key/00000000-0000-4000-8000-000000000000");
    let (code2, msg2) = gdk(&env.as_("carol"), &missing).await.unwrap_err();
    assert_eq!(code2, "AccessDeniedException");
    assert_eq!(msg2, msg.replace(&other_arn, &missing));
    // A bare key id names a key of the caller's own account: not found for B.
    assert_eq!(
        gdk(&env.as_("carol"), &key_id).await.unwrap_err().0,
        "NotFoundException"
    );
    // Ciphertext made by A decrypts for carol, with no KeyId given.
    let ct = env
        .as_("alice")
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"shared".to_vec()))
        .send()
        .await
        .unwrap();
    let pt = env
        .as_("carol")
        .decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"shared");
}

#[tokio::test]
async fn key_policy_validation_and_lockout_check() {
    let env = Env::start();
    let (key_id, arn) = key_with(&env, None).await;
    let alice = env.as_("alice");
    let only_bob = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{A}:user/bob"}}, "Action": "kms:*", "Resource": "*"}}]}}"#
    );
    let (code, msg) = expect_err!(
        alice
            .put_key_policy()
            .key_id(&key_id)
            .policy(&only_bob)
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "MalformedPolicyDocumentException",
            "The new key policy will not allow you to update the key policy in the future."
        )
    );
    let (code, _) = expect_err!(alice.create_key().policy(&only_bob).send().await);
    assert_eq!(code, "MalformedPolicyDocumentException");
    let ghost = only_bob.replace("user/bob", "user/ghost");
    let (code, msg) = expect_err!(
        alice
            .put_key_policy()
            .key_id(&key_id)
            .policy(&ghost)
            .bypass_policy_lockout_safety_check(true)
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "MalformedPolicyDocumentException",
            "Policy contains a statement with one or more invalid principals."
        )
    );
    let (code, msg) = expect_err!(
        alice
            .put_key_policy()
            .key_id(&key_id)
            .policy(r#"{"Statement": []}"#)
            .send()
            .await
    );
    assert_eq!(code, "MalformedPolicyDocumentException");
    assert!(!msg.is_empty());
    let (code, _) = expect_err!(
        alice
            .put_key_policy()
            .key_id(&key_id)
            .policy(format!("{{\"Id\": \"{}\"}}", "x".repeat(33_000)))
            .send()
            .await
    );
    assert_eq!(code, "LimitExceededException");
    // With the bypass, alice locks herself out; bob now owns the key.
    alice
        .put_key_policy()
        .key_id(&key_id)
        .policy(&only_bob)
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .unwrap();
    let (code, _) = expect_err!(alice.get_key_policy().key_id(&key_id).send().await);
    assert_eq!(code, "AccessDeniedException");
    let got = env
        .as_("bob")
        .get_key_policy()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy(), Some(only_bob.as_str()), "stored verbatim");
}

/// Seed scenario (a), wire half: the Voice ID key policy allows the role only via the service,
/// so direct calls by the role are denied. (The via-service half runs in-process.)
#[tokio::test]
async fn seed_a_direct_calls_by_the_service_role_are_denied() {
    let env = Env::start();
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Sid": "Admin", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{A}:root"}}, "Action": "kms:*", "Resource": "*"}},
            {{"Sid": "Allow access through Amazon Connect Voice ID", "Effect": "Allow",
              "Principal": {{"AWS": "arn:aws:iam::{A}:role/VoiceIdRole"}},
              "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*",
              "Condition": {{"StringEquals": {{"kms:ViaService": "voiceid.us-east-1.amazonaws.com"}}}}}}
        ]}}"#
    );
    let (_, arn) = key_with(&env, Some(&policy)).await;
    let (code, msg) = expect_err!(env.as_("voice").describe_key().key_id(&arn).send().await);
    assert_eq!(code, "AccessDeniedException");
    assert!(msg.starts_with(&format!("User: arn:aws:sts::{A}:assumed-role/VoiceIdRole/SampleUser is not authorized to perform: kms:DescribeKey")), "{msg}");
}

/// Seed (b) over the wire with a role as grantee: a grant with an EncryptionContextSubset
/// constraint lets the grantee work with that context only; (c) a key policy condition on the
/// grant's context; (d) revocation and retirement.
#[tokio::test]
async fn seed_b_c_d_grants_with_constraints_revoke_and_retire() {
    let env = Env::start();
    let domain = "arn:aws:voiceid:us-east-1:111122223333:domain/sampleDomainId";
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Sid": "Admin", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{A}:root"}}, "Action": "kms:*", "Resource": "*"}},
            {{"Sid": "Grants only for this domain", "Effect": "Allow",
              "Principal": {{"AWS": "arn:aws:iam::{A}:role/VoiceIdRole"}}, "Action": "kms:CreateGrant", "Resource": "*",
              "Condition": {{"StringEquals": {{"kms:EncryptionContext:aws:voiceid:domain:arn": "{domain}"}}}}}}
        ]}}"#
    );
    let (_, arn) = key_with(&env, Some(&policy)).await;
    let ops = [
        GrantOperation::CreateGrant,
        GrantOperation::Decrypt,
        GrantOperation::DescribeKey,
        GrantOperation::GenerateDataKey,
        GrantOperation::GenerateDataKeyWithoutPlaintext,
        GrantOperation::GenerateDataKeyPair,
        GrantOperation::GenerateDataKeyPairWithoutPlaintext,
        GrantOperation::ReEncryptFrom,
        GrantOperation::ReEncryptTo,
    ];
    let subset = |v: &str| {
        GrantConstraints::builder()
            .encryption_context_subset("aws:voiceid:domain:arn", v)
            .build()
    };
    let voice = env.as_("voice");
    // (c) The role may create the grant only with the domain's context.
    let (code, _) = expect_err!(
        voice
            .create_grant()
            .key_id(&arn)
            .grantee_principal(format!("arn:aws:iam::{A}:role/AppRole"))
            .set_operations(Some(ops.to_vec()))
            .constraints(subset("arn:other"))
            .send()
            .await
    );
    assert_eq!(code, "AccessDeniedException");
    let grant = voice
        .create_grant()
        .key_id(&arn)
        .grantee_principal(format!("arn:aws:iam::{A}:role/AppRole"))
        .retiring_principal(format!("arn:aws:iam::{A}:role/VoiceIdRole"))
        .set_operations(Some(ops.to_vec()))
        .constraints(subset(domain))
        .name("voiceid-domain")
        .send()
        .await
        .unwrap();
    let grant_id = grant.grant_id().unwrap().to_owned();
    assert_eq!(grant_id.len(), 64);
    // Same name and properties: the same grant, a new token.
    let again = voice
        .create_grant()
        .key_id(&arn)
        .grantee_principal(format!("arn:aws:iam::{A}:role/AppRole"))
        .retiring_principal(format!("arn:aws:iam::{A}:role/VoiceIdRole"))
        .set_operations(Some(ops.to_vec()))
        .constraints(subset(domain))
        .name("voiceid-domain")
        .send()
        .await
        .unwrap();
    assert_eq!(again.grant_id(), Some(grant_id.as_str()));
    assert_ne!(again.grant_token(), grant.grant_token());

    // (b) The grantee (AppRole has no policies of its own) works with the domain's context only.
    let app = env.as_("app");
    let dk = app
        .generate_data_key()
        .key_id(&arn)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("aws:voiceid:domain:arn", domain)
        .encryption_context("extra", "pairs are fine")
        .grant_tokens(grant.grant_token().unwrap())
        .send()
        .await
        .unwrap();
    // Constraint keys compare case-insensitively; values case-sensitively.
    app.generate_data_key_without_plaintext()
        .key_id(&arn)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("AWS:VoiceID:Domain:ARN", domain)
        .send()
        .await
        .unwrap();
    let (code, _) = expect_err!(
        app.generate_data_key()
            .key_id(&arn)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context("aws:voiceid:domain:arn", domain.to_uppercase())
            .send()
            .await
    );
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        gdk(&app, &arn).await.unwrap_err().0,
        "AccessDeniedException",
        "no context, no access"
    );
    // Operations outside the grant stay denied.
    assert_eq!(
        expect_err!(
            app.encrypt()
                .key_id(&arn)
                .plaintext(Blob::new(b"x".to_vec()))
                .encryption_context("aws:voiceid:domain:arn", domain)
                .send()
                .await
        )
        .0,
        "AccessDeniedException"
    );
    app.describe_key().key_id(&arn).send().await.unwrap();
    let ctx_pairs = [
        ("aws:voiceid:domain:arn", domain),
        ("extra", "pairs are fine"),
    ];
    let mut dec = app
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().unwrap().clone());
    for (k, v) in ctx_pairs {
        dec = dec.encryption_context(k, v);
    }
    dec.clone().send().await.unwrap();

    // ListGrants shows it; ListRetirableGrants finds it by its retiring principal.
    let listed = env
        .as_("alice")
        .list_grants()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.grants().len(), 1);
    let g = &listed.grants()[0];
    assert_eq!(g.key_id(), Some(arn.as_str()));
    assert_eq!(g.name(), Some("voiceid-domain"));
    assert_eq!(
        g.issuing_account(),
        Some(format!("arn:aws:iam::{A}:root").as_str())
    );
    assert_eq!(g.operations().len(), 9);
    assert_eq!(
        g.constraints()
            .unwrap()
            .encryption_context_subset()
            .unwrap()
            .get("aws:voiceid:domain:arn")
            .map(String::as_str),
        Some(domain)
    );
    let retirable = env
        .as_("rootA")
        .list_retirable_grants()
        .retiring_principal(format!("arn:aws:iam::{A}:role/VoiceIdRole"))
        .send()
        .await
        .unwrap();
    assert_eq!(retirable.grants().len(), 1);

    // (d) Retiring: bob (not the retiring principal, not the grantee) may not; VoiceIdRole may.
    let (code, _) = expect_err!(
        env.as_("bob")
            .retire_grant()
            .grant_token(grant.grant_token().unwrap())
            .send()
            .await
    );
    assert_eq!(code, "AccessDeniedException");
    voice
        .retire_grant()
        .key_id(&arn)
        .grant_id(&grant_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        dec.clone()
            .send()
            .await
            .map_err(|e| common::err_code(&e))
            .unwrap_err()
            .0,
        "AccessDeniedException",
        "retired: denied at once"
    );

    // (d) Revoking denies the very next call.
    let g2 = env
        .as_("alice")
        .create_grant()
        .key_id(&arn)
        .grantee_principal(format!("arn:aws:iam::{A}:role/AppRole"))
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .unwrap();
    dec.clone().send().await.unwrap();
    env.as_("alice")
        .revoke_grant()
        .key_id(&arn)
        .grant_id(g2.grant_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        dec.send()
            .await
            .map_err(|e| common::err_code(&e))
            .unwrap_err()
            .0,
        "AccessDeniedException"
    );
    let (code, _) = expect_err!(
        env.as_("alice")
            .revoke_grant()
            .key_id(&arn)
            .grant_id(g2.grant_id().unwrap())
            .send()
            .await
    );
    assert_eq!(code, "NotFoundException");
}

#[tokio::test]
async fn grant_rules() {
    let env = Env::start();
    let (_, arn) = key_with(&env, None).await;
    let alice = env.as_("alice");
    let app_arn = format!("arn:aws:iam::{A}:role/AppRole");
    // Operations must suit the key.
    let (code, _) = expect_err!(
        alice
            .create_grant()
            .key_id(&arn)
            .grantee_principal(&app_arn)
            .operations(GrantOperation::Sign)
            .send()
            .await
    );
    assert_eq!(code, "ValidationException");
    // Aliases are not accepted as CreateGrant's KeyId (ARN form → InvalidArnException).
    let (code, _) = expect_err!(
        alice
            .create_grant()
            .key_id(format!("arn:aws:kms:us-east-1:{A}:alias/x"))
            .grantee_principal(&app_arn)
            .operations(GrantOperation::Decrypt)
            .send()
            .await
    );
    assert_eq!(code, "InvalidArnException");
    // Malformed tokens are rejected wherever tokens are taken.
    let (code, _) = expect_err!(
        alice
            .describe_key()
            .key_id(&arn)
            .grant_tokens("not-a-token")
            .send()
            .await
    );
    assert_eq!(code, "InvalidGrantTokenException");
    let (code, _) = expect_err!(
        alice
            .revoke_grant()
            .key_id(&arn)
            .grant_id("nope")
            .send()
            .await
    );
    assert_eq!(code, "InvalidGrantIdException");
    // A grantee holding CreateGrant may pass on a subset of its operations, not more.
    let parent = alice
        .create_grant()
        .key_id(&arn)
        .grantee_principal(&app_arn)
        .operations(GrantOperation::CreateGrant)
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .unwrap();
    let app = env.as_("app");
    app.create_grant()
        .key_id(&arn)
        .grantee_principal(format!("arn:aws:iam::{A}:user/bob"))
        .operations(GrantOperation::Decrypt)
        .grant_tokens(parent.grant_token().unwrap())
        .send()
        .await
        .unwrap();
    let (code, _) = expect_err!(
        app.create_grant()
            .key_id(&arn)
            .grantee_principal(format!("arn:aws:iam::{A}:user/bob"))
            .operations(GrantOperation::Encrypt)
            .send()
            .await
    );
    assert_eq!(code, "AccessDeniedException");
    // The issuing account (its root) may retire any grant it issued.
    env.as_("rootA")
        .retire_grant()
        .key_id(&arn)
        .grant_id(parent.grant_id().unwrap())
        .send()
        .await
        .unwrap();
    let left = alice.list_grants().key_id(&arn).send().await.unwrap();
    assert_eq!(left.grants().len(), 1);
    // Pagination of ListGrants.
    for _ in 0..3 {
        alice
            .create_grant()
            .key_id(&arn)
            .grantee_principal(&app_arn)
            .operations(GrantOperation::Decrypt)
            .send()
            .await
            .unwrap();
    }
    let page1 = alice
        .list_grants()
        .key_id(&arn)
        .limit(3)
        .send()
        .await
        .unwrap();
    assert_eq!(page1.grants().len(), 3);
    assert!(page1.truncated());
    let page2 = alice
        .list_grants()
        .key_id(&arn)
        .limit(3)
        .marker(page1.next_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page2.grants().len(), 1);
    assert!(!page2.truncated());
}

/// A representative slice of the authorization matrix, end to end: (who, action, expected).
#[tokio::test]
async fn matrix_slice_through_the_wire() {
    let env = Env::start();
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Sid": "Owner", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{A}:root"}}, "Action": "kms:*", "Resource": "*"}},
            {{"Sid": "AppUse", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{A}:role/AppRole"}}, "Action": ["kms:Encrypt", "kms:GenerateDataKey*"], "Resource": "*",
              "Condition": {{"StringEquals": {{"kms:EncryptionContext:tenant": "a"}}}}}},
            {{"Sid": "BobDescribe", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{A}:user/bob"}}, "Action": "kms:DescribeKey", "Resource": "*"}},
            {{"Sid": "PartnerDecrypt", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{B}:user/carol"}}, "Action": "kms:Decrypt", "Resource": "*"}},
            {{"Sid": "NoDisable", "Effect": "Deny", "Principal": "*", "Action": "kms:DisableKey", "Resource": "*",
              "Condition": {{"StringNotEquals": {{"aws:PrincipalArn": "arn:aws:iam::{A}:root"}}}}}}
        ]}}"#
    );
    let (_, arn) = key_with(&env, Some(&policy)).await;
    let ct = env
        .as_("alice")
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"m".to_vec()))
        .send()
        .await
        .unwrap();
    let blob = ct.ciphertext_blob().unwrap().clone();
    type Call = fn(
        aws_sdk_kms::Client,
        String,
        Blob,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), String>> + Send>,
    >;
    let gdk_a: Call = |c, k, _| {
        Box::pin(async move {
            c.generate_data_key()
                .key_id(k)
                .key_spec(DataKeySpec::Aes256)
                .encryption_context("tenant", "a")
                .send()
                .await
                .map(|_| ())
                .map_err(|e| common::err_code(&e).0)
        })
    };
    let gdk_b: Call = |c, k, _| {
        Box::pin(async move {
            c.generate_data_key()
                .key_id(k)
                .key_spec(DataKeySpec::Aes256)
                .encryption_context("tenant", "b")
                .send()
                .await
                .map(|_| ())
                .map_err(|e| common::err_code(&e).0)
        })
    };
    let describe: Call = |c, k, _| {
        Box::pin(async move {
            c.describe_key()
                .key_id(k)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| common::err_code(&e).0)
        })
    };
    let decrypt: Call = |c, _, b| {
        Box::pin(async move {
            c.decrypt()
                .ciphertext_blob(b)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| common::err_code(&e).0)
        })
    };
    let disable: Call = |c, k, _| {
        Box::pin(async move {
            c.disable_key()
                .key_id(k)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| common::err_code(&e).0)
        })
    };
    let enable: Call = |c, k, _| {
        Box::pin(async move {
            c.enable_key()
                .key_id(k)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| common::err_code(&e).0)
        })
    };
    let rows: Vec<(&str, &str, Call, bool)> = vec![
        (
            "alice",
            "GenerateDataKey tenant=a (identity delegation)",
            gdk_a,
            true,
        ),
        ("alice", "Decrypt", decrypt, true),
        (
            "app",
            "GenerateDataKey tenant=a (key policy, condition met)",
            gdk_a,
            true,
        ),
        (
            "app",
            "GenerateDataKey tenant=b (condition not met)",
            gdk_b,
            false,
        ),
        ("app", "DescribeKey (not granted)", describe, false),
        ("app", "Decrypt (not granted)", decrypt, false),
        ("bob", "DescribeKey (key policy names bob)", describe, true),
        (
            "bob",
            "GenerateDataKey (bob has no identity policy)",
            gdk_a,
            false,
        ),
        (
            "carol",
            "Decrypt (cross-account, key policy + identity)",
            decrypt,
            true,
        ),
        (
            "carol",
            "DescribeKey (cross-account, not in key policy)",
            describe,
            false,
        ),
        (
            "dave",
            "Decrypt (cross-account, no identity policy)",
            decrypt,
            false,
        ),
        (
            "rootB",
            "Decrypt (B's root not named by the key policy)",
            decrypt,
            false,
        ),
        (
            "alice",
            "DisableKey (explicit deny for non-root)",
            disable,
            false,
        ),
        (
            "rootA",
            "DisableKey (root exempt from the deny)",
            disable,
            true,
        ),
        ("rootA", "EnableKey", enable, true),
        (
            "voice",
            "DescribeKey (role without any allow)",
            describe,
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (who, what, call, allowed) in rows {
        let got = call(env.as_(who), arn.clone(), blob.clone()).await;
        let ok = match (&got, allowed) {
            (Ok(()), true) => true,
            (Err(code), false) => code == "AccessDeniedException",
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{who}: {what}: expected {}, got {got:?}",
                if allowed { "allow" } else { "deny" }
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn tresor_cli(args: &[&str], data: &std::path::Path) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `tresor explain` answers "why": from an audit record of a denied call, and for a described
/// request that would be allowed.
#[tokio::test]
async fn explain_names_the_deciding_statements_and_grants() {
    use aws_sdk_kms::operation::RequestId as _;
    let env = Env::start();
    let (_, arn) = key_with(&env, None).await;
    let denied = env
        .as_("bob")
        .generate_data_key()
        .key_id(&arn)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap_err();
    let request_id = denied.request_id().unwrap().to_owned();
    // Find the record's eventID through the audit log.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args([
            "audit",
            "lookup",
            "--error-code",
            "AccessDeniedException",
            "--data-dir",
        ])
        .arg(&env.server.data_dir)
        .output()
        .unwrap();
    let record: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["requestID"] == request_id.as_str())
        .expect("the denied call is in the audit log");
    let event_id = record["eventID"].as_str().unwrap();
    let why = tresor_cli(&["explain", "--event-id", event_id], &env.server.data_dir);
    let r = &why["results"][0];
    assert_eq!(r["decision"], "ImplicitDeny");
    assert_eq!(
        r["request"]["principal"],
        format!("arn:aws:iam::{A}:user/bob")
    );
    assert_eq!(r["request"]["action"], "kms:GenerateDataKey");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .ends_with("because no identity-based policy allows the kms:GenerateDataKey action")
    );
    let trace = r["trace"].to_string();
    assert!(
        trace.contains("key policy Statement[0]"),
        "the delegating statement is named: {trace}"
    );

    // A described request allowed by a grant names the grant.
    let grant = env
        .as_("alice")
        .create_grant()
        .key_id(&arn)
        .grantee_principal(format!("arn:aws:iam::{A}:role/AppRole"))
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .unwrap();
    let why = tresor_cli(
        &[
            "explain",
            "--principal",
            &format!("arn:aws:sts::{A}:assumed-role/AppRole/app"),
            "--action",
            "kms:Decrypt",
            "--key",
            &arn,
        ],
        &env.server.data_dir,
    );
    let r = &why["results"][0];
    assert_eq!(r["decision"], "Allow");
    assert!(
        r["trace"].to_string().contains(grant.grant_id().unwrap()),
        "{}",
        r["trace"]
    );
    // The same principal for an action the grant does not cover.
    let why = tresor_cli(
        &[
            "explain",
            "--principal",
            &format!("arn:aws:iam::{A}:role/AppRole"),
            "--action",
            "Encrypt",
            "--key",
            &arn,
        ],
        &env.server.data_dir,
    );
    assert_eq!(why["results"][0]["decision"], "ImplicitDeny");
}

/// Cross-account use is logged in both accounts (linked by sharedEventID); a denied
/// cross-account request only in the caller's.
#[tokio::test]
async fn cross_account_calls_are_logged_in_both_accounts() {
    use aws_sdk_kms::operation::RequestId as _;
    let env = Env::start();
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{A}:root"}}, "Action": "kms:*", "Resource": "*"}},
            {{"Effect": "Allow", "Principal": {{"AWS": "{B}"}}, "Action": "kms:GenerateDataKey", "Resource": "*"}}
        ]}}"#
    );
    let (_, arn) = key_with(&env, Some(&policy)).await;
    let ok = env
        .as_("carol")
        .generate_data_key()
        .key_id(&arn)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    let denied = env
        .as_("dave")
        .generate_data_key()
        .key_id(&arn)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap_err();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args(["audit", "lookup", "--data-dir"])
        .arg(&env.server.data_dir)
        .output()
        .unwrap();
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |id: &str| {
        records
            .iter()
            .filter(|r| r["requestID"] == id)
            .cloned()
            .collect::<Vec<_>>()
    };
    let both = of(ok.request_id().unwrap());
    assert_eq!(both.len(), 2, "{both:#?}");
    let mut recipients: Vec<&str> = both
        .iter()
        .map(|r| r["recipientAccountId"].as_str().unwrap())
        .collect();
    recipients.sort_unstable();
    assert_eq!(recipients, [A, B]);
    assert_eq!(both[0]["sharedEventID"], both[1]["sharedEventID"]);
    assert!(both[0]["sharedEventID"].is_string());
    assert_ne!(both[0]["eventID"], both[1]["eventID"]);
    let one = of(denied.request_id().unwrap());
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["recipientAccountId"], B);
}
