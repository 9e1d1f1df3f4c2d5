//! Imported key material (BYOK): the RSA wrapping key pair of `GetParametersForImport` and the
//! unwrapping of `EncryptedKeyMaterial` exactly as AWS KMS defines it.
//!
//! * `RSAES_OAEP_SHA_1` / `RSAES_OAEP_SHA_256`: the key material is encrypted directly with
//!   RSA-OAEP (MGF1 with the same hash, empty label) — what `openssl pkeyutl -encrypt -pkeyopt
//!   rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256` produces.
//! * `RSA_AES_KEY_WRAP_SHA_1` / `RSA_AES_KEY_WRAP_SHA_256`: a fresh 256-bit AES key is encrypted
//!   with RSA-OAEP and the key material is wrapped under it with AES Key Wrap with Padding
//!   (RFC 5649, `id-aes256-wrap-pad`); the two ciphertexts are concatenated (RSA part first).
//!
//! The private half never leaves this module unprotected: it is handed out only as PKCS#8
//! [`SecretBytes`] (zeroized on drop) for wrapping under the root key. Every unwrapping failure
//! is the single opaque [`CryptoError::InvalidCiphertext`].

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use zeroize::Zeroizing;

use crate::{CryptoError, SecretBytes, random_bytes};

/// Length of the ephemeral AES key of the `RSA_AES_KEY_WRAP_*` algorithms.
const EPHEMERAL_KEY_LEN: usize = 32;

/// AWS `WrappingAlgorithm` values Tresor supports.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ImportWrapping {
    RsaesOaepSha1,
    RsaesOaepSha256,
    RsaAesKeyWrapSha1,
    RsaAesKeyWrapSha256,
}

impl ImportWrapping {
    fn oaep(self) -> &'static OaepAlgorithm {
        match self {
            ImportWrapping::RsaesOaepSha1 | ImportWrapping::RsaAesKeyWrapSha1 => {
                &OAEP_SHA1_MGF1SHA1
            }
            ImportWrapping::RsaesOaepSha256 | ImportWrapping::RsaAesKeyWrapSha256 => {
                &OAEP_SHA256_MGF1SHA256
            }
        }
    }

    fn hybrid(self) -> bool {
        matches!(
            self,
            ImportWrapping::RsaAesKeyWrapSha1 | ImportWrapping::RsaAesKeyWrapSha256
        )
    }
}

/// AWS `WrappingKeySpec` values Tresor supports (RSA only; `SM2` is China-only).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum WrappingKeySize {
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl WrappingKeySize {
    fn key_size(self) -> KeySize {
        match self {
            WrappingKeySize::Rsa2048 => KeySize::Rsa2048,
            WrappingKeySize::Rsa3072 => KeySize::Rsa3072,
            WrappingKeySize::Rsa4096 => KeySize::Rsa4096,
        }
    }

    /// The modulus length in bits.
    pub fn bits(self) -> usize {
        match self {
            WrappingKeySize::Rsa2048 => 2048,
            WrappingKeySize::Rsa3072 => 3072,
            WrappingKeySize::Rsa4096 => 4096,
        }
    }
}

/// The private half of an import wrapping key pair.
pub struct ImportWrappingKey {
    key: PrivateDecryptingKey,
}

impl fmt::Debug for ImportWrappingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ImportWrappingKey([REDACTED; {} bits])",
            self.key.key_size_bits()
        )
    }
}

impl ImportWrappingKey {
    /// A fresh RSA key pair. Slow (tens to hundreds of milliseconds for 4096 bits): callers on
    /// an async runtime run it on a blocking thread.
    pub fn generate(size: WrappingKeySize) -> Result<ImportWrappingKey, CryptoError> {
        let key =
            PrivateDecryptingKey::generate(size.key_size()).map_err(|_| CryptoError::Internal)?;
        Ok(ImportWrappingKey { key })
    }

    /// Restores a key from [`ImportWrappingKey::to_pkcs8`].
    pub fn from_pkcs8(pkcs8: &SecretBytes) -> Result<ImportWrappingKey, CryptoError> {
        let key = PrivateDecryptingKey::from_pkcs8(pkcs8.expose())
            .map_err(|_| CryptoError::InvalidKeyMaterial)?;
        Ok(ImportWrappingKey { key })
    }

