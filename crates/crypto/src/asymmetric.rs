//! Asymmetric KMS keys (RSA, NIST and SECG elliptic curves, Ed25519, ML-DSA): key generation,
//! the PKCS#8 form they are stored in (wrapped under the root key by the caller), public keys
//! (DER `SubjectPublicKeyInfo`), signing and verification with every AWS KMS signing algorithm,
//! RSAES-OAEP and ECDH.
//!
//! * Signatures are what AWS KMS returns: RSA as the raw PKCS#1 signature, ECDSA DER-encoded
//!   (X9.62 / RFC 3279), Ed25519 and ML-DSA as their fixed-length encodings.
//! * `RSASSA_PSS_*` uses MGF1 with the same hash and a salt as long as the hash.
//! * `RSAES_OAEP_*` uses MGF1 with the same hash and an empty label.
//! * Every private key lives inside aws-lc-rs key objects (freed with `OPENSSL_free`, which
//!   clears the memory) or in zeroizing buffers; `Debug` never shows key material.

use std::fmt;

use aws_lc_rs::agreement;
use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _, PqdsaKeyPair,
    PqdsaSigningAlgorithm, RsaEncoding, RsaKeyPair, UnparsedPublicKey, VerificationAlgorithm,
};
use zeroize::Zeroizing;

use crate::{CryptoError, SecretBytes, ed25519ph};

/// The asymmetric key specs Tresor implements (AWS `KeySpec` / `KeyPairSpec` names in the docs
/// of each variant).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum AsymmetricKeySpec {
    /// `RSA_2048`
    Rsa2048,
    /// `RSA_3072`
    Rsa3072,
    /// `RSA_4096`
    Rsa4096,
    /// `ECC_NIST_P256` (secp256r1)
    EccNistP256,
    /// `ECC_NIST_P384` (secp384r1)
    EccNistP384,
    /// `ECC_NIST_P521` (secp521r1)
    EccNistP521,
    /// `ECC_SECG_P256K1` (secp256k1)
    EccSecgP256k1,
    /// `ECC_NIST_EDWARDS25519` (Ed25519)
    EccNistEdwards25519,
    /// `ML_DSA_44`
    MlDsa44,
    /// `ML_DSA_65`
    MlDsa65,
    /// `ML_DSA_87`
    MlDsa87,
}

/// What an asymmetric key is for (AWS `KeyUsage` minus the symmetric and HMAC usages).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum KeyPurpose {
    /// `SIGN_VERIFY`
    Signing,
    /// `ENCRYPT_DECRYPT` (RSA only)
    Encryption,
    /// `KEY_AGREEMENT` (NIST curves only)
    KeyAgreement,
}

/// AWS KMS signing algorithms (`SM2DSA` excepted).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum SigningAlgorithm {
    RsassaPssSha256,
    RsassaPssSha384,
    RsassaPssSha512,
    RsassaPkcs1V15Sha256,
    RsassaPkcs1V15Sha384,
    RsassaPkcs1V15Sha512,
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
    Ed25519Sha512,
    Ed25519PhSha512,
    MlDsaShake256,
}

/// What the caller hands to [`AsymmetricPrivateKey::sign`] and [`verify`].
#[derive(Clone, Copy, Debug)]
pub enum Message<'a> {
    /// The message itself (`MessageType: RAW`); it is hashed as part of the algorithm.
    Raw(&'a [u8]),
    /// Its digest (`MessageType: DIGEST`), exactly [`SigningAlgorithm::digest_len`] bytes.
    Digest(&'a [u8]),
}

/// The hash of an `RSAES_OAEP_*` algorithm (MGF1 uses the same hash; the label is empty).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum OaepHash {
    /// `RSAES_OAEP_SHA_1`
    Sha1,
    /// `RSAES_OAEP_SHA_256`
    Sha256,
}

impl OaepHash {
    fn algorithm(self) -> &'static OaepAlgorithm {
        match self {
            OaepHash::Sha1 => &OAEP_SHA1_MGF1SHA1,
            OaepHash::Sha256 => &OAEP_SHA256_MGF1SHA256,
        }
    }
}

impl AsymmetricKeySpec {
    fn rsa_size(self) -> Option<KeySize> {
        match self {
            AsymmetricKeySpec::Rsa2048 => Some(KeySize::Rsa2048),
            AsymmetricKeySpec::Rsa3072 => Some(KeySize::Rsa3072),
            AsymmetricKeySpec::Rsa4096 => Some(KeySize::Rsa4096),
            _ => None,
        }
    }

