//! KMS symmetric key material and its identifier.

use std::fmt;

use crate::{CryptoError, SecretBytes, random_array, random_bytes};

/// Length of symmetric key material in bytes (AES-256).
const MATERIAL_LEN: usize = 32;

/// 256-bit symmetric KMS key material (`SYMMETRIC_DEFAULT` keys).
///
/// Zeroized on drop, redacted in `Debug`, readable only via
/// [`SymmetricKeyMaterial::expose`] (needed to wrap it for storage).
#[derive(Clone)]
pub struct SymmetricKeyMaterial(SecretBytes);

impl SymmetricKeyMaterial {
    /// Fresh random key material from the system CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(random_bytes(MATERIAL_LEN)?))
    }

    /// Accepts exactly 32 bytes (e.g. as returned by [`crate::RootKey::unwrap`]);
    /// anything else is [`CryptoError::InvalidKeyMaterial`].
    pub fn from_secret(s: SecretBytes) -> Result<Self, CryptoError> {
        if s.len() == MATERIAL_LEN {
            Ok(Self(s))
        } else {
            Err(CryptoError::InvalidKeyMaterial)
        }
    }

    /// The raw 32 key bytes.
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

impl fmt::Debug for SymmetricKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SymmetricKeyMaterial([REDACTED; {}])", self.0.len())
    }
}

impl zeroize::ZeroizeOnDrop for SymmetricKeyMaterial {}

/// AWS `KeyMaterialId`: 32 bytes, shown as 64 lower-case hex characters.
/// Not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct KeyMaterialId(pub [u8; 32]);

impl KeyMaterialId {
    /// A fresh random id.
    pub fn random() -> Result<Self, CryptoError> {
        Ok(Self(random_array()?))
    }

    /// 64 lower-case hex characters.
    pub fn to_hex(&self) -> String {
        let mut out = vec![0u8; 64];
        // Cannot fail: the output is exactly twice the input's length.
        let _ = hex::encode_to_slice(self.0, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Parses exactly 64 lower-case hex characters (the only form
    /// [`KeyMaterialId::to_hex`] produces); anything else is `None`.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        if !is_lower_hex(s, 64) {
            return None;
        }
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
}

impl fmt::Display for KeyMaterialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// `s` is exactly `len` characters of `[0-9a-f]`.
pub(crate) fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
