//! CreateGrant.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tresor_policy::{ContextValue, Reason};

use super::{Operation, check_grant_tokens, context_json, params, put};
use crate::audit::Trail;
use crate::authz::{Access, GRANT_OPERATIONS};
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::{Kms, MAX_GRANTS_PER_KEY};
use crate::state::KeyOp;
use crate::store::{GrantConstraints, GrantRecord};
use crate::types::{KeySpec, KeyUsage};

#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Constraints {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateGrant {
    pub key_id: String,
    pub grantee_principal: String,
    pub retiring_principal: Option<String>,
    pub operations: Vec<String>,
    pub constraints: Option<Constraints>,
    pub grant_tokens: Option<Vec<String>>,
    pub name: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateGrantOutput {
    pub grant_token: String,
    pub grant_id: String,
}

/// The grant operations a key of this type and usage admits (reference §6.1).
pub(crate) fn operation_allowed(spec: KeySpec, usage: KeyUsage, op: &str) -> bool {
    if matches!(op, "CreateGrant" | "RetireGrant" | "DescribeKey") {
        return true;
    }
    let symmetric = spec == KeySpec::SymmetricDefault;
    match usage {
        KeyUsage::EncryptDecrypt if symmetric => matches!(
            op,
            "Decrypt"
                | "Encrypt"
                | "GenerateDataKey"
                | "GenerateDataKeyWithoutPlaintext"
                | "GenerateDataKeyPair"
                | "GenerateDataKeyPairWithoutPlaintext"
                | "ReEncryptFrom"
                | "ReEncryptTo"
        ),
        KeyUsage::EncryptDecrypt => matches!(
            op,
            "Encrypt" | "Decrypt" | "ReEncryptFrom" | "ReEncryptTo" | "GetPublicKey"
        ),
        KeyUsage::SignVerify => matches!(op, "Sign" | "Verify" | "GetPublicKey"),
        KeyUsage::GenerateVerifyMac => matches!(op, "GenerateMac" | "VerifyMac"),
        KeyUsage::KeyAgreement => matches!(op, "DeriveSharedSecret" | "GetPublicKey"),
    }
}

/// A grantee or retiring principal: an IAM principal ARN, an account id, or a service principal.
pub(crate) fn valid_principal(p: &str) -> bool {
    let charset = !p.is_empty()
        && p.len() <= 256
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b));
    charset
        && (p.starts_with("arn:aws:iam::")
            || p.starts_with("arn:aws:sts::")
            || crate::types::AccountId::parse(p).is_some()
            || (p.ends_with(".amazonaws.com") && !p.contains(':')))
}

fn check_context_map(m: &BTreeMap<String, String>, member: &str) -> Result<(), KmsError> {
    if m.len() > 8 {
        return Err(KmsError::validation(format!(
            "Value at 'constraints.{member}' failed to satisfy constraint: Member must have at most 8 entries"
        )));
    }
    if m.values().any(|v| v.encode_utf16().count() > 384) {
        return Err(KmsError::validation(format!(
            "Value at 'constraints.{member}' failed to satisfy constraint: Member values must have length less than or equal to 384"
        )));
    }
    Ok(())
}

/// Whether `child` constraints are at least as strict as `parent`'s.
fn at_least_as_strict(parent: Option<&GrantConstraints>, child: Option<&GrantConstraints>) -> bool {
    let Some(p) = parent else { return true };
    let Some(c) = child else { return false };
    let lower = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.iter()
            .map(|(k, v)| (k.to_lowercase(), v.clone()))
            .collect()
    };
    let contains = |big: &BTreeMap<String, String>, small: &BTreeMap<String, String>| {
        let big = lower(big);
        lower(small).iter().all(|(k, v)| big.get(k) == Some(v))
    };
    if let Some(pe) = &p.encryption_context_equals {
        return c
            .encryption_context_equals
            .as_ref()
            .is_some_and(|ce| lower(ce) == lower(pe));
    }
    if let Some(ps) = &p.encryption_context_subset {
        return match (&c.encryption_context_equals, &c.encryption_context_subset) {
            (Some(ce), _) => contains(ce, ps),
            (None, Some(cs)) => contains(cs, ps),
            (None, None) => false,
        };
    }
    true
}

/// A stable fingerprint of a named grant's properties: a retry with the same name and identical
/// properties returns the existing grant.
fn idempotency_token(name: &str, g: &GrantRecord) -> Result<String, KmsError> {
    let mut ops = g.operations.clone();
    ops.sort();
    let doc = serde_json::to_string(&json!({
        "name": name,
        "grantee": g.grantee_principal,
        "retiring": g.retiring_principal,
        "operations": ops,
        "constraints": g.constraints,
    }))
    .map_err(KmsError::internal)?;
    Ok(hex::encode(tresor_crypto::sha256(doc.as_bytes())))
}

