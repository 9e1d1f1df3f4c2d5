//! Identifiers and enumerations, parsed once and carried as types.
//!
//! AWS vocabulary is used verbatim: `KeySpec::SymmetricDefault` serialises as `SYMMETRIC_DEFAULT`.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::KmsError;

/// The only partition Tresor serves.
pub const PARTITION: &str = "aws";

/// A 12-digit AWS account id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Option<AccountId> {
        (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())).then(|| AccountId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `000000000000`, the account of a server configured with none.
    pub fn zero() -> AccountId {
        AccountId("000000000000".to_owned())
    }
    /// `arn:aws:iam::<account>:root` — the account principal.
    pub fn root_arn(&self) -> String {
        format!("arn:{PARTITION}:iam::{}:root", self.0)
    }
}

impl TryFrom<String> for AccountId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        AccountId::parse(&s).ok_or_else(|| format!("invalid account id {s:?}: must be 12 digits"))
    }
}
impl From<AccountId> for String {
    fn from(a: AccountId) -> String {
        a.0
    }
}
impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.0)
    }
}

/// An AWS region name such as `us-east-1` (model pattern `^([a-z]+-){2,3}\d+$`, 1–32 chars).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub fn parse(s: &str) -> Option<Region> {
        if s.is_empty() || s.len() > 32 {
            return None;
        }
        // ([a-z]+-){2,3}\d+
        let parts: Vec<&str> = s.split('-').collect();
        let (last, words) = parts.split_last()?;
        let ok_words = (2..=3).contains(&words.len())
            && words
                .iter()
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()));
        let ok_last = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit());
        (ok_words && ok_last).then(|| Region(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Region {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Region::parse(&s).ok_or_else(|| format!("invalid region {s:?}"))
    }
}
impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}
impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({})", self.0)
    }
}

/// A KMS key id: a lower-case UUID, unique within an account and region.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(pub Uuid);

impl TryFrom<String> for KeyId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        KeyId::parse(&s).ok_or_else(|| format!("invalid key id {s:?}"))
    }
}
impl From<KeyId> for String {
    fn from(k: KeyId) -> String {
        k.to_string()
    }
}

impl KeyId {
    pub fn new_random() -> KeyId {
        KeyId(tresor_crypto::random_uuid())
    }
    /// AWS key ids are lower-case 8-4-4-4-12 hex; anything else is not a key id.
    pub fn parse(s: &str) -> Option<KeyId> {
        canonical_uuid(s).map(KeyId)
    }
}

/// A UUID written in its canonical form (lower-case 8-4-4-4-12 hex) and nothing else, so that
/// formatting it gives back exactly `s`.
pub(crate) fn canonical_uuid(s: &str) -> Option<Uuid> {
    if s.len() != uuid::fmt::Hyphenated::LENGTH || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let u = Uuid::try_parse(s).ok()?;
    // try_parse also accepts braced/urn forms of other lengths; the length check above excludes them,
    // but make sure the hyphenated rendering round-trips exactly.
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    (u.hyphenated().encode_lower(&mut buf) == s).then_some(u)
}
impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}
impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0.hyphenated())
    }
}

/// `arn:aws:kms:<region>:<account>:key/<key-id>`
pub fn key_arn(region: &Region, account: &AccountId, key_id: &KeyId) -> String {
    format!("arn:{PARTITION}:kms:{region}:{account}:key/{key_id}")
}

/// `arn:aws:kms:<region>:<account>:alias/<name-without-prefix>` from an alias name `alias/<name>`.
pub fn alias_arn(region: &Region, account: &AccountId, alias_name: &str) -> String {
    format!("arn:{PARTITION}:kms:{region}:{account}:{alias_name}")
}

/// `arn:aws:kms:<region>:<account>:<resource>` → (region, account, resource), unchecked; `None`
/// for another partition or service, or fewer parts.
pub(crate) fn split_kms_arn(s: &str) -> Option<(&str, &str, &str)> {
    let mut parts = s.strip_prefix("arn:")?.splitn(5, ':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(PARTITION), Some("kms"), Some(region), Some(account), Some(resource)) => {
            Some((region, account, resource))
        }
        _ => None,
    }
}

