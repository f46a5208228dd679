//! The LDAP / Active Directory connector on the settings page: configure,
//! "test connection" (each step up to the first failure) and "sync now".

use super::settings::{SettingsForm, SettingsPage, last_run};
use super::{FormData, Signed, fail};
use crate::AppState;
use crate::error::FORM_INVALID;
use crate::pages::{render, see_other};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use mdm_core::CoreError;
use mdm_core::directory::{ConnectorSettings, DirectorySecurity, SyncTrigger};
use mdm_core::tenants::Tenant;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/t/{slug}/settings/directory", post(configure))
        .route("/admin/t/{slug}/settings/directory/test", post(test))
        .route("/admin/t/{slug}/settings/directory/sync", post(sync))
}

/// What the page shows of the connector, and the form's values and errors.
#[derive(Default)]
pub struct DirectorySection {
    pub configured: bool,
    pub url: String,
    pub bind_dn: String,
    pub base_dn: String,
    pub user_filter: String,
    pub group_filter: String,
    pub interval_minutes: String,
    pub page_size: String,
    /// `none`, `starttls`, `ldaps`, or empty for the URL's default.
    pub security: String,
    pub has_ca: bool,
    pub enabled: bool,
    pub last_sync: String,
    pub errors: Vec<(String, String)>,
    pub steps: Vec<(String, bool, String)>,
    pub result: Option<String>,
}

