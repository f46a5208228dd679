//! Certificate authorities, one-time SCEP challenges and issued certificates.

use crate::audit::insert_audit;
use crate::db::DbConn;
use crate::db::DbRow;
use crate::rows::Row;
use crate::sql::{Arg, Sql, to_millis};
use crate::store::{Backend, SqlStore, commit};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::audit::AuditEntry;
use mdm_core::ids::CaId;
use mdm_core::ids::TenantId;
use mdm_core::pki::{CaRecord, CertificateQuery, CertificateRecord, Redeem, ScepChallenge};
use mdm_core::ports::{PkiStore, StoreResult};
use mdm_core::profile_signer::{ProfileSignerRecord, SignerStored};
use mdm_core::signing_identity::SigningIdentityRecord;
use mdm_core::users::Page;
use time::OffsetDateTime;

const CA_COLS: &str = "id, tenant_id, subject, cert_der, sealed_key, not_after, created_at, active";
const SIGNER_COLS: &str = "tenant_id, ca_id, serial, cert_der, sealed_key, not_after, created_at";
const SIGNER_COLS_S: &str =
    "s.tenant_id, s.ca_id, s.serial, s.cert_der, s.sealed_key, s.not_after, s.created_at";
const IDENTITY_COLS: &str = "tenant_id, cert_der, chain_pem, sealed_key, fingerprint_sha256, subject, issuer, \
                             key_kind, not_before, not_after, uploaded_at, uploaded_by";
const CHALLENGE_COLS: &str =
    "id, tenant_id, registration, challenge_hash, created_at, expires_at, used_at";
pub(crate) const CERT_COLS: &str = "tenant_id, serial, ca_id, subject, fingerprint_sha256, not_before, not_after, issued_at, \
                         registration, device_id, renewal_of, revoked_at, cert_der";

fn ca_from_row(row: &DbRow) -> Result<CaRecord, StoreError> {
    let r = Row(row);
    Ok(CaRecord {
        id: r.parse("id")?,
        tenant_id: r.parse("tenant_id")?,
        subject: r.text("subject")?,
        cert_der: r.blob("cert_der")?,
        sealed_key: r.blob("sealed_key")?,
        not_after: r.time("not_after")?,
        created_at: r.time("created_at")?,
        active: r.flag("active")?,
    })
}

/// The unrevoked signer of `ca` that lasts longest.
fn current_signer(tenant: TenantId, ca: CaId) -> Sql {
    Sql::new(format!(
        "SELECT {SIGNER_COLS_S} FROM profile_signers s \
         JOIN certificates c ON c.tenant_id = s.tenant_id AND c.serial = s.serial \
         WHERE s.tenant_id = $1 AND s.ca_id = $2 AND c.revoked_at IS NULL \
         ORDER BY s.not_after DESC LIMIT 1"
    ))
    .arg(tenant)
    .arg(ca)
}

fn signer_from_row(row: &DbRow) -> Result<ProfileSignerRecord, StoreError> {
    let r = Row(row);
    Ok(ProfileSignerRecord {
        tenant_id: r.parse("tenant_id")?,
        ca_id: r.parse("ca_id")?,
        serial: r.text("serial")?,
        cert_der: r.blob("cert_der")?,
        sealed_key: r.blob("sealed_key")?,
        not_after: r.time("not_after")?,
        created_at: r.time("created_at")?,
    })
}

fn identity_from_row(row: &DbRow) -> Result<SigningIdentityRecord, StoreError> {
    let r = Row(row);
    Ok(SigningIdentityRecord {
        tenant_id: r.parse("tenant_id")?,
        cert_der: r.blob("cert_der")?,
        chain_pem: r.text("chain_pem")?,
        sealed_key: r.blob("sealed_key")?,
        fingerprint_sha256: r.text("fingerprint_sha256")?,
        subject: r.text("subject")?,
        issuer: r.text("issuer")?,
        key_kind: r.text("key_kind")?,
        not_before: r.time("not_before")?,
        not_after: r.time("not_after")?,
        uploaded_at: r.time("uploaded_at")?,
        uploaded_by: r.text("uploaded_by")?,
    })
}

fn challenge_from_row(row: &DbRow) -> Result<ScepChallenge, StoreError> {
    let r = Row(row);
    Ok(ScepChallenge {
        id: r.parse("id")?,
        tenant_id: r.parse("tenant_id")?,
        registration: r.text("registration")?,
        challenge_hash: r.text("challenge_hash")?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
        used_at: r.opt_time("used_at")?,
    })
}