    /// The modulus length in bits of an RSA spec.
    fn rsa_bits(self) -> Option<usize> {
        match self {
            AsymmetricKeySpec::Rsa2048 => Some(2048),
            AsymmetricKeySpec::Rsa3072 => Some(3072),
            AsymmetricKeySpec::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// The ECDSA algorithm a key of this curve signs with (its only KMS algorithm).
    fn ecdsa_signing(self) -> Option<&'static EcdsaSigningAlgorithm> {
        match self {
            AsymmetricKeySpec::EccNistP256 => Some(&sig::ECDSA_P256_SHA256_ASN1_SIGNING),
            AsymmetricKeySpec::EccNistP384 => Some(&sig::ECDSA_P384_SHA384_ASN1_SIGNING),
            AsymmetricKeySpec::EccNistP521 => Some(&sig::ECDSA_P521_SHA512_ASN1_SIGNING),
            AsymmetricKeySpec::EccSecgP256k1 => Some(&sig::ECDSA_P256K1_SHA256_ASN1_SIGNING),
            _ => None,
        }
    }

    fn ecdh(self) -> Option<&'static agreement::Algorithm> {
        match self {
            AsymmetricKeySpec::EccNistP256 => Some(&agreement::ECDH_P256),
            AsymmetricKeySpec::EccNistP384 => Some(&agreement::ECDH_P384),
            AsymmetricKeySpec::EccNistP521 => Some(&agreement::ECDH_P521),
            _ => None,
        }
    }

    fn ml_dsa(self) -> Option<&'static PqdsaSigningAlgorithm> {
        match self {
            AsymmetricKeySpec::MlDsa44 => Some(&sig::ML_DSA_44_SIGNING),
            AsymmetricKeySpec::MlDsa65 => Some(&sig::ML_DSA_65_SIGNING),
            AsymmetricKeySpec::MlDsa87 => Some(&sig::ML_DSA_87_SIGNING),
            _ => None,
        }
    }

    /// Whether keys of this spec can be used for `purpose` (AWS's KeySpec × KeyUsage table).
    pub fn supports(self, purpose: KeyPurpose) -> bool {
        match purpose {
            KeyPurpose::Signing => true,
            KeyPurpose::Encryption => self.rsa_size().is_some(),
            KeyPurpose::KeyAgreement => self.ecdh().is_some(),
        }
    }

    /// The signing algorithms of a `SIGN_VERIFY` key of this spec, in AWS's listing order.
    pub fn signing_algorithms(self) -> &'static [SigningAlgorithm] {
        use SigningAlgorithm as A;
        match self {
            AsymmetricKeySpec::Rsa2048
            | AsymmetricKeySpec::Rsa3072
            | AsymmetricKeySpec::Rsa4096 => &[
                A::RsassaPkcs1V15Sha256,
                A::RsassaPkcs1V15Sha384,
                A::RsassaPkcs1V15Sha512,
                A::RsassaPssSha256,
                A::RsassaPssSha384,
                A::RsassaPssSha512,
            ],
            AsymmetricKeySpec::EccNistP256 | AsymmetricKeySpec::EccSecgP256k1 => &[A::EcdsaSha256],
            AsymmetricKeySpec::EccNistP384 => &[A::EcdsaSha384],
            AsymmetricKeySpec::EccNistP521 => &[A::EcdsaSha512],
            AsymmetricKeySpec::EccNistEdwards25519 => &[A::Ed25519Sha512, A::Ed25519PhSha512],
            AsymmetricKeySpec::MlDsa44
            | AsymmetricKeySpec::MlDsa65
            | AsymmetricKeySpec::MlDsa87 => &[A::MlDsaShake256],
        }
    }

    /// The largest plaintext `RSAES_OAEP_*` can encrypt under a key of this spec (`None` for
    /// non-RSA specs): the modulus length minus `2 * hash length + 2`.
    pub fn oaep_max_plaintext(self, hash: OaepHash) -> Option<usize> {
        let modulus = self.rsa_bits()? / 8;
        let h = match hash {
            OaepHash::Sha1 => 20,
            OaepHash::Sha256 => 32,
        };
        modulus.checked_sub(2 * h + 2)
    }
}

impl SigningAlgorithm {
    /// The length a `DIGEST` message must have; `None` where `DIGEST` is not accepted
    /// (`ED25519_SHA_512` signs raw messages only, `ML_DSA_SHAKE_256` has no prehash form).
    pub fn digest_len(self) -> Option<usize> {
        use SigningAlgorithm as A;
        match self {
            A::RsassaPssSha256 | A::RsassaPkcs1V15Sha256 | A::EcdsaSha256 => Some(32),
            A::RsassaPssSha384 | A::RsassaPkcs1V15Sha384 | A::EcdsaSha384 => Some(48),
            A::RsassaPssSha512 | A::RsassaPkcs1V15Sha512 | A::EcdsaSha512 => Some(64),
            A::Ed25519PhSha512 => Some(ed25519ph::PREHASH_LEN),
            A::Ed25519Sha512 | A::MlDsaShake256 => None,
        }
    }

