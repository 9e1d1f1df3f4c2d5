//! Parser: documents AWS and its console produce, and malformed ones with
//! the messages they get.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tresor_policy::{
    Effect, PolicyError, PolicyVersion, ReferencedPrincipal, parse_identity_policy,
    parse_key_policy, parse_policy,
};

/// `CreateKey` without a policy: exactly as KMS returns it from
/// `GetKeyPolicy`, with its " : " separators.
const DEFAULT_KEY_POLICY: &str = r#"{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"#;

/// The console's policy with key administrators and key users.
const CONSOLE_KEY_POLICY: &str = r#"{
    "Id": "key-consolepolicy-3",
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "kms:*",
            "Resource": "*"
        },
        {
            "Sid": "Allow access for Key Administrators",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:role/KMSAdminRole"},
            "Action": [
                "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
                "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
                "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
                "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"
            ],
            "Resource": "*"
        },
        {
            "Sid": "Allow use of the key",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:role/ExampleUserRole"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*"
        },
        {
            "Sid": "Allow attachment of persistent resources",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:role/ExampleUserRole"},
            "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        }
    ]
}"#;

/// The Voice ID example key policy (Amazon Connect docs), with a real
/// role ARN in place of `your_user_or_role_ARN`.
const VOICE_ID_KEY_POLICY: &str = r#"{ "Version": "2012-10-17", "Statement": [ { "Sid": "Allow key access to Amazon Connect VoiceID.", "Effect": "Allow", "Principal": { "AWS": "arn:aws:iam::111122223333:role/VoiceIdRole" }, "Action": [ "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey" ], "Resource": "*", "Condition": { "StringEquals": { "kms:ViaService": [ "voiceid.us-west-2.amazonaws.com" ] } } } ] }"#;

fn malformed(result: Result<tresor_policy::Policy, PolicyError>) -> String {
    match result {
        Err(PolicyError::Malformed(message)) => message,
        Ok(policy) => panic!("accepted: {policy:?}"),
    }
}

#[test]
fn default_key_policy() {
    let policy = parse_key_policy(DEFAULT_KEY_POLICY).unwrap();
    assert_eq!(policy.version(), Some(PolicyVersion::V2012_10_17));
    assert_eq!(policy.id(), Some("key-default-1"));
    assert_eq!(policy.statements().len(), 1);
    let statement = &policy.statements()[0];
    assert_eq!(statement.sid(), Some("Enable IAM User Permissions"));
    assert_eq!(statement.effect(), Effect::Allow);
    assert!(statement.has_principal());
    assert_eq!(
        policy.principals_referenced(),
        [ReferencedPrincipal::Account("111122223333".into())]
    );
}

#[test]
fn console_key_policy() {
    let policy = parse_key_policy(CONSOLE_KEY_POLICY).unwrap();
    let sids: Vec<_> = policy.statements().iter().map(|s| s.sid()).collect();
    assert_eq!(
        sids,
        [
            Some("Enable IAM User Permissions"),
            Some("Allow access for Key Administrators"),
            Some("Allow use of the key"),
            Some("Allow attachment of persistent resources"),
        ]
    );
    assert_eq!(
        policy.principals_referenced(),
        [
            ReferencedPrincipal::Account("111122223333".into()),
            ReferencedPrincipal::Arn("arn:aws:iam::111122223333:role/KMSAdminRole".into()),
            ReferencedPrincipal::Arn("arn:aws:iam::111122223333:role/ExampleUserRole".into()),
        ]
    );
}

