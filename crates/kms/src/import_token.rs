//! The `ImportToken` of `GetParametersForImport`: opaque to clients, it carries the import's
//! RSA private key wrapped under the root key, so no import state is stored.
//!
//! ```text
//! "TIT1" ‖ key id (16) ‖ token id (16) ‖ valid-to millis (i64 BE) ‖ algorithm (1) ‖ wrapped private key
//! ```
//!
//! The wrap's purpose binds the private key to the key ARN, the token id, the validity and the
//! wrapping algorithm, so a token cannot be moved to another key, extended or used with another
//! algorithm: any change fails to unwrap. Tokens are never logged.

use tresor_crypto::import::{ImportWrapping, ImportWrappingKey};
use tresor_crypto::{RootKey, SecretBytes};

use crate::error::KmsError;
use crate::types::{KeyId, Timestamp};

// AWS-DEVIATION: the token format is Tresor's own (AWS's is opaque too); tokens are not
// single-use and stay valid for their whole validity.
const MAGIC: &[u8; 4] = b"TIT1";
const HEADER_LEN: usize = 4 + 16 + 16 + 8 + 1;

/// How long import parameters are valid (AWS: 24 hours).
pub const IMPORT_PARAMETERS_VALIDITY_MILLIS: i64 = 24 * 3600 * 1000;

fn algorithm_byte(w: ImportWrapping) -> u8 {
    match w {
        ImportWrapping::RsaesOaepSha1 => 1,
        ImportWrapping::RsaesOaepSha256 => 2,
        ImportWrapping::RsaAesKeyWrapSha1 => 3,
        ImportWrapping::RsaAesKeyWrapSha256 => 4,
    }
}

fn algorithm_of(b: u8) -> Option<ImportWrapping> {
    Some(match b {
        1 => ImportWrapping::RsaesOaepSha1,
        2 => ImportWrapping::RsaesOaepSha256,
        3 => ImportWrapping::RsaAesKeyWrapSha1,
        4 => ImportWrapping::RsaAesKeyWrapSha256,
        _ => return None,
    })
}

fn purpose(key_arn: &str, header: &[u8]) -> Vec<u8> {
    let mut p = b"import-wrapping-key\0".to_vec();
    p.extend_from_slice(key_arn.as_bytes());
    p.push(0);
    p.extend_from_slice(header);
    p
}

/// Builds a token for `key` holding `wrapping_key`.
pub(crate) fn issue(
    root: &RootKey,
    key_id: &KeyId,
    key_arn: &str,
    wrapping: ImportWrapping,
    valid_to: Timestamp,
    wrapping_key: &ImportWrappingKey,
) -> Result<Vec<u8>, KmsError> {
    let token_id = tresor_crypto::random_array::<16>().map_err(KmsError::internal)?;
    let mut token = Vec::with_capacity(3072);
    token.extend_from_slice(MAGIC);
    token.extend_from_slice(key_id.0.as_bytes());
    token.extend_from_slice(&token_id);
    token.extend_from_slice(&valid_to.millis().to_be_bytes());
    token.push(algorithm_byte(wrapping));
    let pkcs8 = wrapping_key.to_pkcs8().map_err(KmsError::internal)?;
    let wrapped = root
        .wrap(&purpose(key_arn, &token), pkcs8.expose())
        .map_err(KmsError::internal)?;
    token.extend_from_slice(&wrapped);
    Ok(token)
}

/// A token opened for a key.
pub(crate) struct Opened {
    pub wrapping: ImportWrapping,
    pub wrapping_key: ImportWrappingKey,
}

fn invalid() -> KmsError {
    // AWS-DEVIATION (unverified text): the model's description of the exception.
    KmsError::InvalidImportToken(
        "The request was rejected because the provided import token is invalid or is associated with a different KMS key.".to_owned(),
    )
}

