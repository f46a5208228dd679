//! The connector's use cases: configure, show, test connection, sign in.

use super::connector::{
    ConnectorSettings, DirectoryConnector, DirectorySecurity, validate_settings,
};
use super::entry::{EntryProblem, escape_filter_value, map_entry, stable_id_filter};
use super::{BindOutcome, DirectoryConfig, DirectoryError};
use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::signin::PasswordCheck;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::User;
use serde::Serialize;
use zeroize::Zeroizing;

/// One step of "test connection".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TestStep {
    /// `connect`, `tls`, `bind`, `base_dn`, `search`, `attributes`.
    pub step: String,
    pub ok: bool,
    pub message: String,
}

/// A mapped attribute some matched entries lack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MissingAttribute {
    /// The user field it fills (`email`, `login_name`, `stable_id`).
    pub role: String,
    pub attribute: String,
    pub entries_without: i64,
    pub example_dn: String,
}

/// What "test connection" found: each step up to the first failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DirectoryTestReport {
    pub ok: bool,
    pub steps: Vec<TestStep>,
    /// Stable code of the failure (`directory_tls_failed`, …).
    pub error_code: Option<String>,
    /// Entries the user (and group) filter matches.
    pub matched: Option<i64>,
    pub missing_attributes: Vec<MissingAttribute>,
    /// Up to three matched entries' DNs.
    pub sample_dns: Vec<String>,
}

/// Associated data that ties a sealed bind password to its tenant.
fn bind_password_aad(c: &DirectoryConnector) -> String {
    format!("directory-bind-password:{}", c.tenant_id)
}

fn step(step: &str, ok: bool, message: impl Into<String>) -> TestStep {
    TestStep {
        step: step.into(),
        ok,
        message: message.into(),
    }
}

impl Core {
    /// The tenant's connector (its bind password is never shown).
    pub async fn directory_connector(
        &self,
        actor: &Actor,
        tenant: &Tenant,
    ) -> CoreResult<DirectoryConnector> {
        actor.require_tenant(tenant.id)?;
        self.store
            .directory_connector(tenant.id)
            .await?
            .ok_or(CoreError::NotFound("directory connector"))
    }

    /// Creates or replaces the tenant's connector. The bind password is
    /// sealed by the vault; leaving it out keeps the stored one.
    pub async fn set_directory_connector(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        settings: ConnectorSettings,
    ) -> CoreResult<DirectoryConnector> {
        actor.require_tenant(tenant.id)?;
        let now = self.now();
        let valid = validate_settings(tenant.id, settings, now)?;
        let old = self.store.directory_connector(tenant.id).await?;
        let mut c = valid.connector;
        c.sealed_bind_password = match (valid.bind_password, &old) {
            (Some(pw), _) => self
                .vault
                .seal(bind_password_aad(&c).as_bytes(), pw.as_bytes())
                .map_err(|e| CoreError::Store(format!("sealing the bind password: {e}")))?,
            (None, Some(old)) => old.sealed_bind_password.clone(),
            (None, None) => {
                return Err(CoreError::invalid(
                    "bind_password",
                    "required when the connector is first configured",
                ));
            }
        };
        if let Some(old) = &old {
            c.created_at = old.created_at;
        }
        let audit = AuditEntry::new(
            Some(tenant.id),
            now,
            actor,
            AuditAction::DirectoryConfigured,
            ("directory", tenant.id.to_string()),
        )
        .details(serde_json::json!({
            "url": c.url, "security": c.security.as_str(), "bind_dn": c.bind_dn,
            "base_dn": c.base_dn, "user_filter": c.user_filter, "group_filter": c.group_filter,
            "enabled": c.enabled, "created": old.is_none(),
            "bind_password_changed": old.is_none_or(|o| o.sealed_bind_password != c.sealed_bind_password),
        }));
        self.store.put_directory_connector(&c, &audit).await?;
        Ok(c)
    }

    /// What the adapter needs: the connector with its password opened.
    pub(crate) fn directory_config(&self, c: &DirectoryConnector) -> CoreResult<DirectoryConfig> {
        let pw = self
            .vault
            .open(bind_password_aad(c).as_bytes(), &c.sealed_bind_password)
            .map_err(|e| CoreError::Store(format!("opening the bind password: {e}")))?;
        let pw = String::from_utf8(pw.to_vec())
            .map_err(|_| CoreError::Store("the stored bind password is not UTF-8".into()))?;
        Ok(DirectoryConfig {
            url: c.url.clone(),
            security: c.security,
            bind_dn: c.bind_dn.clone(),
            bind_password: Zeroizing::new(pw),
            base_dn: c.base_dn.clone(),
            page_size: c.page_size,
            timeout: std::time::Duration::from_secs(u64::from(c.timeout_secs)),
            ca_pem: c.ca_pem.clone(),
        })
    }