impl DirectorySection {
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

pub async fn section(
    s: &AppState,
    signed: &Signed,
    tenant: &Tenant,
) -> Result<DirectorySection, CoreError> {
    let actor = signed.actor();
    match s.core.directory_connector(&actor, tenant).await {
        Ok(c) => {
            let runs = s
                .core
                .directory_runs(&actor, tenant, Some(1))
                .await
                .unwrap_or_default();
            Ok(DirectorySection {
                configured: true,
                url: c.url,
                bind_dn: c.bind_dn,
                base_dn: c.base_dn,
                user_filter: c.user_filter,
                group_filter: c.group_filter.unwrap_or_default(),
                interval_minutes: (c.sync_interval_secs / 60).to_string(),
                page_size: c.page_size.to_string(),
                security: c.security.as_str().to_string(),
                has_ca: c.ca_pem.is_some(),
                enabled: c.enabled,
                last_sync: runs.first().map_or_else(
                    || "never".into(),
                    |r| format!("{} ({})", last_run(Some(r.finished_at)), r.status.as_str()),
                ),
                ..DirectorySection::default()
            })
        }
        Err(CoreError::NotFound(_)) => Ok(DirectorySection {
            user_filter: "(objectClass=inetOrgPerson)".into(),
            interval_minutes: "60".into(),
            page_size: "500".into(),
            enabled: true,
            last_sync: "never".into(),
            ..DirectorySection::default()
        }),
        Err(e) => Err(e),
    }
}

/// The connector settings of the form; an empty CA field keeps the stored CA.
fn settings_of(
    form: &FormData,
    stored_ca: Option<String>,
) -> Result<ConnectorSettings, (String, String)> {
    let opt = |k: &str| Some(form.get(k).to_string()).filter(|v| !v.is_empty());
    let minutes = match form.get("interval_minutes") {
        "" => None,
        m => Some(
            m.parse::<i64>().map_err(|_| {
                (
                    "sync_interval_secs".to_string(),
                    "enter whole minutes".to_string(),
                )
            })? * 60,
        ),
    };
    Ok(ConnectorSettings {
        url: form.get("url").to_string(),
        security: match form.get("security") {
            "" => None,
            other => Some(DirectorySecurity::parse(other).ok_or((
                "security".to_string(),
                "choose none, StartTLS or LDAPS".to_string(),
            ))?),
        },
        bind_dn: form.get("bind_dn").to_string(),
        bind_password: Some(form.raw("bind_password").to_string()).filter(|p| !p.is_empty()),
        base_dn: form.get("base_dn").to_string(),
        user_filter: opt("user_filter"),
        group_filter: opt("group_filter"),
        attributes: Default::default(),
        page_size: match form.get("page_size") {
            "" => None,
            n => Some(n.parse::<u32>().map_err(|_| {
                (
                    "page_size".to_string(),
                    "enter a whole number of entries".to_string(),
                )
            })?),
        },
        sync_interval_secs: minutes,
        timeout_secs: None,
        ca_pem: Some(form.raw("ca_pem").trim().to_string())
            .filter(|c| !c.is_empty())
            .or(stored_ca),
        enabled: Some(form.checked("enabled")),
    })
}

fn keep_form(page: &mut SettingsPage, form: &FormData) {
    let d = &mut page.directory;
    d.url = form.get("url").to_string();
    d.bind_dn = form.get("bind_dn").to_string();
    d.base_dn = form.get("base_dn").to_string();
    d.user_filter = form.get("user_filter").to_string();
    d.group_filter = form.get("group_filter").to_string();
    d.interval_minutes = form.get("interval_minutes").to_string();
    d.security = form.get("security").to_string();
    d.page_size = form.get("page_size").to_string();
    d.enabled = form.checked("enabled");
}

async fn configure(
    State(s): State<AppState>,
    SettingsForm {
        signed,
        form,
        tenant,
        mut page,
    }: SettingsForm,
) -> Response {
    keep_form(&mut page, &form);
    let stored_ca = match s.core.directory_connector(&signed.actor(), &tenant).await {
        Ok(c) => c.ca_pem,
        Err(_) => None,
    };
    let settings = match settings_of(&form, stored_ca) {
        Ok(x) => x,
        Err(e) => {
            page.directory.errors.push(e);
            return render(FORM_INVALID, &page);
        }
    };
    match s
        .core
        .set_directory_connector(&signed.actor(), &tenant, settings)
        .await
    {
        Ok(_) => see_other(
            &format!("/admin/t/{}/settings?saved=directory", tenant.slug),
            None,
        ),
        Err(CoreError::Invalid { field, message }) => {
            page.directory.errors.push((field, message));
            render(FORM_INVALID, &page)
        }
        Err(e) => fail(e),
    }
}

async fn test(
    State(s): State<AppState>,
    SettingsForm {
        signed,
        tenant,
        mut page,
        ..
    }: SettingsForm,
) -> Response {
    match s.core.test_directory(&signed.actor(), &tenant).await {
        Ok(report) => {
            page.directory.steps = report
                .steps
                .into_iter()
                .map(|st| (st.step, st.ok, st.message))
                .collect();
            page.directory.result = Some(match (report.ok, report.matched) {
                (true, Some(n)) => format!("Connection works: the filter matches {n} entries."),
                (true, None) => "Connection works.".into(),
                (false, _) => "The test failed at the step marked below.".into(),
            });
            let status = if report.ok {
                StatusCode::OK
            } else {
                StatusCode::BAD_GATEWAY
            };
            render(status, &page)
        }
        Err(CoreError::NotFound(_)) => {
            page.directory.result = Some("Configure the connector first.".into());
            render(FORM_INVALID, &page)
        }
        Err(e) => fail(e),
    }
}

async fn sync(
    State(s): State<AppState>,
    SettingsForm {
        signed,
        tenant,
        mut page,
        ..
    }: SettingsForm,
) -> Response {
    match s
        .core
        .sync_directory(&signed.actor(), &tenant, SyncTrigger::Manual)
        .await
    {
        Ok(run) => {
            page.directory.result = Some(match run.error {
                None => format!(
                    "Synced {} entries: {} created, {} updated, {} disabled, {} re-enabled, {} unchanged.",
                    run.entries,
                    run.created,
                    run.updated,
                    run.disabled,
                    run.reenabled,
                    run.unchanged
                ),
                Some(e) => format!("The sync failed and changed nothing: {e}"),
            });
            render(StatusCode::OK, &page)
        }
        Err(CoreError::NotFound(_)) => {
            page.directory.result = Some("Configure the connector first.".into());
            render(FORM_INVALID, &page)
        }
        Err(CoreError::Invalid { message, .. } | CoreError::Conflict { message, .. }) => {
            page.directory.result = Some(message);
            render(FORM_INVALID, &page)
        }
        Err(e) => fail(e),
    }
}
