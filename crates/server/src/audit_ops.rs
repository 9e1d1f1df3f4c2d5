//! Operator-side audit tasks: verification, lookups, CloudTrail-layout export and retention.
//! Used by the `tresor audit …` commands and by the server's background tasks.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tresor_kms::audit_log::{AuditBackend, AuditRecord};
use tresor_kms::types::Timestamp;

/// The most records one `tresor audit lookup` prints (its `--limit` is clamped to this).
pub const LOOKUP_MAX_RECORDS: usize = 100_000;

/// Parses `2026-11-28T15:00:00Z` (or with fractional seconds / offset) or epoch seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs.saturating_mul(1000));
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1000.0) as i64);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        .map_err(|e| format!("{s:?} is neither epoch seconds nor an RFC 3339 time: {e}"))
}

#[derive(Default, Serialize, Deserialize)]
struct ExportState {
    /// Last exported seq per chain.
    chains: BTreeMap<String, u64>,
}

const STATE_FILE: &str = ".tresor-export-state.json";

/// What one export run wrote.
#[derive(Debug, Default, Serialize)]
pub struct ExportSummary {
    pub records: u64,
    pub files: Vec<PathBuf>,
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let parent = path
        .parent()
        .ok_or_else(|| format!("{} has no parent", path.display()))?;
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.sync_all()
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// `{"Records": [ ... ]}` with the stored record JSON embedded byte for byte.
fn records_document(records: &[&AuditRecord]) -> String {
    let mut out = String::from("{\"Records\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&r.json);
    }
    out.push_str("]}");
    out
}

/// Exports every record not yet exported into CloudTrail's log file layout under `dir`:
/// `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz`.
/// Incremental (a state file remembers the last exported record of each chain) and idempotent
/// (file names derive from their content's position, so a rerun after a crash rewrites the same files).
pub async fn export(backend: &dyn AuditBackend, dir: &Path) -> Result<ExportSummary, String> {
    let state_path = dir.join(STATE_FILE);
    let mut state: ExportState = match std::fs::read(&state_path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", state_path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ExportState::default(),
        Err(e) => return Err(format!("{}: {e}", state_path.display())),
    };
    let mut summary = ExportSummary::default();
    for chain in backend.chains().await.map_err(|e| e.to_string())? {
        loop {
            let after = state.chains.get(&chain).copied().unwrap_or(0);
            let page = backend
                .records(&chain, after, 1000)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            let last_seq = last.seq;
            // One file per (account, region, day) within the page, records in chain order.
            let mut groups: BTreeMap<(String, String, String), Vec<&AuditRecord>> = BTreeMap::new();
            for r in &page {
                let day = Timestamp(r.index.event_time_millis).to_iso8601_seconds();
                let day = day.get(..10).unwrap_or("1970-01-01").to_owned();
                groups
                    .entry((r.index.account.clone(), r.index.region.clone(), day))
                    .or_default()
                    .push(r);
            }
            for ((account, region, day), records) in groups {
                let (Some(first), Some(last)) = (records.first(), records.last()) else {
                    continue;
                };
                let stamp = Timestamp(last.index.event_time_millis).to_iso8601_seconds();
                // YYYYMMDDTHHmmZ
                let compact: String = stamp
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect();
                let compact = format!("{}Z", compact.get(..13).unwrap_or("19700101T0000"));
                let unique = hex::encode(tresor_crypto::sha256(
                    format!("{chain}\0{}\0{}", first.seq, last.seq).as_bytes(),
                ));
                let unique = unique.get(..16).unwrap_or("0000000000000000");
                let rel = format!(
                    "AWSLogs/{account}/CloudTrail/{region}/{}/{}/{}/{account}_CloudTrail_{region}_{compact}_{unique}.json.gz",
                    day.get(0..4).unwrap_or("1970"),
                    day.get(5..7).unwrap_or("01"),
                    day.get(8..10).unwrap_or("01"),
                );
                let path = dir.join(rel);
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(records_document(&records).as_bytes())
                    .map_err(|e| e.to_string())?;
                let bytes = gz.finish().map_err(|e| e.to_string())?;
                write_atomically(&path, &bytes)?;
                summary.records += records.len() as u64;
                summary.files.push(path);
            }
            state.chains.insert(chain.clone(), last_seq);
            let state_bytes = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
            write_atomically(&state_path, &state_bytes)?;
        }
    }
    Ok(summary)
}

/// Prunes records older than `retention_days` from every chain (leaving signed anchors).
pub async fn prune_older_than(
    backend: &dyn AuditBackend,
    signer: &tresor_crypto::Ed25519Signer,
    retention_days: u32,
    now: Timestamp,
) -> Result<u64, String> {
    let cutoff = now.add_days(-i64::from(retention_days)).millis();
    let mut removed = 0;
    for chain in backend.chains().await.map_err(|e| e.to_string())? {
        removed += tresor_kms::audit_log::prune(backend, signer, &chain, cutoff, now.millis())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(
            parse_time("2022-08-10T22:38:27Z").unwrap(),
            1_660_171_107_000
        );
        assert!(parse_time("yesterday").is_err());
    }
}