    /// Tests the stored connector step by step — connect, TLS, service
    /// bind, base DN, search with the filters, mapped attributes — and says
    /// exactly which step failed and how many entries the filter matches.
    pub async fn test_directory(
        &self,
        actor: &Actor,
        tenant: &Tenant,
    ) -> CoreResult<DirectoryTestReport> {
        let c = self.directory_connector(actor, tenant).await?;
        let cfg = self.directory_config(&c)?;
        let mut report = DirectoryTestReport {
            ok: false,
            steps: Vec::new(),
            error_code: None,
            matched: None,
            missing_attributes: Vec::new(),
            sample_dns: Vec::new(),
        };
        let mut passed = vec![("connect", format!("reached {}", c.url))];
        if c.security != DirectorySecurity::None {
            passed.push((
                "tls",
                format!("{} handshake and certificate check", c.security.as_str()),
            ));
        }
        passed.push(("bind", format!("bound as {}", c.bind_dn)));
        passed.push(("base_dn", format!("{} exists", c.base_dn)));
        let fail = |mut report: DirectoryTestReport, e: DirectoryError| {
            let at = passed
                .iter()
                .position(|(s, _)| *s == e.step())
                .unwrap_or(passed.len());
            report.steps = passed[..at]
                .iter()
                .map(|(s, m)| step(s, true, m.clone()))
                .collect();
            report.steps.push(step(e.step(), false, e.to_string()));
            report.error_code = Some(e.code().to_string());
            report
        };
        if let Err(e) = self.directory.check(&cfg).await {
            return Ok(fail(report, e));
        }
        let filter = c.search_filter();
        let entries = match self
            .directory
            .search(&cfg, &filter, &c.attributes.requested())
            .await
        {
            Ok(entries) => entries,
            Err(e) => return Ok(fail(report, e)),
        };
        report.steps = passed
            .iter()
            .map(|(s, m)| step(s, true, m.clone()))
            .collect();
        report.matched = Some(entries.len() as i64);
        report.steps.push(step(
            "search",
            true,
            format!("{filter} matches {} entries", entries.len()),
        ));
        report.sample_dns = entries.iter().take(3).map(|e| e.dn.clone()).collect();
        for e in &entries {
            if let Err(EntryProblem::Missing { role, attribute }) = map_entry(&c.attributes, e) {
                match report
                    .missing_attributes
                    .iter_mut()
                    .find(|m| m.role == role)
                {
                    Some(m) => m.entries_without += 1,
                    None => report.missing_attributes.push(MissingAttribute {
                        role: role.into(),
                        attribute,
                        entries_without: 1,
                        example_dn: e.dn.clone(),
                    }),
                }
            }
        }
        if report.missing_attributes.is_empty() {
            report.ok = true;
            report.steps.push(step(
                "attributes",
                true,
                "every matched entry has the mapped attributes",
            ));
        } else {
            let what: Vec<String> = report
                .missing_attributes
                .iter()
                .map(|m| {
                    format!(
                        "{} entries have no '{}' ({})",
                        m.entries_without, m.attribute, m.role
                    )
                })
                .collect();
            report
                .steps
                .push(step("attributes", false, what.join("; ")));
            report.error_code = Some("directory_attributes_missing".into());
        }
        Ok(report)
    }

    /// An administrator's check of a user's password as sign-in would do it
    /// (for directory users: search and bind). `NotFound` for an unknown email.
    pub async fn check_user_password(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        email: &str,
        password: &str,
    ) -> CoreResult<PasswordCheck> {
        actor.require_tenant(tenant.id)?;
        let email = crate::users::normalize_email(email)?;
        let user = self
            .store
            .user_by_email(tenant.id, &email)
            .await?
            .ok_or(CoreError::NotFound("user"))?;
        self.verify_user_password(tenant, &user, password).await
    }

    /// Checks a directory user's network credentials: finds the user's
    /// entry by its stable id (or login name) with the service account,
    /// then binds as that DN with `password`. Nothing is stored.
    pub(crate) async fn verify_directory_password(
        &self,
        tenant: &Tenant,
        user: &User,
        password: &str,
    ) -> CoreResult<PasswordCheck> {
        // The anonymous-bind trap: an empty password "binds" as nobody.
        if password.is_empty() {
            return Ok(PasswordCheck::Invalid);
        }
        let Some(c) = self.store.directory_connector(tenant.id).await? else {
            return Ok(PasswordCheck::DirectoryUnavailable);
        };
        if !c.enabled {
            return Ok(PasswordCheck::DirectoryUnavailable);
        }
        let who = match (&user.external_id, &user.login_name) {
            (Some(id), _) => stable_id_filter(&c.attributes, id),
            (None, Some(login)) => format!(
                "({}={})",
                c.attributes.login_name,
                escape_filter_value(login.as_bytes())
            ),
            (None, None) => return Ok(PasswordCheck::Invalid),
        };
        let filter = format!("(&{}{who})", c.search_filter());
        let cfg = self.directory_config(&c)?;
        let found = self
            .directory
            .search(&cfg, &filter, std::slice::from_ref(&c.attributes.stable_id))
            .await;
        let entries = match found {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(tenant = %tenant.slug, error = %e, "directory sign-in: search failed");
                return Ok(PasswordCheck::DirectoryUnavailable);
            }
        };
        // Gone from the directory, out of the group, or ambiguous.
        let [entry] = entries.as_slice() else {
            return Ok(PasswordCheck::Invalid);
        };
        match self.directory.bind(&cfg, &entry.dn, password).await {
            Ok(BindOutcome::Accepted) => Ok(PasswordCheck::Valid),
            Ok(BindOutcome::Rejected) => Ok(PasswordCheck::Invalid),
            Err(e) => {
                tracing::warn!(tenant = %tenant.slug, error = %e, "directory sign-in: bind failed");
                Ok(PasswordCheck::DirectoryUnavailable)
            }
        }
    }
}
