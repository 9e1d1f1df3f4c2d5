//! Ed25519 signing for tamper evidence (audit digests). The private key lives wrapped under the
//! root key; the public key is exported so that anyone can verify without it.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::{CryptoError, SecretBytes};

/// An Ed25519 key pair. `Debug` shows only the public key.
pub struct Ed25519Signer {
    pair: Ed25519KeyPair,
    pkcs8: SecretBytes,
}

impl Ed25519Signer {
    /// A fresh key pair.
    pub fn generate() -> Result<Ed25519Signer, CryptoError> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| CryptoError::Rng)?;
        Ed25519Signer::from_pkcs8(SecretBytes::new(doc.as_ref().to_vec()))
    }

    /// Loads a key pair from its PKCS#8 (v1 or v2) document.
    pub fn from_pkcs8(pkcs8: SecretBytes) -> Result<Ed25519Signer, CryptoError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8.expose())
            .map_err(|_| CryptoError::InvalidKeyMaterial)?;
        Ok(Ed25519Signer { pair, pkcs8 })
    }

    /// The PKCS#8 document, for wrapping under the root key.
    pub fn pkcs8(&self) -> &SecretBytes {
        &self.pkcs8
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        let pk = self.pair.public_key().as_ref();
        if pk.len() == 32 {
            out.copy_from_slice(pk);
        }
        out
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let sig = self.pair.sign(message);
        let mut out = [0u8; 64];
        if sig.as_ref().len() == 64 {
            out.copy_from_slice(sig.as_ref());
        }
        out
    }
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Ed25519Signer(public {})",
            hex::encode(self.public_key())
        )
    }
}

/// Verifies an Ed25519 signature.
pub fn verify_ed25519(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reload() {
        let s = Ed25519Signer::generate().unwrap();
        let sig = s.sign(b"hello");
        assert!(verify_ed25519(&s.public_key(), b"hello", &sig));
        assert!(!verify_ed25519(&s.public_key(), b"hellO", &sig));
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(!verify_ed25519(&s.public_key(), b"hello", &bad));
        let again = Ed25519Signer::from_pkcs8(s.pkcs8().clone()).unwrap();
        assert_eq!(again.public_key(), s.public_key());
        assert!(!format!("{again:?}").contains(&hex::encode(again.pkcs8().expose())));
        assert!(Ed25519Signer::from_pkcs8(SecretBytes::new(vec![1, 2, 3])).is_err());
    }
}
