//! Asymmetric and HMAC keys in the core: how AWS key specs map onto `tresor_crypto`, key
//! generation and loading, the algorithm lists of `KeyMetadata`/`GetPublicKey`, and the key
//! usage and algorithm checks the operations share.
//!
//! Storage: such a key has exactly one [`crate::store::MaterialRecord`] (its `current_material`),
//! wrapped under the root key with [`crate::store::material_wrap_purpose`] like symmetric
//! material. For asymmetric keys it holds the PKCS#8 private key and carries the DER public key
//! in `public_key`; for HMAC keys it holds the raw HMAC key.

use tresor_crypto::SecretBytes;
use tresor_crypto::asymmetric::{
    self as crypto, AsymmetricKeySpec, AsymmetricPrivateKey, KeyPurpose, OaepHash,
};
use tresor_crypto::hmac_key::{self, HmacKeyMaterial};

use crate::error::KmsError;
use crate::store::KeyRecord;
use crate::types::{
    DataKeyPairSpec, EncryptionAlgorithm, KeyAgreementAlgorithm, KeySpec, KeyUsage, MacAlgorithm,
    MessageType, SigningAlgorithm,
};

/// The crypto spec of an asymmetric key spec (`None`: symmetric, HMAC or SM2).
pub(crate) fn asymmetric_spec(spec: KeySpec) -> Option<AsymmetricKeySpec> {
    Some(match spec {
        KeySpec::Rsa2048 => AsymmetricKeySpec::Rsa2048,
        KeySpec::Rsa3072 => AsymmetricKeySpec::Rsa3072,
        KeySpec::Rsa4096 => AsymmetricKeySpec::Rsa4096,
        KeySpec::EccNistP256 => AsymmetricKeySpec::EccNistP256,
        KeySpec::EccNistP384 => AsymmetricKeySpec::EccNistP384,
        KeySpec::EccNistP521 => AsymmetricKeySpec::EccNistP521,
        KeySpec::EccSecgP256k1 => AsymmetricKeySpec::EccSecgP256k1,
        KeySpec::EccNistEdwards25519 => AsymmetricKeySpec::EccNistEdwards25519,
        KeySpec::MlDsa44 => AsymmetricKeySpec::MlDsa44,
        KeySpec::MlDsa65 => AsymmetricKeySpec::MlDsa65,
        KeySpec::MlDsa87 => AsymmetricKeySpec::MlDsa87,
        KeySpec::SymmetricDefault
        | KeySpec::Hmac224
        | KeySpec::Hmac256
        | KeySpec::Hmac384
        | KeySpec::Hmac512
        | KeySpec::Sm2 => return None,
    })
}

/// The crypto spec of a data key pair spec (`None`: SM2).
pub(crate) fn data_key_pair_spec(spec: DataKeyPairSpec) -> Option<AsymmetricKeySpec> {
    Some(match spec {
        DataKeyPairSpec::Rsa2048 => AsymmetricKeySpec::Rsa2048,
        DataKeyPairSpec::Rsa3072 => AsymmetricKeySpec::Rsa3072,
        DataKeyPairSpec::Rsa4096 => AsymmetricKeySpec::Rsa4096,
        DataKeyPairSpec::EccNistP256 => AsymmetricKeySpec::EccNistP256,
        DataKeyPairSpec::EccNistP384 => AsymmetricKeySpec::EccNistP384,
        DataKeyPairSpec::EccNistP521 => AsymmetricKeySpec::EccNistP521,
        DataKeyPairSpec::EccSecgP256k1 => AsymmetricKeySpec::EccSecgP256k1,
        DataKeyPairSpec::EccNistEdwards25519 => AsymmetricKeySpec::EccNistEdwards25519,
        DataKeyPairSpec::Sm2 => return None,
    })
}

fn purpose(usage: KeyUsage) -> Option<KeyPurpose> {
    match usage {
        KeyUsage::SignVerify => Some(KeyPurpose::Signing),
        KeyUsage::EncryptDecrypt => Some(KeyPurpose::Encryption),
        KeyUsage::KeyAgreement => Some(KeyPurpose::KeyAgreement),
        KeyUsage::GenerateVerifyMac => None,
    }
}