    /// The private key as PKCS#8 DER (secret; zeroized on drop).
    pub fn to_pkcs8(&self) -> Result<SecretBytes, CryptoError> {
        let der = self.key.as_der().map_err(|_| CryptoError::Internal)?;
        Ok(SecretBytes::new(der.as_ref().to_vec()))
    }

    /// The public key as DER `SubjectPublicKeyInfo` (what `GetParametersForImport` returns).
    pub fn public_key_der(&self) -> Result<Vec<u8>, CryptoError> {
        let der = self
            .key
            .public_key()
            .as_der()
            .map_err(|_| CryptoError::Internal)?;
        Ok(der.as_ref().to_vec())
    }

    /// Recovers key material wrapped with the public key under `wrapping`.
    pub fn unwrap_material(
        &self,
        wrapping: ImportWrapping,
        encrypted: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let oaep =
            OaepPrivateDecryptingKey::new(self.key.clone()).map_err(|_| CryptoError::Internal)?;
        let rsa_len = oaep.key_size_bytes();
        let (rsa_part, kwp_part) = if wrapping.hybrid() {
            encrypted
                .split_at_checked(rsa_len)
                .ok_or(CryptoError::InvalidCiphertext)?
        } else {
            (encrypted, &[][..])
        };
        if rsa_part.len() != rsa_len {
            return Err(CryptoError::InvalidCiphertext);
        }
        let mut buf = Zeroizing::new(vec![0u8; oaep.min_output_size().max(rsa_len)]);
        let first = oaep
            .decrypt(wrapping.oaep(), rsa_part, &mut buf, None)
            .map_err(|_| CryptoError::InvalidCiphertext)?;
        if !wrapping.hybrid() {
            return Ok(SecretBytes::new(first.to_vec()));
        }
        if first.len() != EPHEMERAL_KEY_LEN || kwp_part.is_empty() {
            return Err(CryptoError::InvalidCiphertext);
        }
        let kek = AesKek::new(&AES_256, first).map_err(|_| CryptoError::InvalidCiphertext)?;
        let mut out = Zeroizing::new(vec![0u8; kwp_part.len()]);
        let material = kek
            .unwrap_with_padding(kwp_part, &mut out)
            .map_err(|_| CryptoError::InvalidCiphertext)?;
        Ok(SecretBytes::new(material.to_vec()))
    }
}

// AWS-DEVIATION: AWS does not document how it derives the id of imported material.
/// The `KeyMaterialId` of imported material: a digest of the material bound to its key ARN, so
/// re-importing the same material yields the same id (and old ciphertexts decrypt again) while
/// different material is recognisable as different. AWS requires 256 bits of random material,
/// so the digest reveals nothing useful about it.
pub fn imported_material_id(key_arn: &str, material: &[u8]) -> crate::KeyMaterialId {
    let mut m = Vec::with_capacity(
        64usize
            .saturating_add(key_arn.len())
            .saturating_add(material.len()),
    );
    m.extend_from_slice(b"tresor imported key material id v1\0");
    m.extend_from_slice(key_arn.as_bytes());
    m.push(0);
    let mut input = Zeroizing::new(m);
    input.extend_from_slice(material);
    crate::KeyMaterialId(crate::sha256(&input))
}