    /// Whether the algorithm accepts a raw message (`ED25519_PH_SHA_512` takes digests only).
    pub fn accepts_raw(self) -> bool {
        self != SigningAlgorithm::Ed25519PhSha512
    }

    fn digest_algorithm(self) -> Option<&'static digest::Algorithm> {
        match self.digest_len()? {
            32 => Some(&digest::SHA256),
            48 => Some(&digest::SHA384),
            64 => Some(&digest::SHA512),
            _ => None,
        }
    }

    fn rsa_signing(self) -> Option<&'static dyn RsaEncoding> {
        use SigningAlgorithm as A;
        Some(match self {
            A::RsassaPssSha256 => &sig::RSA_PSS_SHA256,
            A::RsassaPssSha384 => &sig::RSA_PSS_SHA384,
            A::RsassaPssSha512 => &sig::RSA_PSS_SHA512,
            A::RsassaPkcs1V15Sha256 => &sig::RSA_PKCS1_SHA256,
            A::RsassaPkcs1V15Sha384 => &sig::RSA_PKCS1_SHA384,
            A::RsassaPkcs1V15Sha512 => &sig::RSA_PKCS1_SHA512,
            _ => return None,
        })
    }

    fn verification(self, spec: AsymmetricKeySpec) -> Option<&'static dyn VerificationAlgorithm> {
        use AsymmetricKeySpec as S;
        use SigningAlgorithm as A;
        if !spec.signing_algorithms().contains(&self) {
            return None;
        }
        Some(match (self, spec) {
            (A::RsassaPssSha256, _) => &sig::RSA_PSS_2048_8192_SHA256,
            (A::RsassaPssSha384, _) => &sig::RSA_PSS_2048_8192_SHA384,
            (A::RsassaPssSha512, _) => &sig::RSA_PSS_2048_8192_SHA512,
            (A::RsassaPkcs1V15Sha256, _) => &sig::RSA_PKCS1_2048_8192_SHA256,
            (A::RsassaPkcs1V15Sha384, _) => &sig::RSA_PKCS1_2048_8192_SHA384,
            (A::RsassaPkcs1V15Sha512, _) => &sig::RSA_PKCS1_2048_8192_SHA512,
            (A::EcdsaSha256, S::EccSecgP256k1) => &sig::ECDSA_P256K1_SHA256_ASN1,
            (A::EcdsaSha256, _) => &sig::ECDSA_P256_SHA256_ASN1,
            (A::EcdsaSha384, _) => &sig::ECDSA_P384_SHA384_ASN1,
            (A::EcdsaSha512, _) => &sig::ECDSA_P521_SHA512_ASN1,
            (A::Ed25519Sha512, _) => &sig::ED25519,
            (A::MlDsaShake256, S::MlDsa44) => &sig::ML_DSA_44,
            (A::MlDsaShake256, S::MlDsa65) => &sig::ML_DSA_65,
            (A::MlDsaShake256, _) => &sig::ML_DSA_87,
            (A::Ed25519PhSha512, _) => return None,
        })
    }
}

/// A freshly generated key pair: the private key as PKCS#8 DER (secret) and the public key as
/// DER `SubjectPublicKeyInfo`.
pub struct GeneratedKeyPair {
    pub private_key_pkcs8: SecretBytes,
    pub public_key_der: Vec<u8>,
}

impl fmt::Debug for GeneratedKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GeneratedKeyPair(private [REDACTED; {}], public {} bytes)",
            self.private_key_pkcs8.len(),
            self.public_key_der.len()
        )
    }
}

fn internal<E>(_: E) -> CryptoError {
    CryptoError::Internal
}

fn bad<E>(_: E) -> CryptoError {
    CryptoError::InvalidKeyMaterial
}

fn secret_of(doc: impl AsRef<[u8]>) -> SecretBytes {
    SecretBytes::new(doc.as_ref().to_vec())
}

