//! GetParametersForImport: a fresh RSA wrapping key pair for an `EXTERNAL` key. The public key is
//! returned; the private key travels inside the import token, wrapped under the root key and bound
//! to the key, the token and its 24-hour validity (see `import_token`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tresor_crypto::import::{ImportWrapping, ImportWrappingKey, WrappingKeySize};

use super::{Blob, Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::import_token::{self, IMPORT_PARAMETERS_VALIDITY_MILLIS};
use crate::kms::Kms;
use crate::lifecycle::origin_not_valid;
use crate::state::KeyOp;
use crate::types::{Origin, Timestamp, WrappingAlgorithm, WrappingKeySpec};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersForImport {
    pub key_id: String,
    pub wrapping_algorithm: WrappingAlgorithm,
    pub wrapping_key_spec: WrappingKeySpec,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersForImportOutput {
    pub key_id: String,
    pub import_token: Blob,
    pub public_key: Blob,
    pub parameters_valid_to: Timestamp,
}

/// The wrapping algorithms and key specs Tresor implements.
pub(crate) fn wrapping_of(
    algorithm: WrappingAlgorithm,
    spec: WrappingKeySpec,
) -> Result<(ImportWrapping, WrappingKeySize), KmsError> {
    let wrapping = match algorithm {
        WrappingAlgorithm::RsaesOaepSha1 => ImportWrapping::RsaesOaepSha1,
        WrappingAlgorithm::RsaesOaepSha256 => ImportWrapping::RsaesOaepSha256,
        WrappingAlgorithm::RsaAesKeyWrapSha1 => ImportWrapping::RsaAesKeyWrapSha1,
        WrappingAlgorithm::RsaAesKeyWrapSha256 => ImportWrapping::RsaAesKeyWrapSha256,
        // AWS-DEVIATION (unverified text): AWS withdrew RSAES_PKCS1_V1_5 in 2023; SM2PKE exists
        // only in China Regions.
        WrappingAlgorithm::RsaesPkcs1V15 | WrappingAlgorithm::Sm2Pke => {
            return Err(KmsError::UnsupportedOperation(format!(
                "The wrapping algorithm {algorithm} is not supported."
            )));
        }
    };
    let size = match spec {
        WrappingKeySpec::Rsa2048 => WrappingKeySize::Rsa2048,
        WrappingKeySpec::Rsa3072 => WrappingKeySize::Rsa3072,
        WrappingKeySpec::Rsa4096 => WrappingKeySize::Rsa4096,
        // AWS-DEVIATION (unverified text): SM2 wrapping keys exist only in China Regions.
        WrappingKeySpec::Sm2 => {
            return Err(KmsError::UnsupportedOperation(
                "The wrapping key spec SM2 is not supported.".to_owned(),
            ));
        }
    };
    Ok((wrapping, size))
}

#[async_trait]
impl Operation for GetParametersForImport {
    const NAME: &'static str = "GetParametersForImport";
    const READ_ONLY: bool = true;
    type Output = GetParametersForImportOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(
            &mut m,
            "wrappingAlgorithm",
            Some(self.wrapping_algorithm.as_str()),
        );
        put(
            &mut m,
            "wrappingKeySpec",
            Some(self.wrapping_key_spec.as_str()),
        );
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<GetParametersForImportOutput, KmsError> {
        let r = kms
            .resolve(ctx, &self.key_id, false, "GetParametersForImport", trail)
            .await?;
        kms.check_state(KeyOp::GetParametersForImport, &r.key)?;
        if r.key.record.origin != Origin::External {
            return Err(origin_not_valid(&r.key.arn, r.key.record.origin));
        }
        let (wrapping, size) = wrapping_of(self.wrapping_algorithm, self.wrapping_key_spec)?;
        // RSA key generation takes a while: keep it off the request threads.
        let wrapping_key = tokio::task::spawn_blocking(move || ImportWrappingKey::generate(size))
            .await
            .map_err(KmsError::internal)?
            .map_err(KmsError::internal)?;
        let valid_to = Timestamp(
            kms.clock
                .now()
                .millis()
                .saturating_add(IMPORT_PARAMETERS_VALIDITY_MILLIS),
        );
        let token = import_token::issue(
            &kms.root,
            &r.key.record.key_id,
            &r.key.arn,
            wrapping,
            valid_to,
            &wrapping_key,
        )?;
        let public_key = wrapping_key.public_key_der().map_err(KmsError::internal)?;
        Ok(GetParametersForImportOutput {
            key_id: r.key.arn.clone(),
            import_token: Blob(token),
            public_key: Blob(public_key),
            parameters_valid_to: valid_to,
        })
    }
}