#[async_trait]
impl Operation for CreateGrant {
    const NAME: &'static str = "CreateGrant";
    const READ_ONLY: bool = false;
    type Output = CreateGrantOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(
            &mut m,
            "granteePrincipal",
            Some(self.grantee_principal.clone()),
        );
        put(&mut m, "retiringPrincipal", self.retiring_principal.clone());
        put(
            &mut m,
            "operations",
            Some(Value::from(self.operations.clone())),
        );
        if let Some(c) = &self.constraints {
            let mut cm = Map::new();
            put(
                &mut cm,
                "encryptionContextSubset",
                c.encryption_context_subset.as_ref().map(context_json),
            );
            put(
                &mut cm,
                "encryptionContextEquals",
                c.encryption_context_equals.as_ref().map(context_json),
            );
            m.insert("constraints".into(), Value::Object(cm));
        }
        put(&mut m, "name", self.name.clone());
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<CreateGrantOutput, KmsError> {
        let tokens = self.grant_tokens.clone().unwrap_or_default();
        check_grant_tokens(&tokens)?;
        if self.operations.is_empty() {
            return Err(KmsError::validation(
                "Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        if let Some(bad) = self
            .operations
            .iter()
            .find(|op| !GRANT_OPERATIONS.contains(&op.as_str()))
        {
            return Err(KmsError::validation(format!(
                "Value '[{bad}]' at 'operations' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                GRANT_OPERATIONS.join(", ")
            )));
        }
        if !valid_principal(&self.grantee_principal) {
            // AWS-DEVIATION (unverified text).
            return Err(KmsError::validation_plain(format!(
                "Invalid GranteePrincipal: {}",
                self.grantee_principal
            )));
        }
        if let Some(r) = &self.retiring_principal
            && !valid_principal(r)
        {
            return Err(KmsError::validation_plain(format!(
                "Invalid RetiringPrincipal: {r}"
            )));
        }
        let constraints = match &self.constraints {
            None => None,
            Some(c) => {
                if c.encryption_context_equals.is_some() && c.encryption_context_subset.is_some() {
                    // AWS-DEVIATION (unverified): AWS documents the two as alternatives.
                    return Err(KmsError::validation_plain(
                        "Specify either EncryptionContextEquals or EncryptionContextSubset, not both.",
                    ));
                }
                if let Some(m) = &c.encryption_context_subset {
                    check_context_map(m, "encryptionContextSubset")?;
                }
                if let Some(m) = &c.encryption_context_equals {
                    check_context_map(m, "encryptionContextEquals")?;
                }
                (c.encryption_context_equals.is_some() || c.encryption_context_subset.is_some())
                    .then(|| GrantConstraints {
                        encryption_context_subset: c.encryption_context_subset.clone(),
                        encryption_context_equals: c.encryption_context_equals.clone(),
                    })
            }
        };
        let constraint_type = constraints.as_ref().map(|c| {
            if c.encryption_context_equals.is_some() {
                "EncryptionContextEquals"
            } else {
                "EncryptionContextSubset"
            }
        });
        // For CreateGrant, kms:EncryptionContext:* describe the grant's constraint, and a parent
        // grant's constraints apply to it.
        let constraint_ec: BTreeMap<String, String> = constraints
            .as_ref()
            .and_then(|c| {
                c.encryption_context_equals
                    .clone()
                    .or_else(|| c.encryption_context_subset.clone())
            })
            .unwrap_or_default();
        let mut access = Access::new("CreateGrant")
            .context(&constraint_ec)
            .tokens(&tokens)
            .with(
                "kms:GrantOperations",
                ContextValue::multi(self.operations.clone()),
            )
            .with_str("kms:GranteePrincipal", self.grantee_principal.clone());
        if let Some(r) = &self.retiring_principal {
            access = access.with_str("kms:RetiringPrincipal", r.clone());
        }
        if let Some(t) = constraint_type {
            access = access.with_str("kms:GrantConstraintType", t);
        }
        let r = kms
            .resolve_for(ctx, &self.key_id, false, access.clone(), trail)
            .await?;
        let key = &r.key;
        // When the permission came from a grant, the new grant may not exceed it.
        let evaluation = kms.evaluate(ctx, key, &access, None).await?;
        let via_grant: Vec<&str> = evaluation
            .reasons
            .iter()
            .filter_map(|reason| match reason {
                Reason::Grant { grant_id } => Some(grant_id.as_str()),
                _ => None,
            })
            .collect();
        let allowed_by_policy = evaluation.reasons.iter().any(|reason| {
            matches!(
                reason,
                Reason::KeyPolicyAllowsCaller(_)
                    | Reason::KeyPolicyAllowsAccount(_)
                    | Reason::IdentityPolicyAllows(_)
            )
        });
        if !allowed_by_policy && !via_grant.is_empty() {
            let ok = key
                .grants
                .iter()
                .filter(|g| via_grant.contains(&g.grant_id.as_str()))
                .any(|parent| {
                    self.operations
                        .iter()
                        .all(|op| parent.operations.contains(op))
                        && at_least_as_strict(parent.constraints.as_ref(), constraints.as_ref())
                });
            if !ok {
                return Err(kms.denied(ctx, "CreateGrant", &key.arn, &evaluation));
            }
        }
        kms.check_state(KeyOp::CreateGrant, key)?;
        if let Some(bad) = self
            .operations
            .iter()
            .find(|op| !operation_allowed(key.record.key_spec, key.record.key_usage, op))
        {
            // AWS-DEVIATION (unverified text): AWS answers ValidationException here.
            return Err(KmsError::validation_plain(format!(
                "Grant operation {bad} is not valid for a KMS key with KeySpec {} and KeyUsage {}.",
                key.record.key_spec, key.record.key_usage
            )));
        }
        if constraints.is_some() && key.record.key_spec != KeySpec::SymmetricDefault {
            return Err(KmsError::validation_plain(
                "Grant constraints are supported only for symmetric encryption KMS keys.",
            ));
        }
        if self.dry_run == Some(true) {
            return Err(KmsError::DryRunOperation);
        }
        if kms
            .store
            .count_grants(&key.record.region, &key.record.key_id)
            .await?
            >= MAX_GRANTS_PER_KEY as u64
        {
            return Err(KmsError::LimitExceeded(format!(
                "The request would exceed the limit of {MAX_GRANTS_PER_KEY} grants for KMS key {}.",
                key.arn
            )));
        }
        let grant_id =
            hex::encode(tresor_crypto::random_array::<32>().map_err(KmsError::internal)?);
        let grant = GrantRecord {
            key_region: key.record.region.clone(),
            key_id: key.record.key_id,
            key_account: key.record.account.clone(),
            grant_id,
            name: self.name.clone(),
            grantee_principal: self.grantee_principal.clone(),
            retiring_principal: self.retiring_principal.clone(),
            operations: self.operations.clone(),
            constraints,
            issuing_account: ctx.caller.account.root_arn(),
            created: kms.clock.now(),
        };
        let token = match &self.name {
            Some(name) => Some(idempotency_token(name, &grant)?),
            None => None,
        };
        let stored = kms.store.insert_grant(&grant, token.as_deref()).await?;
        kms.invalidate_key(&key.record.key_id);
        trail.response_elements = Some(json!({ "grantId": stored.grant_id }));
        Ok(CreateGrantOutput {
            grant_token: crate::grant_token::issue(
                &key.record.region,
                &key.record.key_id,
                &stored.grant_id,
            )?,
            grant_id: stored.grant_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn child_constraints() {
        let sub = |p: &[(&str, &str)]| {
            Some(GrantConstraints {
                encryption_context_subset: Some(m(p)),
                encryption_context_equals: None,
            })
        };
        let eq = |p: &[(&str, &str)]| {
            Some(GrantConstraints {
                encryption_context_subset: None,
                encryption_context_equals: Some(m(p)),
            })
        };
        assert!(at_least_as_strict(None, None));
        assert!(at_least_as_strict(
            sub(&[("a", "1")]).as_ref(),
            sub(&[("A", "1"), ("b", "2")]).as_ref()
        ));
        assert!(at_least_as_strict(
            sub(&[("a", "1")]).as_ref(),
            eq(&[("a", "1")]).as_ref()
        ));
        assert!(!at_least_as_strict(sub(&[("a", "1")]).as_ref(), None));
        assert!(!at_least_as_strict(
            sub(&[("a", "1")]).as_ref(),
            sub(&[("a", "2")]).as_ref()
        ));
        assert!(!at_least_as_strict(
            eq(&[("a", "1")]).as_ref(),
            sub(&[("a", "1")]).as_ref()
        ));
        assert!(at_least_as_strict(
            eq(&[("a", "1")]).as_ref(),
            eq(&[("a", "1")]).as_ref()
        ));
    }

    #[test]
    fn principals() {
        for ok in [
            "arn:aws:iam::111122223333:role/R",
            "111122223333",
            "voiceid.amazonaws.com",
            "arn:aws:sts::111122223333:assumed-role/R/s",
        ] {
            assert!(valid_principal(ok), "{ok}");
        }
        for bad in [
            "",
            "bob",
            "arn:aws:s3:::bucket",
            "a b",
            "voiceid.amazonaws.com ",
        ] {
            assert!(!valid_principal(bad), "{bad}");
        }
    }

    #[test]
    fn operations_per_key_type() {
        assert!(operation_allowed(
            KeySpec::SymmetricDefault,
            KeyUsage::EncryptDecrypt,
            "GenerateDataKeyPair"
        ));
        assert!(!operation_allowed(
            KeySpec::SymmetricDefault,
            KeyUsage::EncryptDecrypt,
            "Sign"
        ));
        assert!(operation_allowed(
            KeySpec::Hmac256,
            KeyUsage::GenerateVerifyMac,
            "VerifyMac"
        ));
        assert!(operation_allowed(
            KeySpec::Rsa2048,
            KeyUsage::SignVerify,
            "DescribeKey"
        ));
    }
}