/// The one MAC algorithm of an HMAC key spec.
pub(crate) fn mac_algorithm(spec: KeySpec) -> Option<MacAlgorithm> {
    match spec {
        KeySpec::Hmac224 => Some(MacAlgorithm::HmacSha224),
        KeySpec::Hmac256 => Some(MacAlgorithm::HmacSha256),
        KeySpec::Hmac384 => Some(MacAlgorithm::HmacSha384),
        KeySpec::Hmac512 => Some(MacAlgorithm::HmacSha512),
        _ => None,
    }
}

fn crypto_mac(alg: MacAlgorithm) -> hmac_key::MacAlgorithm {
    match alg {
        MacAlgorithm::HmacSha224 => hmac_key::MacAlgorithm::HmacSha224,
        MacAlgorithm::HmacSha256 => hmac_key::MacAlgorithm::HmacSha256,
        MacAlgorithm::HmacSha384 => hmac_key::MacAlgorithm::HmacSha384,
        MacAlgorithm::HmacSha512 => hmac_key::MacAlgorithm::HmacSha512,
    }
}

/// The crypto signing algorithm (`None`: `SM2DSA`).
pub(crate) fn crypto_signing(alg: SigningAlgorithm) -> Option<crypto::SigningAlgorithm> {
    use crypto::SigningAlgorithm as C;
    Some(match alg {
        SigningAlgorithm::RsassaPssSha256 => C::RsassaPssSha256,
        SigningAlgorithm::RsassaPssSha384 => C::RsassaPssSha384,
        SigningAlgorithm::RsassaPssSha512 => C::RsassaPssSha512,
        SigningAlgorithm::RsassaPkcs1V15Sha256 => C::RsassaPkcs1V15Sha256,
        SigningAlgorithm::RsassaPkcs1V15Sha384 => C::RsassaPkcs1V15Sha384,
        SigningAlgorithm::RsassaPkcs1V15Sha512 => C::RsassaPkcs1V15Sha512,
        SigningAlgorithm::EcdsaSha256 => C::EcdsaSha256,
        SigningAlgorithm::EcdsaSha384 => C::EcdsaSha384,
        SigningAlgorithm::EcdsaSha512 => C::EcdsaSha512,
        SigningAlgorithm::MlDsaShake256 => C::MlDsaShake256,
        SigningAlgorithm::Ed25519Sha512 => C::Ed25519Sha512,
        SigningAlgorithm::Ed25519PhSha512 => C::Ed25519PhSha512,
        SigningAlgorithm::Sm2Dsa => return None,
    })
}

fn kms_signing(alg: crypto::SigningAlgorithm) -> SigningAlgorithm {
    use crypto::SigningAlgorithm as C;
    match alg {
        C::RsassaPssSha256 => SigningAlgorithm::RsassaPssSha256,
        C::RsassaPssSha384 => SigningAlgorithm::RsassaPssSha384,
        C::RsassaPssSha512 => SigningAlgorithm::RsassaPssSha512,
        C::RsassaPkcs1V15Sha256 => SigningAlgorithm::RsassaPkcs1V15Sha256,
        C::RsassaPkcs1V15Sha384 => SigningAlgorithm::RsassaPkcs1V15Sha384,
        C::RsassaPkcs1V15Sha512 => SigningAlgorithm::RsassaPkcs1V15Sha512,
        C::EcdsaSha256 => SigningAlgorithm::EcdsaSha256,
        C::EcdsaSha384 => SigningAlgorithm::EcdsaSha384,
        C::EcdsaSha512 => SigningAlgorithm::EcdsaSha512,
        C::Ed25519Sha512 => SigningAlgorithm::Ed25519Sha512,
        C::Ed25519PhSha512 => SigningAlgorithm::Ed25519PhSha512,
        C::MlDsaShake256 => SigningAlgorithm::MlDsaShake256,
    }
}

/// The OAEP hash of an asymmetric encryption algorithm (`None`: `SYMMETRIC_DEFAULT`, `SM2PKE`).
pub(crate) fn oaep_hash(alg: EncryptionAlgorithm) -> Option<OaepHash> {
    match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => Some(OaepHash::Sha1),
        EncryptionAlgorithm::RsaesOaepSha256 => Some(OaepHash::Sha256),
        EncryptionAlgorithm::SymmetricDefault | EncryptionAlgorithm::Sm2Pke => None,
    }
}

/// Whether a key is an asymmetric `ENCRYPT_DECRYPT` key (RSA; SM2 is never created).
pub(crate) fn is_asymmetric_encryption(record: &KeyRecord) -> bool {
    record.key_usage == KeyUsage::EncryptDecrypt && asymmetric_spec(record.key_spec).is_some()
}