#[test]
fn voice_id_key_policies() {
    let policy = parse_key_policy(VOICE_ID_KEY_POLICY).unwrap();
    assert_eq!(
        policy.statements()[0].sid(),
        Some("Allow key access to Amazon Connect VoiceID.")
    );
    // The encryption-context statements of the same page, with their
    // quoting repaired (the published text has a stray quote pair).
    let repaired = r#"{"Version": "2012-10-17", "Statement": [
        { "Sid": "Enable DescribeKey", "Effect": "Allow", "Principal": { "AWS": "arn:aws:iam::111122223333:role/ExampleReadOnlyRole" }, "Action": "kms:DescribeKey", "Resource": "*" },
        { "Sid": "Enable CreateGrant", "Effect": "Allow", "Principal": { "AWS": "arn:aws:iam::111122223333:role/ExampleReadOnlyRole" }, "Action": "kms:CreateGrant", "Resource": "*", "Condition": { "StringEquals": { "kms:EncryptionContext:aws:voiceid:domain:arn": "arn:aws:voiceid:us-west-2:111122223333:domain/sampleDomainId" } } }
    ]}"#;
    assert_eq!(parse_key_policy(repaired).unwrap().statements().len(), 2);
    // As published, it is not JSON.
    let published = r#"{"Version": "2012-10-17", "Statement": [{ "Sid": "Enable CreateGrant", "Effect": "Allow", "Principal": { "AWS": "arn:aws:iam::111122223333:role/ExampleReadOnlyRole" }, "Action": "kms:CreateGrant", "Resource": "*", "Condition": { "StringEquals": { "kms:EncryptionContext:"aws:voiceid:domain:arn": "arn:aws:voiceid:us-west-2:111122223333:domain/sampleDomainId"" } } }]}"#;
    assert!(malformed(parse_key_policy(published)).starts_with("Policy is not valid JSON"));
    // With the documentation's placeholder principal, it is rejected.
    let placeholder = VOICE_ID_KEY_POLICY.replace(
        "arn:aws:iam::111122223333:role/VoiceIdRole",
        "your_user_or_role_ARN",
    );
    assert_eq!(
        malformed(parse_key_policy(&placeholder)),
        "Statement[0] (Sid \"Allow key access to Amazon Connect VoiceID.\"): invalid AWS principal \"your_user_or_role_ARN\""
    );
}

#[test]
fn other_valid_shapes() {
    // No Version (2008-10-17 semantics), Statement as one object, no Sid.
    let policy = parse_key_policy(
        r#"{"Statement": {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}}"#,
    )
    .unwrap();
    assert_eq!(policy.version(), None);
    assert_eq!(policy.statements()[0].sid(), None);
    assert_eq!(policy.statements()[0].effect(), Effect::Deny);
    assert!(policy.principals_referenced().is_empty());

    let policy = parse_policy(
        r#"{"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}"#,
    )
    .unwrap();
    assert_eq!(policy.version(), Some(PolicyVersion::V2008_10_17));

    // Statements without Action or Resource are accepted (they never match).
    let policy = parse_key_policy(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Sid": "No action", "Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Resource": "*"},
            {"Sid": "No resource", "Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "kms:*"}
        ]}"#,
    )
    .unwrap();
    assert_eq!(policy.statements().len(), 2);

    // Every principal type, lists, NotPrincipal, Latin-1 text, numbers and
    // booleans as condition values, every operator family.
    let policy = parse_key_policy(
        "{\"Version\": \"2012-10-17\", \"Statement\": [
            {\"Sid\": \"Caf\u{e9} \u{bd}\", \"Effect\": \"Allow\",
             \"Principal\": {\"AWS\": [\"111122223333\", \"arn:aws:iam::111122223333:user/division/alice\",
                                   \"arn:aws:sts::111122223333:assumed-role/R/s\", \"*\",
                                   \"arn:aws:iam::111122223333:root\"],
                            \"Service\": [\"voiceid.amazonaws.com\", \"s3.amazonaws.com\"],
                            \"Federated\": \"cognito-identity.amazonaws.com\",
                            \"CanonicalUser\": \"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be\"},
             \"Action\": [\"kms:Decrypt\", \"KMS:Generate*\", \"kms:?e*\"], \"NotResource\": [\"arn:aws:kms:*:111122223333:key/other\"],
             \"Condition\": {
                \"NumericLessThanEquals\": {\"kms:RotationPeriodInDays\": 365},
                \"Bool\": {\"kms:GrantIsForAWSResource\": true},
                \"DateLessThan\": {\"aws:CurrentTime\": \"2030-01-01T00:00:00Z\"},
                \"IpAddress\": {\"aws:SourceIp\": [\"10.0.0.0/8\", \"2001:db8::/32\"]},
                \"ArnLike\": {\"aws:PrincipalArn\": \"arn:aws:iam::*:role/*\"},
                \"ForAllValues:StringLike\": {\"kms:EncryptionContextKeys\": [\"aws:*\"]},
                \"Null\": {\"kms:ViaService\": \"false\"},
                \"BinaryEquals\": {\"k:b\": \"QmluYXJ5\"},
                \"StringEqualsIgnoreCaseIfExists\": {\"kms:RequestAlias\": \"alias/A\"}
             }},
            {\"Effect\": \"Deny\", \"NotPrincipal\": {\"AWS\": \"arn:aws:iam::444455556666:root\"},
             \"NotAction\": \"kms:Describe*\", \"Resource\": \"*\"}
        ]}",
    )
    .unwrap();
    assert_eq!(
        policy.principals_referenced(),
        [
            ReferencedPrincipal::Account("111122223333".into()),
            ReferencedPrincipal::Arn("arn:aws:iam::111122223333:user/division/alice".into()),
            ReferencedPrincipal::Arn("arn:aws:sts::111122223333:assumed-role/R/s".into()),
            ReferencedPrincipal::Service("voiceid.amazonaws.com".into()),
            ReferencedPrincipal::Service("s3.amazonaws.com".into()),
            ReferencedPrincipal::Account("444455556666".into()),
        ]
    );

    let identity = parse_identity_policy(
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:*:111122223333:alias/${aws:username}"}]}"#,
    )
    .unwrap();
    assert!(identity.principals_referenced().is_empty());
}