/// The client side of an import: wraps `material` for the DER `SubjectPublicKeyInfo`
/// `public_key_der` as AWS's documentation (and OpenSSL) does. Used by tests and tools.
pub fn wrap_for_import(
    public_key_der: &[u8],
    wrapping: ImportWrapping,
    material: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let public = PublicEncryptingKey::from_der(public_key_der)
        .map_err(|_| CryptoError::InvalidKeyMaterial)?;
    let oaep = OaepPublicEncryptingKey::new(public).map_err(|_| CryptoError::Internal)?;
    let mut rsa_out = vec![0u8; oaep.ciphertext_size()];
    if !wrapping.hybrid() {
        let ct = oaep
            .encrypt(wrapping.oaep(), material, &mut rsa_out, None)
            .map_err(|_| CryptoError::InvalidKeyMaterial)?;
        return Ok(ct.to_vec());
    }
    let ephemeral = random_bytes(EPHEMERAL_KEY_LEN)?;
    let mut out = oaep
        .encrypt(wrapping.oaep(), ephemeral.expose(), &mut rsa_out, None)
        .map_err(|_| CryptoError::Internal)?
        .to_vec();
    let kek = AesKek::new(&AES_256, ephemeral.expose()).map_err(|_| CryptoError::Internal)?;
    let mut kwp = vec![0u8; material.len().saturating_add(15)];
    let wrapped = kek
        .wrap_with_padding(material, &mut kwp)
        .map_err(|_| CryptoError::InvalidKeyMaterial)?;
    out.extend_from_slice(wrapped);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const ALL: [ImportWrapping; 4] = [
        ImportWrapping::RsaesOaepSha1,
        ImportWrapping::RsaesOaepSha256,
        ImportWrapping::RsaAesKeyWrapSha1,
        ImportWrapping::RsaAesKeyWrapSha256,
    ];

    #[test]
    fn every_algorithm_round_trips() {
        let key = ImportWrappingKey::generate(WrappingKeySize::Rsa2048).unwrap();
        let public = key.public_key_der().unwrap();
        let material = [0x5au8; 32];
        for alg in ALL {
            let wrapped = wrap_for_import(&public, alg, &material).unwrap();
            let got = key.unwrap_material(alg, &wrapped).unwrap();
            assert_eq!(got.expose(), &material, "{alg:?}");
        }
    }

    #[test]
    fn the_wrong_algorithm_or_key_or_tampering_is_opaque() {
        let key = ImportWrappingKey::generate(WrappingKeySize::Rsa2048).unwrap();
        let other = ImportWrappingKey::generate(WrappingKeySize::Rsa2048).unwrap();
        let public = key.public_key_der().unwrap();
        let material = [1u8; 32];
        let wrapped = wrap_for_import(&public, ImportWrapping::RsaesOaepSha256, &material).unwrap();
        for (k, alg) in [
            (&key, ImportWrapping::RsaesOaepSha1),
            (&key, ImportWrapping::RsaAesKeyWrapSha256),
            (&other, ImportWrapping::RsaesOaepSha256),
        ] {
            assert_eq!(
                k.unwrap_material(alg, &wrapped).map(|_| ()),
                Err(CryptoError::InvalidCiphertext)
            );
        }
        let mut hybrid =
            wrap_for_import(&public, ImportWrapping::RsaAesKeyWrapSha256, &material).unwrap();
        let last = hybrid.len() - 1;
        hybrid[last] ^= 1;
        assert_eq!(
            key.unwrap_material(ImportWrapping::RsaAesKeyWrapSha256, &hybrid)
                .map(|_| ()),
            Err(CryptoError::InvalidCiphertext)
        );
        for short in [&[][..], &wrapped[..10]] {
            assert_eq!(
                key.unwrap_material(ImportWrapping::RsaAesKeyWrapSha1, short)
                    .map(|_| ()),
                Err(CryptoError::InvalidCiphertext)
            );
        }
    }

    #[test]
    fn imported_ids_depend_on_material_and_key() {
        let a = imported_material_id("arn:a", &[1u8; 32]);
        assert_eq!(a, imported_material_id("arn:a", &[1u8; 32]));
        assert_ne!(a, imported_material_id("arn:b", &[1u8; 32]));
        assert_ne!(a, imported_material_id("arn:a", &[2u8; 32]));
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        let key = ImportWrappingKey::generate(WrappingKeySize::Rsa3072).unwrap();
        let again = ImportWrappingKey::from_pkcs8(&key.to_pkcs8().unwrap()).unwrap();
        assert_eq!(
            key.public_key_der().unwrap(),
            again.public_key_der().unwrap()
        );
        let wrapped = wrap_for_import(
            &key.public_key_der().unwrap(),
            ImportWrapping::RsaAesKeyWrapSha1,
            &[9u8; 32],
        )
        .unwrap();
        assert_eq!(
            again
                .unwrap_material(ImportWrapping::RsaAesKeyWrapSha1, &wrapped)
                .unwrap()
                .expose(),
            &[9u8; 32]
        );
        assert!(format!("{key:?}").contains("REDACTED"));
    }
}