/// The key material of a new asymmetric or HMAC key.
pub(crate) struct NewMaterial {
    /// What is wrapped under the root key: PKCS#8 (asymmetric) or the raw HMAC key.
    pub secret: SecretBytes,
    /// Asymmetric keys: the DER `SubjectPublicKeyInfo`.
    pub public_key: Option<Vec<u8>>,
}

/// Generates the material of a new `spec` key with `usage` (slow for RSA: run it on a blocking
/// thread). The spec × usage pair has been validated by CreateKey.
pub(crate) fn generate(spec: KeySpec, usage: KeyUsage) -> Result<NewMaterial, KmsError> {
    if let Some(mac) = mac_algorithm(spec) {
        let key = HmacKeyMaterial::generate(crypto_mac(mac)).map_err(KmsError::internal)?;
        return Ok(NewMaterial {
            secret: SecretBytes::new(key.expose().to_vec()),
            public_key: None,
        });
    }
    let (Some(spec), Some(purpose)) = (asymmetric_spec(spec), purpose(usage)) else {
        return Err(KmsError::internal(format!(
            "no key material for {spec} with {usage}"
        )));
    };
    let pair = crypto::generate(spec, purpose).map_err(KmsError::internal)?;
    Ok(NewMaterial {
        secret: pair.private_key_pkcs8,
        public_key: Some(pair.public_key_der),
    })
}

/// The unwrapped, parsed secret of an asymmetric or HMAC key (kept in the key cache; every part
/// zeroizes its memory when dropped).
pub(crate) enum KeySecret {
    Asymmetric(AsymmetricPrivateKey),
    Hmac(HmacKeyMaterial),
}

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySecret::Asymmetric(k) => write!(f, "{k:?}"),
            KeySecret::Hmac(k) => write!(f, "{k:?}"),
        }
    }
}

/// Parses an unwrapped secret of `record`; `stored_public` (if recorded) must match the key.
pub(crate) fn load(
    record: &KeyRecord,
    secret: SecretBytes,
    stored_public: Option<&[u8]>,
) -> Result<KeySecret, String> {
    if let Some(mac) = mac_algorithm(record.key_spec) {
        return HmacKeyMaterial::from_secret(crypto_mac(mac), secret)
            .map(KeySecret::Hmac)
            .map_err(|e| e.to_string());
    }
    let (Some(spec), Some(purpose)) = (asymmetric_spec(record.key_spec), purpose(record.key_usage))
    else {
        return Err(format!(
            "{} with {} has no loadable key material",
            record.key_spec, record.key_usage
        ));
    };
    let key =
        AsymmetricPrivateKey::from_pkcs8(spec, purpose, &secret).map_err(|e| e.to_string())?;
    if stored_public.is_some_and(|p| p != key.public_key_der()) {
        return Err("the stored public key does not belong to the private key".to_owned());
    }
    Ok(KeySecret::Asymmetric(key))
}

/// `SigningAlgorithms` of KeyMetadata/GetPublicKey (SIGN_VERIFY keys).
pub(crate) fn signing_algorithms(spec: KeySpec, usage: KeyUsage) -> Option<Vec<SigningAlgorithm>> {
    let spec = asymmetric_spec(spec).filter(|_| usage == KeyUsage::SignVerify)?;
    Some(
        spec.signing_algorithms()
            .iter()
            .map(|a| kms_signing(*a))
            .collect(),
    )
}

/// `EncryptionAlgorithms` of KeyMetadata/GetPublicKey (ENCRYPT_DECRYPT keys).
pub(crate) fn encryption_algorithms(
    spec: KeySpec,
    usage: KeyUsage,
) -> Option<Vec<EncryptionAlgorithm>> {
    if usage != KeyUsage::EncryptDecrypt {
        return None;
    }
    match spec {
        KeySpec::SymmetricDefault => Some(vec![EncryptionAlgorithm::SymmetricDefault]),
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => Some(vec![
            EncryptionAlgorithm::RsaesOaepSha1,
            EncryptionAlgorithm::RsaesOaepSha256,
        ]),
        _ => None,
    }
}

/// `MacAlgorithms` of KeyMetadata (HMAC keys).
pub(crate) fn mac_algorithms(spec: KeySpec) -> Option<Vec<MacAlgorithm>> {
    mac_algorithm(spec).map(|a| vec![a])
}