#[test]
fn malformed_documents() {
    const STMT: &str = r#""Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*""#;
    let doc =
        |statement: &str| format!(r#"{{"Version": "2012-10-17", "Statement": [{statement}]}}"#);
    let with = |extra: &str| doc(&format!("{{{STMT}, {extra}}}"));
    let table: Vec<(String, &str)> = vec![
        (
            "".into(),
            "Policy is not valid JSON: EOF while parsing a value at line 1 column 0",
        ),
        (
            "kms:*".into(),
            "Policy is not valid JSON: expected value at line 1 column 1",
        ),
        (
            format!("{} x", doc(&format!("{{{STMT}}}"))),
            "Policy is not valid JSON: trailing characters",
        ),
        ("[]".into(), "Policy must be a JSON object, not a list"),
        (
            r#"{"Version": "2012-10-17"}"#.into(),
            "Policy has no Statement",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": []}"#.into(),
            "Statement must contain at least one statement",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": "kms:*"}"#.into(),
            "Statement must be an object or a list of objects, not a string",
        ),
        (
            r#"{"Version": "2012-10-18", "Statement": {}}"#.into(),
            "Version must be \"2012-10-17\" or \"2008-10-17\", not \"2012-10-18\"",
        ),
        (
            r#"{"Version": 2012, "Statement": {}}"#.into(),
            "Version must be \"2012-10-17\" or \"2008-10-17\", not a number",
        ),
        (
            r#"{"Id": 7, "Statement": {}}"#.into(),
            "Id must be a string, not a number",
        ),
        (
            r#"{"Statements": []}"#.into(),
            "Unknown policy element \"Statements\"",
        ),
        (
            doc(r#""Allow""#),
            "Statement[0] must be an object, not a string",
        ),
        (
            doc(&format!(r#"{{{STMT}}}, 5"#)),
            "Statement[1] must be an object, not a number",
        ),
        (
            with(r#""Sid": 1"#),
            "Statement[0]: Sid must be a string, not a number",
        ),
        (
            with(r#""Actions": "kms:*""#),
            "Statement[0]: unknown element \"Actions\"",
        ),
        (
            doc(
                r#"{"Sid": "Admins", "Effect": "allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}"#,
            ),
            "Statement[0] (Sid \"Admins\"): Effect must be \"Allow\" or \"Deny\", not \"allow\"",
        ),
        (
            doc(r#"{"Principal": "*", "Action": "kms:*", "Resource": "*"}"#),
            "Statement[0]: Effect is missing",
        ),
        (
            doc(r#"{"Effect": ["Allow"], "Principal": "*", "Action": "kms:*", "Resource": "*"}"#),
            "Statement[0]: Effect must be \"Allow\" or \"Deny\", not a list",
        ),
        (
            with(r#""NotAction": "kms:Decrypt""#),
            "Statement[0]: Action and NotAction cannot both be present",
        ),
        (
            with(r#""NotResource": "*""#),
            "Statement[0]: Resource and NotResource cannot both be present",
        ),
        (
            with(r#""NotPrincipal": {"AWS": "111122223333"}"#),
            "Statement[0]: Principal and NotPrincipal cannot both be present",
        ),
        (
            doc(
                r#"{"Effect": "Allow", "Principal": "arn:aws:iam::111122223333:root", "Action": "kms:*", "Resource": "*"}"#,
            ),
            "Statement[0]: Principal must be \"*\" or an object such as {\"AWS\": \"arn:aws:iam::111122223333:root\"}, not \"arn:aws:iam::111122223333:root\"",
        ),
        (
            doc(r#"{"Effect": "Allow", "Principal": {}, "Action": "kms:*", "Resource": "*"}"#),
            "Statement[0]: Principal must be \"*\" or an object",
        ),
        (
            doc(
                r#"{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::*:root"}, "Action": "kms:*", "Resource": "*"}"#,
            ),
            "Statement[0]: invalid AWS principal \"arn:aws:iam::*:root\"",
        ),
        (
            doc(
                r#"{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/*"}, "Action": "kms:*", "Resource": "*"}"#,
            ),
            "Statement[0]: invalid AWS principal \"arn:aws:iam::111122223333:role/*\"",
        ),
        (
            doc(
                r#"{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/al?ce"}, "Action": "kms:*", "Resource": "*"}"#,
            ),
            "Statement[0]: invalid AWS principal \"arn:aws:iam::111122223333:user/al?ce\"",
        ),
        (
            doc(
                r#"{"Effect": "Allow", "Principal": {"AWS": "11112222333"}, "Action": "kms:*", "Resource": "*"}"#,
            ),
            "Statement[0]: invalid AWS principal \"11112222333\"",
        ),
        (
            doc(
                r#"{"Effect": "Allow", "Principal": {"AWS": "arn:aws:s3:::bucket"}, "Action": "kms:*", "Resource": "*"}"#,
            ),
            "Statement[0]: invalid AWS principal \"arn:aws:s3:::bucket\"",
        ),
        (
            doc(
                r#"{"Effect": "Allow", "Principal": {"AWS": 111122223333}, "Action": "kms:*", "Resource": "*"}"#,
            ),
            "Statement[0]: Principal AWS must be a string or a list of strings, not a number",
        ),
        (
            doc(
                r#"{"Effect": "Allow", "Principal": {"AWS": []}, "Action": "kms:*", "Resource": "*"}"#,
            ),
            "Statement[0]: Principal AWS is an empty list",
        ),
        (
            doc(
                r#"{"Effect": "Allow", "Principal": {"Service": "*"}, "Action": "kms:*", "Resource": "*"}"#,
            ),
            "Statement[0]: invalid Service principal \"*\"",
        ),
        (
            doc(
                r#"{"Effect": "Allow", "Principal": {"Group": "admins"}, "Action": "kms:*", "Resource": "*"}"#,
            ),
            "Statement[0]: unknown principal type \"Group\" in Principal",
        ),
        (
            doc(r#"{"Effect": "Allow", "Principal": "*", "Action": "Decrypt", "Resource": "*"}"#),
            "Statement[0]: Action \"Decrypt\" must be \"*\" or \"<service>:<action>\" (for example \"kms:Decrypt\")",
        ),
        (
            doc(r#"{"Effect": "Allow", "Principal": "*", "NotAction": "kms:", "Resource": "*"}"#),
            "Statement[0]: NotAction \"kms:\" must be \"*\" or \"<service>:<action>\"",
        ),
        (
            doc(r#"{"Effect": "Allow", "Principal": "*", "Action": [], "Resource": "*"}"#),
            "Statement[0]: Action is an empty list",
        ),
        (
            doc(
                r#"{"Effect": "Allow", "Principal": "*", "Action": ["kms:Decrypt", 5], "Resource": "*"}"#,
            ),
            "Statement[0]: Action entries must be strings, not a number",
        ),
        (
            doc(
                r#"{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "key/1234"}"#,
            ),
            "Statement[0]: Resource \"key/1234\" must be \"*\" or an ARN",
        ),
        (
            doc(r#"{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": true}"#),
            "Statement[0]: Resource must be a string or a list of strings, not a boolean",
        ),
        (
            with(
                r#""Condition": {"StringEqualz": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}"#,
            ),
            "Statement[0]: Unknown condition operator StringEqualz",
        ),
        (
            with(r#""Condition": {"StringEquals": {"kms:ViaService": null}}"#),
            "Statement[0]: Condition StringEquals kms:ViaService: a value must be a string, number or boolean, not null",
        ),
        (
            with(r#""Condition": {"NumericLessThan": {"kms:RotationPeriodInDays": "a year"}}"#),
            "Statement[0]: Condition NumericLessThan kms:RotationPeriodInDays: \"a year\" is not a number",
        ),
        (
            with(r#""Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}"#),
            "Statement[0]: Condition IpAddress aws:SourceIp: \"10.0.0.0/33\" is not an IPv4 or IPv6 address or CIDR block",
        ),
        (
            with(r#""Condition": ["StringEquals"]"#),
            "Statement[0]: Condition must be an object, not a list",
        ),
        (
            with(r#""Effect": "Deny""#),
            "Policy is not valid JSON: duplicate member \"Effect\" in a JSON object",
        ),
        (
            doc(&format!(
                r#"{{{STMT}, "Condition": {{"StringEquals": {{"a:b": "1"}}, "StringEquals": {{"a:c": "2"}}}}}}"#
            )),
            "Policy is not valid JSON: duplicate member \"StringEquals\"",
        ),
        (
            doc(&format!("{{{STMT}, \"Sid\": \"\u{4e2d}\"}}")),
            "Policy contains the character U+4E2D at byte offset 122; only tab, LF, CR and U+0020-U+00FF are allowed",
        ),
        (
            doc(&format!("{{{STMT}, \"Sid\": \"a\u{7}\"}}")),
            "Policy contains the character U+0007",
        ),
    ];
    assert!(table.len() >= 25);
    for (text, want) in &table {
        let got = malformed(parse_policy(text));
        assert!(
            got.starts_with(want),
            "{text}\n  got:  {got}\n  want: {want}"
        );
    }
}

#[test]
fn key_and_identity_policy_rules() {
    let no_principal = r#"{"Version": "2012-10-17", "Statement": [{"Sid": "Use", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}"#;
    assert_eq!(
        malformed(parse_key_policy(no_principal)),
        "Statement[0] (Sid \"Use\"): a key policy statement must have a Principal or NotPrincipal"
    );
    assert!(parse_identity_policy(no_principal).is_ok());

    let with_principal = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]}"#;
    assert_eq!(
        malformed(parse_identity_policy(with_principal)),
        "Statement[0]: an identity-based policy must not have Principal or NotPrincipal"
    );
    let with_not_principal = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "NotPrincipal": {"AWS": "111122223333"}, "Action": "kms:Decrypt", "Resource": "*"}]}"#;
    assert!(
        malformed(parse_identity_policy(with_not_principal))
            .ends_with("an identity-based policy must not have Principal or NotPrincipal")
    );
    assert!(parse_key_policy(with_principal).is_ok());
    assert!(parse_key_policy(with_not_principal).is_ok());
}

/// Whether a policy can read the request's condition context: the server builds the context only
/// for calls whose policies can (a condition anywhere, or a variable in a resource pattern).
#[test]
fn which_policies_read_the_request_context() {
    let statement = |extra: &str| {
        format!(
            r#"{{"Version": "2012-10-17", "Statement": [
                {{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}},
                {{"Effect": "Deny", "Action": "kms:*", {extra}}}
            ]}}"#
        )
    };
    assert!(
        !parse_key_policy(DEFAULT_KEY_POLICY)
            .unwrap()
            .reads_context()
    );
    // The console's policy lets key users create grants only for AWS resources (a condition).
    assert!(
        parse_key_policy(CONSOLE_KEY_POLICY)
            .unwrap()
            .reads_context()
    );
    let cases = [
        (r#""Resource": "arn:aws:kms:*:111122223333:key/*""#, false),
        // Without a 2012-10-17 version `${...}` is plain text; with it, a variable.
        (
            r#""Resource": "arn:aws:kms:*:${aws:PrincipalAccount}:key/*""#,
            true,
        ),
        (
            r#""NotResource": "arn:aws:kms:*:*:alias/${aws:username}""#,
            true,
        ),
        (r#""Resource": "arn:aws:kms:*:*:key/${*}""#, false),
        (
            r#""Resource": "*", "Condition": {"StringNotEquals": {"kms:EncryptionContext:tenant": "a"}}"#,
            true,
        ),
        (
            r#""Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}"#,
            true,
        ),
    ];
    for (extra, reads) in cases {
        let doc = statement(extra);
        assert_eq!(
            parse_identity_policy(&doc).unwrap().reads_context(),
            reads,
            "{doc}"
        );
    }
    let unversioned = r#"{"Statement": [{"Effect": "Allow", "Action": "kms:*",
        "Resource": "arn:aws:kms:*:${aws:PrincipalAccount}:key/*"}]}"#;
    assert!(!parse_identity_policy(unversioned).unwrap().reads_context());
}