/// Generates a key pair of `spec` (PKCS#8 v1, named-curve EC keys). RSA generation is slow
/// (up to seconds for 4096 bits): callers on an async runtime run it on a blocking thread.
///
/// The same PKCS#8 serves every purpose the spec supports (`GenerateDataKeyPair` hands it out
/// as is); `purpose` only decides whether the spec may be used at all.
pub fn generate(
    spec: AsymmetricKeySpec,
    purpose: KeyPurpose,
) -> Result<GeneratedKeyPair, CryptoError> {
    if !spec.supports(purpose) {
        return Err(CryptoError::Internal);
    }
    if let Some(size) = spec.rsa_size() {
        let pair = RsaKeyPair::generate(size).map_err(internal)?;
        let pkcs8 = pair.as_der().map_err(internal)?;
        let public = pair.public_key().as_der().map_err(internal)?;
        return Ok(GeneratedKeyPair {
            private_key_pkcs8: secret_of(pkcs8.as_ref()),
            public_key_der: public.as_ref().to_vec(),
        });
    }
    if let Some(alg) = spec.ecdsa_signing() {
        let pair = EcdsaKeyPair::generate(alg).map_err(internal)?;
        let pkcs8 = pair.to_pkcs8v1().map_err(internal)?;
        let public = pair.public_key().as_der().map_err(internal)?;
        return Ok(GeneratedKeyPair {
            private_key_pkcs8: secret_of(pkcs8),
            public_key_der: public.as_ref().to_vec(),
        });
    }
    if let Some(alg) = spec.ml_dsa() {
        let pair = PqdsaKeyPair::generate(alg).map_err(internal)?;
        let pkcs8 = pair.to_pkcs8v1().map_err(internal)?;
        let public = pair.public_key().as_der().map_err(internal)?;
        return Ok(GeneratedKeyPair {
            private_key_pkcs8: secret_of(pkcs8),
            public_key_der: public.as_ref().to_vec(),
        });
    }
    // ECC_NIST_EDWARDS25519
    let pair = Ed25519KeyPair::generate().map_err(internal)?;
    let pkcs8 = pair.to_pkcs8v1().map_err(internal)?;
    let public = pair.public_key().as_der().map_err(internal)?;
    Ok(GeneratedKeyPair {
        private_key_pkcs8: secret_of(pkcs8),
        public_key_der: public.as_ref().to_vec(),
    })
}

/// A loaded asymmetric private key, ready for its purpose.
pub struct AsymmetricPrivateKey {
    spec: AsymmetricKeySpec,
    purpose: KeyPurpose,
    public_key_der: Vec<u8>,
    inner: Inner,
}

enum Inner {
    RsaSign(RsaKeyPair),
    RsaDecrypt {
        private: OaepPrivateDecryptingKey,
        public: OaepPublicEncryptingKey,
    },
    Ecdsa(EcdsaKeyPair),
    Ecdh(agreement::PrivateKey),
    Ed25519 {
        pair: Ed25519KeyPair,
        /// The 32-byte seed, for Ed25519ph (which aws-lc-rs does not implement).
        seed: Zeroizing<[u8; 32]>,
    },
    MlDsa(PqdsaKeyPair),
}