/// `KeyAgreementAlgorithms` of KeyMetadata/GetPublicKey (KEY_AGREEMENT keys).
pub(crate) fn key_agreement_algorithms(usage: KeyUsage) -> Option<Vec<KeyAgreementAlgorithm>> {
    (usage == KeyUsage::KeyAgreement).then(|| vec![KeyAgreementAlgorithm::Ecdh])
}

/// `<key-arn> key usage is <USAGE> which is not valid for <Operation>.` unless the key has
/// `usage`.
pub(crate) fn require_usage(
    record: &KeyRecord,
    arn: &str,
    usage: KeyUsage,
    operation: &str,
) -> Result<(), KmsError> {
    if record.key_usage == usage {
        Ok(())
    } else {
        Err(KmsError::InvalidKeyUsage(format!(
            "{arn} key usage is {} which is not valid for {operation}.",
            record.key_usage
        )))
    }
}

/// `Algorithm <alg> is incompatible with key spec <spec>.` (observed for HMAC keys and for
/// `SYMMETRIC_DEFAULT` on RSA keys; Tresor uses the same text for signing algorithms).
pub(crate) fn incompatible(algorithm: &str, spec: KeySpec) -> KmsError {
    KmsError::InvalidKeyUsage(format!(
        "Algorithm {algorithm} is incompatible with key spec {spec}."
    ))
}

/// The checks Sign and Verify share, in order: the key's usage, the algorithm against the key
/// spec, the message type against the algorithm, and a digest's length.
pub(crate) fn check_signing(
    record: &KeyRecord,
    arn: &str,
    operation: &str,
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message_len: usize,
) -> Result<crypto::SigningAlgorithm, KmsError> {
    require_usage(record, arn, KeyUsage::SignVerify, operation)?;
    let spec = asymmetric_spec(record.key_spec);
    // AWS-DEVIATION (unverified text): AWS's HMAC/encryption wording, assumed for signing too.
    let crypto_alg = crypto_signing(algorithm)
        .filter(|a| spec.is_some_and(|s| s.signing_algorithms().contains(a)))
        .ok_or_else(|| incompatible(algorithm.as_str(), record.key_spec))?;
    match message_type {
        MessageType::Raw if !crypto_alg.accepts_raw() => {
            // AWS-DEVIATION (unverified text): ED25519_PH_SHA_512 signs digests only.
            Err(KmsError::validation_plain(format!(
                "MessageType RAW is not valid for signing algorithm {algorithm}. Use MessageType DIGEST."
            )))
        }
        MessageType::Raw => Ok(crypto_alg),
        MessageType::Digest => match crypto_alg.digest_len() {
            Some(n) if n == message_len => Ok(crypto_alg),
            Some(_) => Err(KmsError::validation_plain(format!(
                "Digest is invalid length for algorithm {algorithm}."
            ))),
            // AWS-DEVIATION (unverified text): ED25519_SHA_512 and ML_DSA_SHAKE_256 take no digest.
            None => Err(KmsError::validation_plain(format!(
                "MessageType DIGEST is not valid for signing algorithm {algorithm}."
            ))),
        },
        MessageType::ExternalMu if crypto_alg == crypto::SigningAlgorithm::MlDsaShake256 => {
            // AWS-DEVIATION: aws-lc-rs has no external-mu ML-DSA, so EXTERNAL_MU is not supported.
            Err(KmsError::UnsupportedOperation(
                "MessageType EXTERNAL_MU is not supported by this server.".to_owned(),
            ))
        }
        // AWS-DEVIATION (unverified text).
        MessageType::ExternalMu => Err(KmsError::validation_plain(format!(
            "MessageType EXTERNAL_MU is not valid for signing algorithm {algorithm}."
        ))),
    }
}

/// The checks GenerateMac and VerifyMac share: the key's usage, then the algorithm against the
/// key spec (`Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224.`).
pub(crate) fn check_mac(
    record: &KeyRecord,
    arn: &str,
    operation: &str,
    algorithm: MacAlgorithm,
) -> Result<(), KmsError> {
    require_usage(record, arn, KeyUsage::GenerateVerifyMac, operation)?;
    if mac_algorithm(record.key_spec) != Some(algorithm) {
        return Err(incompatible(algorithm.as_str(), record.key_spec));
    }
    Ok(())
}