/// A key identifier as a caller wrote it: key id, key ARN, alias name or alias ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    Id(KeyId),
    Arn {
        region: Region,
        account: AccountId,
        key_id: KeyId,
    },
    AliasName(String),
    AliasArn {
        region: Region,
        account: AccountId,
        alias_name: String,
    },
}

impl KeyRef {
    /// Parses a `KeyId`-style member. Malformed input answers AWS's
    /// `NotFoundException: Invalid keyId '<input>'`.
    pub fn parse(s: &str) -> Result<KeyRef, KmsError> {
        let invalid = || KmsError::NotFound(format!("Invalid keyId '{s}'"));
        if s.starts_with("arn:") {
            let Some((region, account, resource)) = split_kms_arn(s) else {
                return Err(invalid());
            };
            let region = Region::parse(region).ok_or_else(invalid)?;
            let account = AccountId::parse(account).ok_or_else(invalid)?;
            if let Some(id) = resource.strip_prefix("key/") {
                let key_id = KeyId::parse(id).ok_or_else(invalid)?;
                return Ok(KeyRef::Arn {
                    region,
                    account,
                    key_id,
                });
            }
            if resource.starts_with("alias/") && valid_alias_name(resource) {
                return Ok(KeyRef::AliasArn {
                    region,
                    account,
                    alias_name: resource.to_owned(),
                });
            }
            return Err(invalid());
        }
        if s.starts_with("alias/") {
            if valid_alias_name(s) {
                return Ok(KeyRef::AliasName(s.to_owned()));
            }
            return Err(invalid());
        }
        KeyId::parse(s).map(KeyRef::Id).ok_or_else(invalid)
    }

    pub fn is_alias(&self) -> bool {
        matches!(self, KeyRef::AliasName(_) | KeyRef::AliasArn { .. })
    }
}

/// `alias/` followed by 1+ characters of `[A-Za-z0-9/_-]`, 256 characters in all at most.
pub fn valid_alias_name(s: &str) -> bool {
    s.len() <= 256
        && s.strip_prefix("alias/").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
        })
}

macro_rules! aws_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

aws_enum!(KeySpec {
    SymmetricDefault = "SYMMETRIC_DEFAULT",
    Rsa2048 = "RSA_2048",
    Rsa3072 = "RSA_3072",
    Rsa4096 = "RSA_4096",
    EccNistP256 = "ECC_NIST_P256",
    EccNistP384 = "ECC_NIST_P384",
    EccNistP521 = "ECC_NIST_P521",
    EccSecgP256k1 = "ECC_SECG_P256K1",
    EccNistEdwards25519 = "ECC_NIST_EDWARDS25519",
    Hmac224 = "HMAC_224",
    Hmac256 = "HMAC_256",
    Hmac384 = "HMAC_384",
    Hmac512 = "HMAC_512",
    Sm2 = "SM2",
    MlDsa44 = "ML_DSA_44",
    MlDsa65 = "ML_DSA_65",
    MlDsa87 = "ML_DSA_87",
});

aws_enum!(KeyUsage {
    EncryptDecrypt = "ENCRYPT_DECRYPT",
    SignVerify = "SIGN_VERIFY",
    GenerateVerifyMac = "GENERATE_VERIFY_MAC",
    KeyAgreement = "KEY_AGREEMENT",
});

aws_enum!(Origin {
    AwsKms = "AWS_KMS",
    External = "EXTERNAL",
    AwsCloudhsm = "AWS_CLOUDHSM",
    ExternalKeyStore = "EXTERNAL_KEY_STORE",
});

aws_enum!(KeyManager {
    Aws = "AWS",
    Customer = "CUSTOMER",
});

aws_enum!(KeyState {
    Creating = "Creating",
    Enabled = "Enabled",
    Disabled = "Disabled",
    PendingDeletion = "PendingDeletion",
    PendingImport = "PendingImport",
    PendingReplicaDeletion = "PendingReplicaDeletion",
    Unavailable = "Unavailable",
    Updating = "Updating",
});

aws_enum!(EncryptionAlgorithm {
    SymmetricDefault = "SYMMETRIC_DEFAULT",
    RsaesOaepSha1 = "RSAES_OAEP_SHA_1",
    RsaesOaepSha256 = "RSAES_OAEP_SHA_256",
    Sm2Pke = "SM2PKE",
});

