//! The audit log in PostgreSQL, beside the store's tables. Each node appends to its own chain
//! (its node id), so writers never contend for a chain head; verification, lookups and export
//! see every chain.

use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use tresor_kms::audit_log::{AuditBackend, AuditIndex, AuditQuery, AuditRecord, Signed};
use tresor_kms::store::StoreError;

use crate::postgres::{PgDb, pg_err, timed, to_i64};

/// PostgreSQL implementation of [`AuditBackend`].
#[derive(Clone)]
pub struct PostgresAuditLog {
    db: PgDb,
}

impl std::fmt::Debug for PostgresAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresAuditLog").finish_non_exhaustive()
    }
}

const RECORD_COLUMNS: &str = "chain, seq, prev_hash, hash, event_time, event_name, account, region, principal_arn, \
     username, access_key_id, error_code, read_only, event_id, request_id, resources, json";

fn arr<const N: usize>(v: Vec<u8>) -> Result<[u8; N], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt("hash or signature of the wrong length".into()))
}

fn seq_of(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn signed_from_row(r: &Row) -> Result<Signed, StoreError> {
    Ok(Signed {
        chain: r.try_get(0).map_err(pg_err)?,
        seq: seq_of(r.try_get(1).map_err(pg_err)?)?,
        hash: arr(r.try_get(2).map_err(pg_err)?)?,
        time_millis: r.try_get(3).map_err(pg_err)?,
        signature: arr(r.try_get(4).map_err(pg_err)?)?,
    })
}

fn record_from_row(r: &Row) -> Result<AuditRecord, StoreError> {
    let g = |e: tokio_postgres::Error| pg_err(e);
    let resources: String = r.try_get(15).map_err(g)?;
    Ok(AuditRecord {
        chain: r.try_get(0).map_err(g)?,
        seq: seq_of(r.try_get(1).map_err(g)?)?,
        prev_hash: arr(r.try_get(2).map_err(g)?)?,
        hash: arr(r.try_get(3).map_err(g)?)?,
        index: AuditIndex {
            event_time_millis: r.try_get(4).map_err(g)?,
            event_name: r.try_get(5).map_err(g)?,
            account: r.try_get(6).map_err(g)?,
            region: r.try_get(7).map_err(g)?,
            principal_arn: r.try_get(8).map_err(g)?,
            username: r.try_get(9).map_err(g)?,
            access_key_id: r.try_get(10).map_err(g)?,
            error_code: r.try_get(11).map_err(g)?,
            read_only: r.try_get(12).map_err(g)?,
            event_id: r.try_get(13).map_err(g)?,
            request_id: r.try_get(14).map_err(g)?,
            resources: serde_json::from_str(&resources)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        },
        json: r.try_get(16).map_err(g)?,
    })
}

impl PostgresAuditLog {
    pub(crate) fn from_db(db: PgDb) -> PostgresAuditLog {
        PostgresAuditLog { db }
    }

    /// Connects to `url` on its own pool (for the `tresor audit` commands) and applies pending
    /// migrations.
    pub async fn connect(url: &str) -> Result<PostgresAuditLog, StoreError> {
        Ok(PostgresAuditLog {
            db: PgDb::connect(url).await?,
        })
    }

    async fn signed(&self, table: &str, chain: &str) -> Result<Vec<Signed>, StoreError> {
        let sql = format!(
            "SELECT chain, seq, hash, time, signature FROM {table} WHERE chain = $1 ORDER BY seq"
        );
        timed(async {
            let c = self.db.client().await?;
            let st = c.prepare_cached(&sql).await.map_err(pg_err)?;
            c.query(&st, &[&chain])
                .await
                .map_err(pg_err)?
                .iter()
                .map(signed_from_row)
                .collect()
        })
        .await
    }
}

#[async_trait]
impl AuditBackend for PostgresAuditLog {
    async fn head(&self, chain: &str) -> Result<Option<Signed>, StoreError> {
        Ok(self.signed("audit_heads", chain).await?.pop())
    }

    async fn append(
        &self,
        records: Vec<AuditRecord>,
        head: &Signed,
        digest: Option<&Signed>,
    ) -> Result<(), StoreError> {
        // Column arrays for one multi-row insert per table (one round trip each).
        let n = records.len();
        let mut chain = Vec::with_capacity(n);
        let mut seq = Vec::with_capacity(n);
        let mut prev_hash = Vec::with_capacity(n);
        let mut hash = Vec::with_capacity(n);
        let mut event_time = Vec::with_capacity(n);
        let mut event_name = Vec::with_capacity(n);
        let mut account = Vec::with_capacity(n);
        let mut region = Vec::with_capacity(n);
        let mut principal_arn = Vec::with_capacity(n);
        let mut username = Vec::with_capacity(n);
        let mut access_key_id = Vec::with_capacity(n);
        let mut error_code = Vec::with_capacity(n);
        let mut read_only = Vec::with_capacity(n);
        let mut event_id = Vec::with_capacity(n);
        let mut request_id = Vec::with_capacity(n);
        let mut resources = Vec::with_capacity(n);
        let mut json = Vec::with_capacity(n);
        let (mut res_chain, mut res_seq, mut res_arn) = (Vec::new(), Vec::new(), Vec::new());
        for r in &records {
            let ix = &r.index;
            let s = to_i64(r.seq)?;
            chain.push(r.chain.as_str());
            seq.push(s);
            prev_hash.push(&r.prev_hash[..]);
            hash.push(&r.hash[..]);
            event_time.push(ix.event_time_millis);
            event_name.push(ix.event_name.as_str());
            account.push(ix.account.as_str());
            region.push(ix.region.as_str());
            principal_arn.push(ix.principal_arn.as_deref());
            username.push(ix.username.as_deref());
            access_key_id.push(ix.access_key_id.as_deref());
            error_code.push(ix.error_code.as_deref());
            read_only.push(ix.read_only);
            event_id.push(ix.event_id.as_str());
            request_id.push(ix.request_id.as_str());
            resources.push(
                serde_json::to_string(&ix.resources)
                    .map_err(|e| StoreError::Internal(e.to_string()))?,
            );
            json.push(r.json.as_str());
            for arn in &ix.resources {
                res_chain.push(r.chain.as_str());
                res_seq.push(s);
                res_arn.push(arn.as_str());
            }
        }
        let head_seq = to_i64(head.seq)?;
        timed(async {
            let mut c = self.db.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let insert = format!(
                "INSERT INTO audit_records ({RECORD_COLUMNS}) SELECT * FROM UNNEST(
                    $1::text[], $2::int8[], $3::bytea[], $4::bytea[], $5::int8[], $6::text[], $7::text[],
                    $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bool[], $14::text[],
                    $15::text[], $16::text[], $17::text[])"
            );
            let args: [&(dyn ToSql + Sync); 17] = [
                &chain, &seq, &prev_hash, &hash, &event_time, &event_name, &account, &region,
                &principal_arn, &username, &access_key_id, &error_code, &read_only, &event_id,
                &request_id, &resources, &json,
            ];
            let st = tx.prepare_cached(&insert).await.map_err(pg_err)?;
            tx.execute(&st, &args).await.map_err(pg_err)?;
            if !res_arn.is_empty() {
                let st = tx
                    .prepare_cached(
                        "INSERT INTO audit_resources (chain, seq, arn) SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[])",
                    )
                    .await
                    .map_err(pg_err)?;
                tx.execute(&st, &[&res_chain, &res_seq, &res_arn])
                    .await
                    .map_err(pg_err)?;
            }
            tx.execute(
                "INSERT INTO audit_heads (chain, seq, hash, time, signature) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, time = EXCLUDED.time, signature = EXCLUDED.signature",
                &[&head.chain, &head_seq, &&head.hash[..], &head.time_millis, &&head.signature[..]],
            )
            .await
            .map_err(pg_err)?;
            if let Some(d) = digest {
                tx.execute(
                    "INSERT INTO audit_digests (chain, seq, hash, time, signature) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (chain, seq) DO UPDATE SET hash = EXCLUDED.hash, time = EXCLUDED.time, signature = EXCLUDED.signature",
                    &[&d.chain, &to_i64(d.seq)?, &&d.hash[..], &d.time_millis, &&d.signature[..]],
                )
                .await
                .map_err(pg_err)?;
            }
            tx.commit().await.map_err(pg_err)
        })
        .await
    }

    async fn chains(&self) -> Result<Vec<String>, StoreError> {
        timed(async {
            let c = self.db.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT chain FROM audit_heads UNION SELECT DISTINCT chain FROM audit_records UNION SELECT chain FROM audit_anchors ORDER BY 1",
                )
                .await
                .map_err(pg_err)?;
            Ok(c.query(&st, &[])
                .await
                .map_err(pg_err)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
        .await
    }

    async fn anchor(&self, chain: &str) -> Result<Option<Signed>, StoreError> {
        Ok(self.signed("audit_anchors", chain).await?.pop())
    }

    async fn digests(&self, chain: &str) -> Result<Vec<Signed>, StoreError> {
        self.signed("audit_digests", chain).await
    }

    async fn records(
        &self,
        chain: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let after = to_i64(after_seq)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        timed(async {
            let c = self.db.client().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {RECORD_COLUMNS} FROM audit_records WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                ))
                .await
                .map_err(pg_err)?;
            c.query(&st, &[&chain, &after, &limit])
                .await
                .map_err(pg_err)?
                .iter()
                .map(record_from_row)
                .collect()
        })
        .await
    }

    async fn lookup(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let mut sql = format!("SELECT {RECORD_COLUMNS} FROM audit_records a WHERE TRUE");
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut eq = |col: &str, v: &Option<String>, sql: &mut String| {
            if let Some(v) = v {
                args.push(Box::new(v.clone()));
                sql.push_str(&format!(" AND a.{col} = ${}", args.len()));
            }
        };
        eq("account", &q.account, &mut sql);
        eq("region", &q.region, &mut sql);
        eq("event_name", &q.event_name, &mut sql);
        eq("principal_arn", &q.principal_arn, &mut sql);
        eq("username", &q.username, &mut sql);
        eq("access_key_id", &q.access_key_id, &mut sql);
        eq("error_code", &q.error_code, &mut sql);
        eq("event_id", &q.event_id, &mut sql);
        if let Some(t) = q.start_millis {
            args.push(Box::new(t));
            sql.push_str(&format!(" AND a.event_time >= ${}", args.len()));
        }
        if let Some(t) = q.end_millis {
            args.push(Box::new(t));
            sql.push_str(&format!(" AND a.event_time <= ${}", args.len()));
        }
        if let Some(ro) = q.read_only {
            args.push(Box::new(ro));
            sql.push_str(&format!(" AND a.read_only = ${}", args.len()));
        }
        if let Some(arn) = &q.resource_arn {
            args.push(Box::new(arn.clone()));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM audit_resources r WHERE r.arn = ${} AND r.chain = a.chain AND r.seq = a.seq)",
                args.len()
            ));
        }
        if let Some((t, chain, seq)) = &q.before {
            args.push(Box::new(*t));
            args.push(Box::new(chain.clone()));
            args.push(Box::new(to_i64(*seq)?));
            let n = args.len();
            sql.push_str(&format!(
                " AND (a.event_time, a.chain, a.seq) < (${}, ${}, ${})",
                n - 2,
                n - 1,
                n
            ));
        }
        args.push(Box::new(i64::try_from(q.limit).unwrap_or(i64::MAX)));
        sql.push_str(&format!(
            " ORDER BY a.event_time DESC, a.chain DESC, a.seq DESC LIMIT ${}",
            args.len()
        ));
        timed(async {
            let c = self.db.client().await?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
            c.query(sql.as_str(), &refs)
                .await
                .map_err(pg_err)?
                .iter()
                .map(record_from_row)
                .collect()
        })
        .await
    }

    async fn prune(
        &self,
        chain: &str,
        through_seq: u64,
        anchor: &Signed,
    ) -> Result<u64, StoreError> {
        let through = to_i64(through_seq)?;
        let anchor_seq = to_i64(anchor.seq)?;
        timed(async {
            let mut c = self.db.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let n = tx
                .execute(
                    "DELETE FROM audit_records WHERE chain = $1 AND seq <= $2",
                    &[&chain, &through],
                )
                .await
                .map_err(pg_err)?;
            for sql in [
                "DELETE FROM audit_resources WHERE chain = $1 AND seq <= $2",
                "DELETE FROM audit_digests WHERE chain = $1 AND seq <= $2",
            ] {
                tx.execute(sql, &[&chain, &through]).await.map_err(pg_err)?;
            }
            tx.execute(
                "INSERT INTO audit_anchors (chain, seq, hash, time, signature) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, time = EXCLUDED.time, signature = EXCLUDED.signature",
                &[&anchor.chain, &anchor_seq, &&anchor.hash[..], &anchor.time_millis, &&anchor.signature[..]],
            )
            .await
            .map_err(pg_err)?;
            tx.commit().await.map_err(pg_err)?;
            Ok(n)
        })
        .await
    }

    async fn last_seq_before(
        &self,
        chain: &str,
        before_millis: i64,
    ) -> Result<Option<u64>, StoreError> {
        let v: Option<i64> = timed(async {
            let c = self.db.client().await?;
            // The prefix of the chain whose records are all older than the cut-off: up to the
            // record before the first one at or after it.
            let first_new: Option<i64> = c
                .query_one(
                    "SELECT MIN(seq) FROM audit_records WHERE chain = $1 AND event_time >= $2",
                    &[&chain, &before_millis],
                )
                .await
                .map_err(pg_err)?
                .get(0);
            let last: Option<i64> = match first_new {
                Some(f) => c
                    .query_one(
                        "SELECT MAX(seq) FROM audit_records WHERE chain = $1 AND seq < $2",
                        &[&chain, &f],
                    )
                    .await
                    .map_err(pg_err)?
                    .get(0),
                None => c
                    .query_one(
                        "SELECT MAX(seq) FROM audit_records WHERE chain = $1",
                        &[&chain],
                    )
                    .await
                    .map_err(pg_err)?
                    .get(0),
            };
            Ok(last)
        })
        .await?;
        v.map(seq_of).transpose()
    }
}