/// `Message` of Sign/Verify/GenerateMac/VerifyMac: 1–4096 bytes (also for in-process callers).
pub(crate) fn check_message_len(len: usize) -> Result<(), KmsError> {
    if len == 0 {
        return Err(KmsError::validation(
            "Value at 'message' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    if len > 4096 {
        return Err(KmsError::validation(
            "Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::MaterialRecord;

    #[test]
    fn material_records_stay_compatible() {
        // Records written before asymmetric keys existed have no `public_key`, and symmetric
        // material still serialises without it.
        let old = r#"{"id":"0000000000000000000000000000000000000000000000000000000000000000","wrapped":"AQID","created":1.5}"#;
        let m: MaterialRecord = serde_json::from_str(old).unwrap();
        assert_eq!(m.public_key, None);
        assert!(!serde_json::to_string(&m).unwrap().contains("public_key"));
        let with = MaterialRecord {
            public_key: Some(vec![0x30, 1, 2]),
            ..m
        };
        let text = serde_json::to_string(&with).unwrap();
        assert!(text.contains(r#""public_key":"MAEC""#), "{text}");
        let back: MaterialRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, with);
    }

    #[test]
    fn generated_material_loads_and_a_foreign_public_key_is_refused() {
        let mut record: KeyRecord = serde_json::from_value(serde_json::json!({
            "format": 1, "key_id": "1234abcd-12ab-34cd-56ef-1234567890ab",
            "account": "111122223333", "region": "us-east-1", "created": 0.0,
            "description": "", "key_spec": "ECC_NIST_P256", "key_usage": "SIGN_VERIFY",
            "origin": "AWS_KMS", "key_manager": "CUSTOMER", "state": "Enabled",
            "policy": "{}", "materials": []
        }))
        .unwrap();
        let a = generate(KeySpec::EccNistP256, KeyUsage::SignVerify).unwrap();
        let b = generate(KeySpec::EccNistP256, KeyUsage::SignVerify).unwrap();
        let ok = load(&record, a.secret.clone(), a.public_key.as_deref()).unwrap();
        assert!(matches!(ok, KeySecret::Asymmetric(_)));
        assert!(!format!("{ok:?}").contains(&format!("{:?}", a.secret.expose())));
        assert!(load(&record, a.secret.clone(), b.public_key.as_deref()).is_err());
        // The same PKCS#8 loads for key agreement; an HMAC secret does not load as a key pair.
        record.key_usage = KeyUsage::KeyAgreement;
        assert!(load(&record, a.secret.clone(), a.public_key.as_deref()).is_ok());
        let h = generate(KeySpec::Hmac384, KeyUsage::GenerateVerifyMac).unwrap();
        assert_eq!(h.secret.len(), 48);
        assert!(load(&record, h.secret.clone(), None).is_err());
        record.key_spec = KeySpec::Hmac384;
        record.key_usage = KeyUsage::GenerateVerifyMac;
        assert!(matches!(
            load(&record, h.secret, None).unwrap(),
            KeySecret::Hmac(_)
        ));
    }

    #[test]
    fn every_asymmetric_spec_maps_and_lists_its_algorithms() {
        for spec in KeySpec::ALL {
            let asym = asymmetric_spec(*spec).is_some();
            let hmac = mac_algorithm(*spec).is_some();
            assert!(!(asym && hmac));
            assert_eq!(
                signing_algorithms(*spec, KeyUsage::SignVerify).is_some(),
                asym,
                "{spec}"
            );
        }
        assert_eq!(
            signing_algorithms(KeySpec::EccNistEdwards25519, KeyUsage::SignVerify),
            Some(vec![
                SigningAlgorithm::Ed25519Sha512,
                SigningAlgorithm::Ed25519PhSha512
            ])
        );
        assert_eq!(
            encryption_algorithms(KeySpec::Rsa3072, KeyUsage::EncryptDecrypt),
            Some(vec![
                EncryptionAlgorithm::RsaesOaepSha1,
                EncryptionAlgorithm::RsaesOaepSha256
            ])
        );
        assert_eq!(
            encryption_algorithms(KeySpec::Rsa3072, KeyUsage::SignVerify),
            None
        );
        for alg in SigningAlgorithm::ALL {
            if let Some(c) = crypto_signing(*alg) {
                assert_eq!(kms_signing(c), *alg);
            }
        }
        for spec in DataKeyPairSpec::ALL {
            assert_eq!(
                data_key_pair_spec(*spec).is_none(),
                *spec == DataKeyPairSpec::Sm2
            );
        }
    }
}
