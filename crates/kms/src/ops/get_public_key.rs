//! GetPublicKey: the public key of an asymmetric key, with what it may be used for.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Blob, Operation, check_grant_tokens, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::{
    EncryptionAlgorithm, KeyAgreementAlgorithm, KeySpec, KeyUsage, SigningAlgorithm,
};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GetPublicKey {
    pub key_id: String,
    pub grant_tokens: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetPublicKeyOutput {
    pub key_id: String,
    pub public_key: Blob,
    pub customer_master_key_spec: KeySpec,
    pub key_spec: KeySpec,
    pub key_usage: KeyUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_algorithms: Option<Vec<EncryptionAlgorithm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_algorithms: Option<Vec<SigningAlgorithm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_agreement_algorithms: Option<Vec<KeyAgreementAlgorithm>>,
}

#[async_trait]
impl Operation for GetPublicKey {
    const NAME: &'static str = "GetPublicKey";
    const READ_ONLY: bool = true;
    type Output = GetPublicKeyOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<GetPublicKeyOutput, KmsError> {
        let tokens = self.grant_tokens.unwrap_or_default();
        check_grant_tokens(&tokens)?;
        let access = crate::authz::Access::new("GetPublicKey").tokens(&tokens);
        let r = kms
            .resolve_for(ctx, &self.key_id, true, access, trail)
            .await?;
        kms.check_state(KeyOp::GetPublicKey, &r.key)?;
        let record = &r.key.record;
        if crate::asymmetric::asymmetric_spec(record.key_spec).is_none() {
            // AWS-DEVIATION (unverified text): AWS answers UnsupportedOperationException for
            // symmetric and HMAC keys; the message is Tresor's.
            return Err(KmsError::UnsupportedOperation(format!(
                "{} key spec is {} which is not valid for GetPublicKey.",
                r.key.arn, record.key_spec
            )));
        }
        let public_key = r.key.asymmetric_key()?.public_key_der().to_vec();
        Ok(GetPublicKeyOutput {
            key_id: r.key.arn.clone(),
            public_key: Blob(public_key),
            customer_master_key_spec: record.key_spec,
            key_spec: record.key_spec,
            key_usage: record.key_usage,
            encryption_algorithms: crate::asymmetric::encryption_algorithms(
                record.key_spec,
                record.key_usage,
            ),
            signing_algorithms: crate::asymmetric::signing_algorithms(
                record.key_spec,
                record.key_usage,
            ),
            key_agreement_algorithms: crate::asymmetric::key_agreement_algorithms(record.key_usage),
        })
    }
}