aws_enum!(SigningAlgorithm {
    RsassaPssSha256 = "RSASSA_PSS_SHA_256",
    RsassaPssSha384 = "RSASSA_PSS_SHA_384",
    RsassaPssSha512 = "RSASSA_PSS_SHA_512",
    RsassaPkcs1V15Sha256 = "RSASSA_PKCS1_V1_5_SHA_256",
    RsassaPkcs1V15Sha384 = "RSASSA_PKCS1_V1_5_SHA_384",
    RsassaPkcs1V15Sha512 = "RSASSA_PKCS1_V1_5_SHA_512",
    EcdsaSha256 = "ECDSA_SHA_256",
    EcdsaSha384 = "ECDSA_SHA_384",
    EcdsaSha512 = "ECDSA_SHA_512",
    Sm2Dsa = "SM2DSA",
    MlDsaShake256 = "ML_DSA_SHAKE_256",
    Ed25519Sha512 = "ED25519_SHA_512",
    Ed25519PhSha512 = "ED25519_PH_SHA_512",
});

aws_enum!(MessageType {
    Raw = "RAW",
    Digest = "DIGEST",
    ExternalMu = "EXTERNAL_MU",
});

aws_enum!(MacAlgorithm {
    HmacSha224 = "HMAC_SHA_224",
    HmacSha256 = "HMAC_SHA_256",
    HmacSha384 = "HMAC_SHA_384",
    HmacSha512 = "HMAC_SHA_512",
});

aws_enum!(KeyAgreementAlgorithm { Ecdh = "ECDH" });

aws_enum!(DataKeyPairSpec {
    Rsa2048 = "RSA_2048",
    Rsa3072 = "RSA_3072",
    Rsa4096 = "RSA_4096",
    EccNistP256 = "ECC_NIST_P256",
    EccNistP384 = "ECC_NIST_P384",
    EccNistP521 = "ECC_NIST_P521",
    EccSecgP256k1 = "ECC_SECG_P256K1",
    EccNistEdwards25519 = "ECC_NIST_EDWARDS25519",
    Sm2 = "SM2",
});

aws_enum!(DataKeySpec {
    Aes256 = "AES_256",
    Aes128 = "AES_128",
});

impl DataKeySpec {
    pub fn number_of_bytes(self) -> usize {
        match self {
            DataKeySpec::Aes256 => 32,
            DataKeySpec::Aes128 => 16,
        }
    }
}

aws_enum!(DryRunModifier {
    IgnoreCiphertext = "IGNORE_CIPHERTEXT",
});

aws_enum!(RotationType {
    Automatic = "AUTOMATIC",
    OnDemand = "ON_DEMAND",
});

aws_enum!(ExpirationModel {
    KeyMaterialExpires = "KEY_MATERIAL_EXPIRES",
    KeyMaterialDoesNotExpire = "KEY_MATERIAL_DOES_NOT_EXPIRE",
});

aws_enum!(WrappingAlgorithm {
    RsaesPkcs1V15 = "RSAES_PKCS1_V1_5",
    RsaesOaepSha1 = "RSAES_OAEP_SHA_1",
    RsaesOaepSha256 = "RSAES_OAEP_SHA_256",
    RsaAesKeyWrapSha1 = "RSA_AES_KEY_WRAP_SHA_1",
    RsaAesKeyWrapSha256 = "RSA_AES_KEY_WRAP_SHA_256",
    Sm2Pke = "SM2PKE",
});

aws_enum!(WrappingKeySpec {
    Rsa2048 = "RSA_2048",
    Rsa3072 = "RSA_3072",
    Rsa4096 = "RSA_4096",
    Sm2 = "SM2",
});

aws_enum!(ImportType {
    NewKeyMaterial = "NEW_KEY_MATERIAL",
    ExistingKeyMaterial = "EXISTING_KEY_MATERIAL",
});

aws_enum!(IncludeKeyMaterial {
    AllKeyMaterial = "ALL_KEY_MATERIAL",
    RotationsOnly = "ROTATIONS_ONLY",
});