/// Opens `token` for the key `key_id`/`key_arn`: `InvalidImportTokenException` if it is not a
/// token of this key (or was altered), `ExpiredImportTokenException` once its validity is over.
pub(crate) fn open(
    root: &RootKey,
    key_id: &KeyId,
    key_arn: &str,
    token: &[u8],
    now: Timestamp,
) -> Result<Opened, KmsError> {
    let (header, wrapped) = token.split_at_checked(HEADER_LEN).ok_or_else(invalid)?;
    let (magic, rest) = header.split_at(4);
    let (token_key, rest) = rest.split_at(16);
    let (_token_id, rest) = rest.split_at(16);
    let (valid_to, alg) = rest.split_at(8);
    if magic != MAGIC || token_key != key_id.0.as_bytes() {
        return Err(invalid());
    }
    let wrapping = alg
        .first()
        .copied()
        .and_then(algorithm_of)
        .ok_or_else(invalid)?;
    let valid_to = Timestamp(i64::from_be_bytes(
        valid_to.try_into().map_err(|_| invalid())?,
    ));
    let pkcs8: SecretBytes = root
        .unwrap(&purpose(key_arn, header), wrapped)
        .map_err(|_| invalid())?;
    if now > valid_to {
        // AWS-DEVIATION (unverified text): the model's description of the exception.
        return Err(KmsError::ExpiredImportToken(
            "The request was rejected because the specified import token is expired. Use GetParametersForImport to get a new import token and public key, use the new public key to encrypt the key material, and then try the request again.".to_owned(),
        ));
    }
    let wrapping_key = ImportWrappingKey::from_pkcs8(&pkcs8).map_err(KmsError::internal)?;
    Ok(Opened {
        wrapping,
        wrapping_key,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use tresor_crypto::import::WrappingKeySize;

    #[test]
    fn tokens_bind_key_validity_and_algorithm() {
        let root = RootKey::generate().unwrap();
        let key = KeyId::new_random();
        let other = KeyId::new_random();
        let arn = "arn:aws:kms:us-east-1:111122223333:key/x";
        let wk = ImportWrappingKey::generate(WrappingKeySize::Rsa2048).unwrap();
        let t = Timestamp(1_000_000);
        let token = issue(&root, &key, arn, ImportWrapping::RsaesOaepSha256, t, &wk).unwrap();
        assert!(token.len() < 6144, "fits the model's CiphertextType");
        let opened = open(&root, &key, arn, &token, Timestamp(999_999)).unwrap();
        assert_eq!(opened.wrapping, ImportWrapping::RsaesOaepSha256);
        assert_eq!(
            opened.wrapping_key.public_key_der().unwrap(),
            wk.public_key_der().unwrap()
        );
        assert!(matches!(
            open(&root, &key, arn, &token, Timestamp(1_000_001)),
            Err(KmsError::ExpiredImportToken(_))
        ));
        assert!(matches!(
            open(&root, &other, arn, &token, t),
            Err(KmsError::InvalidImportToken(_))
        ));
        assert!(matches!(
            open(&root, &key, "arn:other", &token, t),
            Err(KmsError::InvalidImportToken(_))
        ));
        // Extending the validity or switching the algorithm breaks the binding.
        for (i, v) in [(HEADER_LEN - 2, 0xffu8), (HEADER_LEN - 1, 1)] {
            let mut bad = token.clone();
            bad[i] = v;
            assert!(matches!(
                open(&root, &key, arn, &bad, t),
                Err(KmsError::InvalidImportToken(_))
            ));
        }
        for short in [&token[..3], &token[..HEADER_LEN], &[][..]] {
            assert!(matches!(
                open(&root, &key, arn, short, t),
                Err(KmsError::InvalidImportToken(_))
            ));
        }
        let root2 = RootKey::generate().unwrap();
        assert!(matches!(
            open(&root2, &key, arn, &token, t),
            Err(KmsError::InvalidImportToken(_))
        ));
    }
}