pub(crate) fn cert_from_row(row: &DbRow) -> Result<CertificateRecord, StoreError> {
    let r = Row(row);
    Ok(CertificateRecord {
        serial: r.text("serial")?,
        tenant_id: r.parse("tenant_id")?,
        ca_id: r.parse("ca_id")?,
        subject: r.text("subject")?,
        fingerprint_sha256: r.text("fingerprint_sha256")?,
        not_before: r.time("not_before")?,
        not_after: r.time("not_after")?,
        issued_at: r.time("issued_at")?,
        registration: r.opt_text("registration")?,
        device_id: r.opt_text("device_id")?,
        renewal_of: r.opt_text("renewal_of")?,
        revoked_at: r.opt_time("revoked_at")?,
        cert_der: r.blob("cert_der")?,
    })
}

/// The paging cursor of a certificate: `<issued_at ms>.<serial>`.
fn cursor(c: &CertificateRecord) -> String {
    format!("{}.{}", to_millis(c.issued_at), c.serial)
}

fn parse_cursor(s: &str) -> Option<(i64, &str)> {
    let (ms, serial) = s.split_once('.')?;
    Some((ms.parse().ok()?, serial))
}

/// Marks the challenge used at `now` if it is unused and unexpired, in one
/// statement: of two concurrent redemptions exactly one matches `used_at IS
/// NULL` (PostgreSQL re-checks the row after the first commits; SQLite runs
/// writers one at a time). Otherwise reports why not.
async fn redeem(
    conn: &mut DbConn,
    tenant: TenantId,
    hash: &str,
    now: OffsetDateTime,
) -> StoreResult<Redeem> {
    let redeemed = Sql::new(format!(
        "UPDATE scep_challenges SET used_at = $1 \
         WHERE tenant_id = $2 AND challenge_hash = $3 AND used_at IS NULL AND expires_at > $1 \
         RETURNING {CHALLENGE_COLS}"
    ))
    .arg(now)
    .arg(tenant)
    .arg(hash)
    .fetch_optional_map(&mut *conn, challenge_from_row)
    .await?;
    if let Some(ch) = redeemed {
        return Ok(Redeem::Redeemed(ch));
    }
    let found = Sql::new(format!(
        "SELECT {CHALLENGE_COLS} FROM scep_challenges WHERE tenant_id = $1 AND challenge_hash = $2"
    ))
    .arg(tenant)
    .arg(hash)
    .fetch_optional_map(&mut *conn, challenge_from_row)
    .await?;
    Ok(match found {
        None => Redeem::Unknown,
        Some(ch) if ch.used_at.is_some() => Redeem::Used(ch),
        Some(ch) => Redeem::Expired(ch),
    })
}