/// A point in time, kept as milliseconds since the Unix epoch. On the KMS wire it is a JSON number of
/// epoch seconds with a fractional part (`1646160362.664`), never an ISO string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_unix_seconds(s: i64) -> Timestamp {
        Timestamp(s.saturating_mul(1000))
    }
    pub fn millis(self) -> i64 {
        self.0
    }
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }
    pub fn add_days(self, days: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(days.saturating_mul(86_400_000)))
    }
    /// `2022-08-10T22:38:27Z` (CloudTrail's eventTime form).
    pub fn to_iso8601_seconds(self) -> String {
        let t = time::OffsetDateTime::from_unix_timestamp(self.unix_seconds())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let (year, fields) = (
            t.year(),
            [
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
            ],
        );
        let Some(year) = u16::try_from(year).ok().filter(|y| *y <= 9999) else {
            return format!(
                "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                fields[0], fields[1], fields[2], fields[3], fields[4]
            );
        };
        // Digits pushed directly: this runs for every audit record.
        let mut out = String::with_capacity(20);
        let digit = |n: u16| char::from(b"0123456789"[usize::from(n % 10)]);
        for n in [year / 1000, year / 100, year / 10, year] {
            out.push(digit(n));
        }
        out.push('-');
        for (n, sep) in fields.into_iter().zip(['-', 'T', ':', ':', 'Z']) {
            out.push(digit(u16::from(n) / 10));
            out.push(digit(u16::from(n)));
            out.push(sep);
        }
        out
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Whole seconds serialise as integers-valued floats (e.g. 1700000000.0 → 1.7e9 would be ugly):
        // serde_json prints f64 shortest round-trip, so 1646160362.664 stays as written.
        s.serialize_f64(self.0 as f64 / 1000.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let secs = f64::deserialize(d)?;
        if !secs.is_finite() {
            return Err(serde::de::Error::custom(
                "timestamp must be a finite number",
            ));
        }
        Ok(Timestamp((secs * 1000.0).round() as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ref_parsing() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert!(matches!(KeyRef::parse(id), Ok(KeyRef::Id(_))));
        assert!(matches!(
            KeyRef::parse(&format!("arn:aws:kms:us-east-1:111122223333:key/{id}")),
            Ok(KeyRef::Arn { .. })
        ));
        assert_eq!(
            KeyRef::parse("alias/foo").ok(),
            Some(KeyRef::AliasName("alias/foo".into()))
        );
        assert!(matches!(
            KeyRef::parse("arn:aws:kms:us-east-1:111122223333:alias/foo/bar"),
            Ok(KeyRef::AliasArn { .. })
        ));
        for bad in [
            "fake-key-id",
            "mrk-fake-key-id",
            "1234abcd12ab34cd56ef1234567890ab",
            "1234ABCD-12ab-34cd-56ef-1234567890ab",
            "{1234abcd-12ab-34cd-56ef-1234567890ab}",
            "alias/",
            "alias/a b",
            "arn:aws:kms:us-east-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:s3:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:111122223333:key/nope",
            "",
        ] {
            match KeyRef::parse(bad) {
                Err(KmsError::NotFound(m)) => assert_eq!(m, format!("Invalid keyId '{bad}'")),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn region_and_account() {
        assert!(Region::parse("us-east-1").is_some());
        assert!(Region::parse("us-gov-west-1").is_some());
        assert!(Region::parse("eu-central-2").is_some());
        for bad in [
            "us-east",
            "US-EAST-1",
            "useast1",
            "a-b-c-d-1",
            "us--1",
            "",
            "us-east-1a",
        ] {
            assert!(Region::parse(bad).is_none(), "{bad}");
        }
        assert!(AccountId::parse("123456789012").is_some());
        assert!(AccountId::parse("12345678901").is_none());
        assert!(AccountId::parse("12345678901a").is_none());
    }

    #[test]
    fn timestamps_render() {
        let t = Timestamp(1_646_160_362_664);
        assert_eq!(
            serde_json::to_string(&t).ok().as_deref(),
            Some("1646160362.664")
        );
        assert_eq!(
            Timestamp::from_unix_seconds(1_660_171_107).to_iso8601_seconds(),
            "2022-08-10T22:38:27Z"
        );
        // Single-digit fields are zero-padded, as by the formatter it replaced.
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_704_070_861, "2024-01-01T01:01:01Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(
                Timestamp::from_unix_seconds(secs).to_iso8601_seconds(),
                text
            );
        }
        let back: Timestamp = serde_json::from_str("1646160362.664").expect("parse");
        assert_eq!(back, t);
    }
}
