//! ListKeyRotations: the key's material generations — with `ROTATIONS_ONLY` (the default) those
//! made by rotations, with `ALL_KEY_MATERIAL` every one, the first and imported material included.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::list_keys::{decode_marker, encode_marker, page_limit};
use super::{Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::lifecycle::require_symmetric;
use crate::state::KeyOp;
use crate::types::{ExpirationModel, IncludeKeyMaterial, RotationType, Timestamp};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListKeyRotations {
    pub key_id: String,
    pub include_key_material: Option<IncludeKeyMaterial>,
    pub limit: Option<i64>,
    pub marker: Option<String>,
}

// AWS-DEVIATION (unverified): `KeyId` is the key ARN; `KeyMaterialId` and `KeyMaterialState` are
// always present; entries are oldest first; markers are Tresor's.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationsListEntry {
    pub key_id: String,
    pub key_material_id: String,
    /// `IMPORTED` or `PENDING_IMPORT` (imported material only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_state: Option<&'static str>,
    /// `CURRENT` or `NON_CURRENT`.
    pub key_material_state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_model: Option<ExpirationModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_date: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_type: Option<RotationType>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyRotationsOutput {
    pub rotations: Vec<RotationsListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

#[async_trait]
impl Operation for ListKeyRotations {
    const NAME: &'static str = "ListKeyRotations";
    const READ_ONLY: bool = true;
    type Output = ListKeyRotationsOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(
            &mut m,
            "includeKeyMaterial",
            self.include_key_material.map(|i| i.as_str()),
        );
        put(&mut m, "limit", self.limit);
        put(&mut m, "marker", self.marker.clone());
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<ListKeyRotationsOutput, KmsError> {
        let limit = page_limit(self.limit, 100, 1000)?;
        let skip = self.marker.as_deref().map(decode_marker).transpose()?;
        let r = kms
            .resolve(ctx, &self.key_id, false, "ListKeyRotations", trail)
            .await?;
        kms.check_state(KeyOp::ListKeyRotations, &r.key)?;
        let k = &r.key.record;
        require_symmetric(k)?;
        let all = self.include_key_material == Some(IncludeKeyMaterial::AllKeyMaterial);
        let state_of = |id| {
            if k.current_material == Some(id) {
                "CURRENT"
            } else {
                "NON_CURRENT"
            }
        };
        let mut entries: Vec<RotationsListEntry> = k
            .materials
            .iter()
            .filter(|m| all || m.rotation.is_some())
            .map(|m| {
                let imported = k.imported.as_ref().filter(|i| i.material_id == m.id);
                RotationsListEntry {
                    key_id: r.key.arn.clone(),
                    key_material_id: m.id.to_hex(),
                    import_state: imported.map(|_| "IMPORTED"),
                    key_material_state: state_of(m.id),
                    expiration_model: imported.map(|i| i.expiration_model),
                    valid_to: imported.and_then(|i| i.valid_to),
                    rotation_date: m.rotation.map(|_| m.created),
                    rotation_type: m.rotation,
                }
            })
            .collect();
        // Imported material that was deleted or expired is still the key's, waiting for import.
        if all
            && let Some(i) = &k.imported
            && k.material(&i.material_id).is_none()
        {
            entries.push(RotationsListEntry {
                key_id: r.key.arn.clone(),
                key_material_id: i.material_id.to_hex(),
                import_state: Some("PENDING_IMPORT"),
                key_material_state: state_of(i.material_id),
                expiration_model: None,
                valid_to: None,
                rotation_date: None,
                rotation_type: None,
            });
        }
        let start = usize::try_from(skip.unwrap_or(0)).map_err(KmsError::internal)?;
        if start > entries.len() {
            return Err(KmsError::InvalidMarker("Invalid marker".to_owned()));
        }
        let mut page: Vec<RotationsListEntry> = entries.into_iter().skip(start).collect();
        let truncated = page.len() > limit;
        page.truncate(limit);
        let next_marker = truncated
            .then(|| i64::try_from(start + page.len()).map(encode_marker))
            .transpose()
            .map_err(KmsError::internal)?;
        Ok(ListKeyRotationsOutput {
            rotations: page,
            next_marker,
            truncated,
        })
    }
}