pub(crate) async fn insert_certificate(
    conn: &mut DbConn,
    c: &CertificateRecord,
) -> StoreResult<()> {
    let mut sql = Sql::new(format!("INSERT INTO certificates ({CERT_COLS}) VALUES "));
    sql.tuple([
        Arg::from(c.tenant_id),
        c.serial.as_str().into(),
        c.ca_id.into(),
        c.subject.as_str().into(),
        c.fingerprint_sha256.as_str().into(),
        c.not_before.into(),
        c.not_after.into(),
        c.issued_at.into(),
        c.registration.as_deref().into(),
        c.device_id.as_deref().into(),
        c.renewal_of.as_deref().into(),
        c.revoked_at.into(),
        c.cert_der.as_slice().into(),
    ]);
    sql.unique("certificate_serial")
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// The insert of a new one-time challenge.
pub(crate) fn insert_challenge(ch: &ScepChallenge) -> Sql {
    let mut sql = Sql::new(format!(
        "INSERT INTO scep_challenges ({CHALLENGE_COLS}) VALUES "
    ));
    sql.tuple([
        Arg::from(ch.id),
        ch.tenant_id.into(),
        ch.registration.as_str().into(),
        ch.challenge_hash.as_str().into(),
        ch.created_at.into(),
        ch.expires_at.into(),
        ch.used_at.into(),
    ]);
    sql.unique("challenge")
}

#[async_trait]
impl PkiStore for SqlStore {
    async fn create_ca(&self, ca: &CaRecord, audit: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let mut sql = Sql::new(format!(
            "INSERT INTO certificate_authorities ({CA_COLS}) VALUES "
        ));
        sql.tuple([
            Arg::from(ca.id),
            ca.tenant_id.into(),
            ca.subject.as_str().into(),
            ca.cert_der.as_slice().into(),
            ca.sealed_key.as_slice().into(),
            ca.not_after.into(),
            ca.created_at.into(),
            ca.active.into(),
        ]);
        sql.unique("tenant_ca").execute(&mut *tx).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn active_ca(&self, tenant: TenantId) -> StoreResult<Option<CaRecord>> {
        let sql = Sql::new(format!(
            "SELECT {CA_COLS} FROM certificate_authorities WHERE tenant_id = $1 AND active = 1"
        ))
        .arg(tenant);
        sql.fetch_optional_map(&self.pool, ca_from_row).await
    }

    async fn profile_signer(
        &self,
        tenant: TenantId,
        ca: CaId,
    ) -> StoreResult<Option<ProfileSignerRecord>> {
        current_signer(tenant, ca)
            .fetch_optional_map(&self.pool, signer_from_row)
            .await
    }

    async fn create_profile_signer(
        &self,
        signer: &ProfileSignerRecord,
        cert: &CertificateRecord,
        audit: &AuditEntry,
        replacing: Option<&str>,
    ) -> StoreResult<SignerStored> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Writers that replace a signer of this CA take their turns on
            // its row (SQLite's writers already take theirs one at a time).
            Sql::new(
                "SELECT id FROM certificate_authorities WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            )
            .arg(signer.tenant_id)
            .arg(signer.ca_id)
            .fetch_optional(&mut *tx)
            .await?;
        }
        let current = current_signer(signer.tenant_id, signer.ca_id)
            .fetch_optional_map(&mut *tx, signer_from_row)
            .await?;
        if let Some(current) = current
            && Some(current.serial.as_str()) != replacing
        {
            // Nothing was written: ending the transaction frees the lock.
            commit(tx).await?;
            return Ok(SignerStored::Raced(current));
        }
        insert_certificate(&mut tx, cert).await?;
        let mut sql = Sql::new(format!(
            "INSERT INTO profile_signers ({SIGNER_COLS}) VALUES "
        ));
        sql.tuple([
            Arg::from(signer.tenant_id),
            signer.ca_id.into(),
            signer.serial.as_str().into(),
            signer.cert_der.as_slice().into(),
            signer.sealed_key.as_slice().into(),
            signer.not_after.into(),
            signer.created_at.into(),
        ]);
        sql.unique("certificate_serial").execute(&mut *tx).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await?;
        Ok(SignerStored::Stored)
    }

    async fn signing_identity(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Option<SigningIdentityRecord>> {
        Sql::new(format!(
            "SELECT {IDENTITY_COLS} FROM signing_identities WHERE tenant_id = $1"
        ))
        .arg(tenant)
        .fetch_optional_map(&self.pool, identity_from_row)
        .await
    }

    async fn signing_identity_expiries(&self) -> StoreResult<Vec<(String, OffsetDateTime)>> {
        Sql::new(
            "SELECT t.slug, s.not_after FROM signing_identities s \
             JOIN tenants t ON t.id = s.tenant_id ORDER BY t.slug",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let r = Row(row);
            Ok((r.text("slug")?, r.time("not_after")?))
        })
        .collect()
    }

    async fn put_signing_identity(
        &self,
        identity: &SigningIdentityRecord,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let mut sql = Sql::new(format!(
            "INSERT INTO signing_identities ({IDENTITY_COLS}) VALUES "
        ));
        sql.tuple([
            Arg::from(identity.tenant_id),
            identity.cert_der.as_slice().into(),
            identity.chain_pem.as_str().into(),
            identity.sealed_key.as_slice().into(),
            identity.fingerprint_sha256.as_str().into(),
            identity.subject.as_str().into(),
            identity.issuer.as_str().into(),
            identity.key_kind.as_str().into(),
            identity.not_before.into(),
            identity.not_after.into(),
            identity.uploaded_at.into(),
            identity.uploaded_by.as_str().into(),
        ]);
        sql.push(&crate::sql::replace_tenant_row(IDENTITY_COLS, &[]));
        sql.execute(&mut *tx).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn delete_signing_identity(
        &self,
        tenant: TenantId,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let deleted = Sql::new("DELETE FROM signing_identities WHERE tenant_id = $1")
            .arg(tenant)
            .execute(&mut *tx)
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn create_challenge(&self, ch: &ScepChallenge, audit: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_challenge(ch).execute(&mut *tx).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn redeem_challenge(
        &self,
        tenant: TenantId,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Redeem> {
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        redeem(&mut conn, tenant, hash, now).await
    }

    async fn challenge(&self, tenant: TenantId, hash: &str) -> StoreResult<Option<ScepChallenge>> {
        Sql::new(format!(
            "SELECT {CHALLENGE_COLS} FROM scep_challenges WHERE tenant_id = $1 AND challenge_hash = $2"
        ))
        .arg(tenant)
        .arg(hash)
        .fetch_optional_map(&self.pool, challenge_from_row)
        .await
    }

    async fn record_certificate_redeeming(
        &self,
        c: &CertificateRecord,
        hash: &str,
        now: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<Redeem> {
        let mut tx = self.begin_write().await?;
        let outcome = redeem(&mut tx, c.tenant_id, hash, now).await?;
        if !matches!(outcome, Redeem::Redeemed(_)) {
            return Ok(outcome); // rolled back on drop: nothing written
        }
        insert_certificate(&mut tx, c).await?;
        if let Some(registration) = &c.registration {
            // The funnel: the registration's profile got its certificate.
            Sql::new(
                "UPDATE registrations SET status = 'certificate_issued', certificate_issued_at = $1, \
                 updated_at = $1 WHERE tenant_id = $2 AND id = $3 \
                 AND status IN ('pending', 'profile_downloaded')",
            )
            .arg(now)
            .arg(c.tenant_id)
            .arg(registration.as_str())
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await?;
        Ok(outcome)
    }

    async fn record_certificate(
        &self,
        c: &CertificateRecord,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_certificate(&mut tx, c).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn certificate(
        &self,
        tenant: TenantId,
        serial: &str,
    ) -> StoreResult<Option<CertificateRecord>> {
        let sql = Sql::new(format!(
            "SELECT {CERT_COLS} FROM certificates WHERE tenant_id = $1 AND serial = $2"
        ))
        .arg(tenant)
        .arg(serial);
        sql.fetch_optional_map(&self.pool, cert_from_row).await
    }

    async fn certificates(
        &self,
        tenant: TenantId,
        q: &CertificateQuery,
    ) -> StoreResult<Page<CertificateRecord>> {
        let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 1000));
        let mut sql = Sql::new(format!(
            "SELECT {CERT_COLS} FROM certificates WHERE tenant_id = "
        ));
        sql.bind(tenant);
        if let Some(r) = &q.registration {
            sql.push(" AND registration = ").bind(r.as_str());
        }
        if let Some(d) = &q.device_id {
            sql.push(" AND device_id = ").bind(d.as_str());
        }
        match q.valid {
            Some(true) => sql.push(" AND revoked_at IS NULL"),
            Some(false) => sql.push(" AND revoked_at IS NOT NULL"),
            None => &mut sql,
        };
        let after = match q.after.as_deref() {
            Some(c) => Some(parse_cursor(c).ok_or(StoreError::BadCursor)?),
            None => None,
        };
        if let Some((ms, serial)) = after {
            sql.push(" AND (issued_at < ")
                .bind(ms)
                .push(" OR (issued_at = ")
                .bind(ms)
                .push(" AND serial < ")
                .bind(serial)
                .push("))");
        }
        sql.push(" ORDER BY issued_at DESC, serial DESC LIMIT ")
            .bind(limit + 1);
        let mut items = sql
            .one_off()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(cert_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(cursor)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn revoke_certificate(
        &self,
        tenant: TenantId,
        serial: &str,
        at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let sql = Sql::new("UPDATE certificates SET revoked_at = $1 WHERE tenant_id = $2 AND serial = $3 AND revoked_at IS NULL")
            .arg(at)
            .arg(tenant)
            .arg(serial);
        if sql.execute(&mut *tx).await? == 0 {
            // Already revoked (keep the first time and write no second entry), or absent.
            let exists =
                Sql::new("SELECT serial FROM certificates WHERE tenant_id = $1 AND serial = $2")
                    .arg(tenant)
                    .arg(serial)
                    .fetch_optional(&mut *tx)
                    .await?;
            return if exists.is_some() {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            };
        }
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        assert_eq!(
            parse_cursor("1700000000000.0a1b"),
            Some((1_700_000_000_000, "0a1b"))
        );
        assert_eq!(parse_cursor("x.0a1b"), None);
        assert_eq!(parse_cursor("nodot"), None);
    }
}