impl fmt::Debug for AsymmetricPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AsymmetricPrivateKey({:?}, {:?}, [REDACTED])",
            self.spec, self.purpose
        )
    }
}

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410): the 32-byte seed follows.
const ED25519_PKCS8_V1_PREFIX: &[u8] = &[
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// `SubjectPublicKeyInfo` prefix of an Ed25519 public key: the 32-byte key follows.
const ED25519_SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn ed25519_seed(pkcs8: &[u8], pair: &Ed25519KeyPair) -> Option<Zeroizing<[u8; 32]>> {
    let seed: &[u8; 32] = pkcs8
        .strip_prefix(ED25519_PKCS8_V1_PREFIX)?
        .try_into()
        .ok()?;
    let seed = Zeroizing::new(*seed);
    // The seed must be the one aws-lc-rs parsed (same public key).
    let check = Ed25519KeyPair::from_seed_unchecked(seed.as_slice()).ok()?;
    crate::ct_eq(check.public_key().as_ref(), pair.public_key().as_ref()).then_some(seed)
}

fn ed25519_raw_public(spki: &[u8]) -> Option<&[u8]> {
    let raw = spki.strip_prefix(ED25519_SPKI_PREFIX)?;
    (raw.len() == 32).then_some(raw)
}

impl AsymmetricPrivateKey {
    /// Loads a private key stored by [`generate`]. A document that is not a key of `spec`, or
    /// a spec that does not support `purpose`, is [`CryptoError::InvalidKeyMaterial`].
    pub fn from_pkcs8(
        spec: AsymmetricKeySpec,
        purpose: KeyPurpose,
        pkcs8: &SecretBytes,
    ) -> Result<AsymmetricPrivateKey, CryptoError> {
        if !spec.supports(purpose) {
            return Err(CryptoError::InvalidKeyMaterial);
        }
        let der = pkcs8.expose();
        let (inner, public): (Inner, Vec<u8>) = if let Some(bits) = spec.rsa_bits() {
            if purpose == KeyPurpose::Encryption {
                let key = PrivateDecryptingKey::from_pkcs8(der).map_err(bad)?;
                if key.key_size_bits() != bits {
                    return Err(CryptoError::InvalidKeyMaterial);
                }
                let public_key = key.public_key();
                let public = public_key.as_der().map_err(bad)?.as_ref().to_vec();
                let private = OaepPrivateDecryptingKey::new(key).map_err(bad)?;
                let public_oaep = OaepPublicEncryptingKey::new(public_key).map_err(bad)?;
                (
                    Inner::RsaDecrypt {
                        private,
                        public: public_oaep,
                    },
                    public,
                )
            } else {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(bad)?;
                if pair.public_modulus_len().saturating_mul(8) != bits {
                    return Err(CryptoError::InvalidKeyMaterial);
                }
                let public = pair.public_key().as_der().map_err(bad)?.as_ref().to_vec();
                (Inner::RsaSign(pair), public)
            }
        } else if let (KeyPurpose::KeyAgreement, Some(alg)) = (purpose, spec.ecdh()) {
            let key = agreement::PrivateKey::from_private_key_der(alg, der).map_err(bad)?;
            let public = key
                .compute_public_key()
                .map_err(bad)?
                .as_der()
                .map_err(bad)?
                .as_ref()
                .to_vec();
            (Inner::Ecdh(key), public)
        } else if let Some(alg) = spec.ecdsa_signing() {
            let pair = EcdsaKeyPair::from_pkcs8(alg, der).map_err(bad)?;
            let public = pair.public_key().as_der().map_err(bad)?.as_ref().to_vec();
            (Inner::Ecdsa(pair), public)
        } else if let Some(alg) = spec.ml_dsa() {
            let pair = PqdsaKeyPair::from_pkcs8(alg, der).map_err(bad)?;
            let public = pair.public_key().as_der().map_err(bad)?.as_ref().to_vec();
            (Inner::MlDsa(pair), public)
        } else {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(bad)?;
            let seed = ed25519_seed(der, &pair).ok_or(CryptoError::InvalidKeyMaterial)?;
            let public = pair.public_key().as_der().map_err(bad)?.as_ref().to_vec();
            (Inner::Ed25519 { pair, seed }, public)
        };
        Ok(AsymmetricPrivateKey {
            spec,
            purpose,
            public_key_der: public,
            inner,
        })
    }

    pub fn spec(&self) -> AsymmetricKeySpec {
        self.spec
    }

    pub fn purpose(&self) -> KeyPurpose {
        self.purpose
    }

    /// The public key, DER `SubjectPublicKeyInfo` (what `GetPublicKey` returns).
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    /// Signs `message` with `algorithm`. An algorithm the key does not support, a digest of
    /// the wrong length or a message type the algorithm does not take is
    /// [`CryptoError::Internal`] (callers validate requests beforehand).
    pub fn sign(
        &self,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
    ) -> Result<Vec<u8>, CryptoError> {
        if !self.spec.signing_algorithms().contains(&algorithm) {
            return Err(CryptoError::Internal);
        }
        match (&self.inner, message) {
            (Inner::RsaSign(pair), message) => {
                let padding = algorithm.rsa_signing().ok_or(CryptoError::Internal)?;
                let mut out = vec![0u8; pair.public_modulus_len()];
                match message {
                    Message::Raw(m) => pair
                        .sign(padding, &SystemRandom::new(), m, &mut out)
                        .map_err(internal)?,
                    Message::Digest(d) => pair
                        .sign_digest(padding, &import_digest(algorithm, d)?, &mut out)
                        .map_err(internal)?,
                }
                Ok(out)
            }
            (Inner::Ecdsa(pair), Message::Raw(m)) => Ok(pair
                .sign(&SystemRandom::new(), m)
                .map_err(internal)?
                .as_ref()
                .to_vec()),
            (Inner::Ecdsa(pair), Message::Digest(d)) => Ok(pair
                .sign_digest(&import_digest(algorithm, d)?)
                .map_err(internal)?
                .as_ref()
                .to_vec()),
            (Inner::Ed25519 { pair, .. }, Message::Raw(m))
                if algorithm == SigningAlgorithm::Ed25519Sha512 =>
            {
                Ok(pair.try_sign(m).map_err(internal)?.as_ref().to_vec())
            }
            (Inner::Ed25519 { seed, .. }, Message::Digest(d))
                if algorithm == SigningAlgorithm::Ed25519PhSha512 =>
            {
                ed25519ph::sign(seed, d)
                    .map(|s| s.to_vec())
                    .ok_or(CryptoError::Internal)
            }
            (Inner::MlDsa(pair), Message::Raw(m)) => {
                let mut out = vec![0u8; pair.algorithm().signature_len()];
                let n = pair.sign(m, &mut out).map_err(internal)?;
                out.truncate(n);
                Ok(out)
            }
            _ => Err(CryptoError::Internal),
        }
    }

    /// Verifies a signature with this key's public key (see [`verify`]).
    pub fn verify(
        &self,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
        signature: &[u8],
    ) -> bool {
        self.purpose == KeyPurpose::Signing
            && verify(
                self.spec,
                &self.public_key_der,
                algorithm,
                message,
                signature,
            )
    }

    /// RSAES-OAEP decryption. Every failure (wrong length, padding, key) is
    /// [`CryptoError::InvalidCiphertext`].
    pub fn oaep_decrypt(
        &self,
        hash: OaepHash,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let Inner::RsaDecrypt { private, .. } = &self.inner else {
            return Err(CryptoError::InvalidCiphertext);
        };
        if ciphertext.len() != private.key_size_bytes() {
            return Err(CryptoError::InvalidCiphertext);
        }
        let mut buf = Zeroizing::new(vec![0u8; private.min_output_size()]);
        let plaintext = private
            .decrypt(hash.algorithm(), ciphertext, &mut buf, None)
            .map_err(|_| CryptoError::InvalidCiphertext)?;
        Ok(SecretBytes::new(plaintext.to_vec()))
    }

    /// RSAES-OAEP encryption with this key's public key. A plaintext longer than
    /// [`AsymmetricKeySpec::oaep_max_plaintext`] (or empty) is [`CryptoError::Internal`].
    pub fn oaep_encrypt(&self, hash: OaepHash, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let Inner::RsaDecrypt { public, .. } = &self.inner else {
            return Err(CryptoError::Internal);
        };
        oaep_encrypt_with(public, hash, plaintext)
    }

    /// ECDH with the peer's public key, which must be a DER `SubjectPublicKeyInfo` of a point
    /// on this key's curve ([`CryptoError::InvalidKeyMaterial`] otherwise). The shared secret
    /// is the raw x-coordinate (field-size bytes).
    pub fn derive_shared_secret(
        &self,
        peer_public_key_der: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let Inner::Ecdh(key) = &self.inner else {
            return Err(CryptoError::Internal);
        };
        let peer = agreement::UnparsedPublicKey::new(key.algorithm(), peer_public_key_der);
        let parsed = agreement::ParsedPublicKey::try_from(&peer)
            .map_err(|_| CryptoError::InvalidKeyMaterial)?;
        if parsed.format() != agreement::ParsedPublicKeyFormat::X509
            || parsed.alg() != key.algorithm()
        {
            return Err(CryptoError::InvalidKeyMaterial);
        }
        agreement::agree(key, parsed, CryptoError::InvalidKeyMaterial, |secret| {
            Ok(SecretBytes::new(secret.to_vec()))
        })
    }
}

fn import_digest(algorithm: SigningAlgorithm, d: &[u8]) -> Result<Digest, CryptoError> {
    let alg = algorithm.digest_algorithm().ok_or(CryptoError::Internal)?;
    Digest::import_less_safe(d, alg).map_err(|_| CryptoError::Internal)
}

fn oaep_encrypt_with(
    key: &OaepPublicEncryptingKey,
    hash: OaepHash,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if plaintext.is_empty() || plaintext.len() > key.max_plaintext_size(hash.algorithm()) {
        return Err(CryptoError::Internal);
    }
    let mut out = vec![0u8; key.ciphertext_size()];
    let n = key
        .encrypt(hash.algorithm(), plaintext, &mut out, None)
        .map_err(|_| CryptoError::Internal)?
        .len();
    out.truncate(n);
    Ok(out)
}

/// Verifies `signature` over `message` with a DER `SubjectPublicKeyInfo` of `spec` — what any
/// holder of the public key can do outside KMS. `false` for every failure, including an
/// algorithm or message type the spec does not support.
pub fn verify(
    spec: AsymmetricKeySpec,
    public_key_der: &[u8],
    algorithm: SigningAlgorithm,
    message: Message<'_>,
    signature: &[u8],
) -> bool {
    if !spec.signing_algorithms().contains(&algorithm) {
        return false;
    }
    if algorithm == SigningAlgorithm::Ed25519PhSha512 {
        return match (message, ed25519_raw_public(public_key_der)) {
            (Message::Digest(d), Some(raw)) => ed25519ph::verify(raw, d, signature),
            _ => false,
        };
    }
    let Some(verification) = algorithm.verification(spec) else {
        return false;
    };
    let key = UnparsedPublicKey::new(verification, public_key_der);
    match message {
        Message::Raw(m) => key.verify(m, signature).is_ok(),
        Message::Digest(d) => {
            if matches!(
                algorithm,
                SigningAlgorithm::Ed25519Sha512 | SigningAlgorithm::MlDsaShake256
            ) {
                return false;
            }
            match import_digest(algorithm, d) {
                Ok(digest) => key.verify_digest(&digest, signature).is_ok(),
                Err(_) => false,
            }
        }
    }
}

/// RSAES-OAEP encryption for a DER `SubjectPublicKeyInfo` (the client side of asymmetric
/// `Encrypt`; used by tests and tools).
pub fn oaep_encrypt(
    public_key_der: &[u8],
    hash: OaepHash,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let public = PublicEncryptingKey::from_der(public_key_der)
        .map_err(|_| CryptoError::InvalidKeyMaterial)?;
    let key = OaepPublicEncryptingKey::new(public).map_err(|_| CryptoError::Internal)?;
    oaep_encrypt_with(&key, hash, plaintext)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const ALL_SPECS: [AsymmetricKeySpec; 11] = [
        AsymmetricKeySpec::Rsa2048,
        AsymmetricKeySpec::Rsa3072,
        AsymmetricKeySpec::Rsa4096,
        AsymmetricKeySpec::EccNistP256,
        AsymmetricKeySpec::EccNistP384,
        AsymmetricKeySpec::EccNistP521,
        AsymmetricKeySpec::EccSecgP256k1,
        AsymmetricKeySpec::EccNistEdwards25519,
        AsymmetricKeySpec::MlDsa44,
        AsymmetricKeySpec::MlDsa65,
        AsymmetricKeySpec::MlDsa87,
    ];

    fn load(spec: AsymmetricKeySpec, purpose: KeyPurpose) -> AsymmetricPrivateKey {
        let g = generate(spec, purpose).unwrap();
        let k = AsymmetricPrivateKey::from_pkcs8(spec, purpose, &g.private_key_pkcs8).unwrap();
        assert_eq!(k.public_key_der(), g.public_key_der.as_slice(), "{spec:?}");
        k
    }

    fn digest_of(alg: SigningAlgorithm, m: &[u8]) -> Vec<u8> {
        digest::digest(alg.digest_algorithm().unwrap(), m)
            .as_ref()
            .to_vec()
    }

    #[test]
    fn every_spec_signs_and_verifies_with_every_algorithm() {
        for spec in ALL_SPECS {
            let key = load(spec, KeyPurpose::Signing);
            for &alg in spec.signing_algorithms() {
                let m = b"the message";
                if alg.accepts_raw() {
                    let s = key.sign(alg, Message::Raw(m)).unwrap();
                    assert!(key.verify(alg, Message::Raw(m), &s), "{spec:?} {alg:?}");
                    assert!(!key.verify(alg, Message::Raw(b"the messagE"), &s));
                    if alg.digest_len().is_some() {
                        // RAW and DIGEST of the same message are interchangeable.
                        assert!(key.verify(alg, Message::Digest(&digest_of(alg, m)), &s));
                    }
                }
                if alg.digest_len().is_some() {
                    let d = digest_of(alg, m);
                    let s = key.sign(alg, Message::Digest(&d)).unwrap();
                    assert!(key.verify(alg, Message::Digest(&d), &s), "{spec:?} {alg:?}");
                    if alg.accepts_raw() {
                        assert!(key.verify(alg, Message::Raw(m), &s));
                    }
                    let short = &d[..d.len() - 1];
                    assert!(key.sign(alg, Message::Digest(short)).is_err());
                } else {
                    assert!(key.sign(alg, Message::Digest(&[0u8; 32])).is_err());
                }
            }
        }
    }

    #[test]
    fn wrong_algorithms_and_purposes_are_refused() {
        let p256 = load(AsymmetricKeySpec::EccNistP256, KeyPurpose::Signing);
        assert!(
            p256.sign(SigningAlgorithm::EcdsaSha384, Message::Raw(b"m"))
                .is_err()
        );
        assert!(
            p256.sign(SigningAlgorithm::RsassaPssSha256, Message::Raw(b"m"))
                .is_err()
        );
        let ed = load(AsymmetricKeySpec::EccNistEdwards25519, KeyPurpose::Signing);
        assert!(
            ed.sign(SigningAlgorithm::Ed25519PhSha512, Message::Raw(b"m"))
                .is_err()
        );
        assert!(
            ed.sign(SigningAlgorithm::Ed25519Sha512, Message::Digest(&[0u8; 64]))
                .is_err()
        );
        assert!(generate(AsymmetricKeySpec::EccSecgP256k1, KeyPurpose::KeyAgreement).is_err());
        assert!(generate(AsymmetricKeySpec::EccNistP256, KeyPurpose::Encryption).is_err());
        let g = generate(AsymmetricKeySpec::EccNistP256, KeyPurpose::Signing).unwrap();
        // A P-256 document is not a P-384 key, nor an RSA key.
        assert!(
            AsymmetricPrivateKey::from_pkcs8(
                AsymmetricKeySpec::EccNistP384,
                KeyPurpose::Signing,
                &g.private_key_pkcs8
            )
            .is_err()
        );
        assert!(
            AsymmetricPrivateKey::from_pkcs8(
                AsymmetricKeySpec::Rsa2048,
                KeyPurpose::Signing,
                &g.private_key_pkcs8
            )
            .is_err()
        );
        assert!(!format!("{p256:?}").contains(&hex::encode(g.private_key_pkcs8.expose())));
        assert!(format!("{g:?}").contains("REDACTED"));
    }

    #[test]
    fn oaep_round_trip_and_limits() {
        for spec in [AsymmetricKeySpec::Rsa2048, AsymmetricKeySpec::Rsa3072] {
            let key = load(spec, KeyPurpose::Encryption);
            for hash in [OaepHash::Sha1, OaepHash::Sha256] {
                let max = spec.oaep_max_plaintext(hash).unwrap();
                let pt = vec![0x42u8; max];
                let ct = oaep_encrypt(key.public_key_der(), hash, &pt).unwrap();
                assert_eq!(key.oaep_decrypt(hash, &ct).unwrap().expose(), pt.as_slice());
                let ct2 = key.oaep_encrypt(hash, b"x").unwrap();
                assert_eq!(key.oaep_decrypt(hash, &ct2).unwrap().expose(), b"x");
                assert!(key.oaep_encrypt(hash, &vec![0u8; max + 1]).is_err());
                let other = match hash {
                    OaepHash::Sha1 => OaepHash::Sha256,
                    OaepHash::Sha256 => OaepHash::Sha1,
                };
                assert_eq!(
                    key.oaep_decrypt(other, &ct).map(|_| ()),
                    Err(CryptoError::InvalidCiphertext)
                );
                let mut bad = ct.clone();
                bad[10] ^= 1;
                assert!(key.oaep_decrypt(hash, &bad).is_err());
                assert!(key.oaep_decrypt(hash, &ct[1..]).is_err());
            }
        }
        assert_eq!(
            AsymmetricKeySpec::Rsa2048.oaep_max_plaintext(OaepHash::Sha1),
            Some(214)
        );
        assert_eq!(
            AsymmetricKeySpec::Rsa2048.oaep_max_plaintext(OaepHash::Sha256),
            Some(190)
        );
        assert_eq!(
            AsymmetricKeySpec::Rsa3072.oaep_max_plaintext(OaepHash::Sha1),
            Some(342)
        );
        assert_eq!(
            AsymmetricKeySpec::Rsa3072.oaep_max_plaintext(OaepHash::Sha256),
            Some(318)
        );
        assert_eq!(
            AsymmetricKeySpec::Rsa4096.oaep_max_plaintext(OaepHash::Sha1),
            Some(470)
        );
        assert_eq!(
            AsymmetricKeySpec::Rsa4096.oaep_max_plaintext(OaepHash::Sha256),
            Some(446)
        );
    }

    #[test]
    fn ecdh_agrees_and_rejects_bad_peers() {
        for spec in [
            AsymmetricKeySpec::EccNistP256,
            AsymmetricKeySpec::EccNistP384,
            AsymmetricKeySpec::EccNistP521,
        ] {
            let a = load(spec, KeyPurpose::KeyAgreement);
            let b = load(spec, KeyPurpose::KeyAgreement);
            let ab = a.derive_shared_secret(b.public_key_der()).unwrap();
            let ba = b.derive_shared_secret(a.public_key_der()).unwrap();
            assert_eq!(ab.expose(), ba.expose());
            let field = match spec {
                AsymmetricKeySpec::EccNistP256 => 32,
                AsymmetricKeySpec::EccNistP384 => 48,
                _ => 66,
            };
            assert_eq!(ab.len(), field);
            // Garbage, a truncated key, and a key of another curve are refused.
            let pk = a.public_key_der();
            for bad in [&b"nope"[..], &pk[..pk.len() - 1], &[][..]] {
                assert_eq!(
                    b.derive_shared_secret(bad).map(|_| ()),
                    Err(CryptoError::InvalidKeyMaterial)
                );
            }
        }
        let p256 = load(AsymmetricKeySpec::EccNistP256, KeyPurpose::KeyAgreement);
        let p384 = load(AsymmetricKeySpec::EccNistP384, KeyPurpose::KeyAgreement);
        assert!(p256.derive_shared_secret(p384.public_key_der()).is_err());
        // A raw (non-SPKI) point is refused: AWS requires SubjectPublicKeyInfo.
        let spki = p384.public_key_der();
        let raw_point = &spki[spki.len() - 97..];
        assert_eq!(raw_point[0], 4);
        let p384b = load(AsymmetricKeySpec::EccNistP384, KeyPurpose::KeyAgreement);
        assert!(p384b.derive_shared_secret(raw_point).is_err());
        // An RSA key is not a peer.
        let rsa = generate(AsymmetricKeySpec::Rsa2048, KeyPurpose::Signing).unwrap();
        assert!(p256.derive_shared_secret(&rsa.public_key_der).is_err());
    }

    #[test]
    fn ed25519_public_key_is_spki() {
        let k = load(AsymmetricKeySpec::EccNistEdwards25519, KeyPurpose::Signing);
        let raw = ed25519_raw_public(k.public_key_der()).unwrap();
        let Inner::Ed25519 { pair, seed } = &k.inner else {
            panic!()
        };
        assert_eq!(raw, pair.public_key().as_ref());
        assert_eq!(ed25519ph::public_key(seed).as_slice(), raw);
    }
}
