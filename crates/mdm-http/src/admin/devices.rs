//! Devices: the list (filters platform, status, user, last seen; keyset
//! paging) and each device's page: identity, Apple channels, statuses over
//! time (from the audit trail), commands with their results, certificates.
//! The lifecycle actions are in `device_actions.rs`.

use super::{Nav, Signed, enc, fail, tenant_page, when, when_opt};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use mdm_core::audit::AuditQuery;
use mdm_core::commands::CommandQuery;
use mdm_core::devices::{Device, DeviceQuery, DeviceStatus};
use mdm_core::pki::CertificateQuery;
use mdm_core::registrations::DevicePlatform;
use mdm_core::users::UserQuery;
use mdm_core::{CoreError, DeviceId};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/t/{slug}/devices", get(list))
        .route("/admin/t/{slug}/devices/{id}", get(detail))
        .merge(super::device_actions::router())
}

/// What to call a device in lists.
pub fn device_name(d: &Device) -> String {
    d.device_name
        .clone()
        .or_else(|| d.model_name.clone())
        .or_else(|| d.serial_number.clone())
        .or_else(|| d.udid.clone())
        .unwrap_or_else(|| d.id.to_string())
}

/// The list's query string; unknown values mean "any".
#[derive(serde::Deserialize, Default)]
pub struct ListParams {
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub status: String,
    /// The user's email.
    #[serde(default)]
    pub user: String,
    /// `1d`, `7d`, `30d` (seen within) or `stale30` (not seen for 30 days).
    #[serde(default)]
    pub seen: String,
    #[serde(default)]
    pub after: String,
    /// Set after a deletion, for the message.
    #[serde(default)]
    pub deleted: Option<u8>,
}

pub struct DeviceRow {
    pub id: String,
    pub name: String,
    pub platform: &'static str,
    pub status: &'static str,
    pub user: String,
    pub serial: String,
    pub os: String,
    pub last_seen: String,
}

#[derive(Template)]
#[template(path = "admin/devices.html")]
pub struct ListPage {
    pub title: &'static str,
    pub nav: Nav,
    pub p: ListParams,
    pub devices: Vec<DeviceRow>,
    pub next: Option<String>,
    pub user_error: Option<String>,
    pub statuses: &'static [DeviceStatus],
    pub platforms: &'static [DevicePlatform],
}

impl ListParams {
    /// The store query of these filters, at `now`.
    pub fn query(&self, now: time::OffsetDateTime) -> DeviceQuery {
        let days = |d| now - time::Duration::days(d);
        let (seen_after, seen_before) = match self.seen.as_str() {
            "1d" => (Some(days(1)), None),
            "7d" => (Some(days(7)), None),
            "30d" => (Some(days(30)), None),
            "stale30" => (None, Some(days(30))),
            _ => (None, None),
        };
        DeviceQuery {
            platform: DevicePlatform::parse(&self.platform),
            status: DeviceStatus::parse(&self.status),
            user_id: None,
            seen_after,
            seen_before,
            limit: Some(50),
            after: Some(self.after.clone()).filter(|a| !a.is_empty()),
        }
    }
}

/// Renders one page of the device list: the render path the benchmark times.
pub async fn list_page(
    s: &AppState,
    signed: &Signed,
    tenant: &mdm_core::tenants::Tenant,
    nav: Nav,
    p: ListParams,
) -> Result<ListPage, CoreError> {
    let actor = signed.actor();
    let mut query = p.query(s.core.now());
    let mut user_error = None;
    if !p.user.is_empty() {
        let q = UserQuery {
            q: Some(p.user.clone()),
            limit: Some(2),
            ..UserQuery::default()
        };
        let found = s.core.users(&actor, tenant, &q).await?;
        match found
            .items
            .iter()
            .find(|u| u.email == p.user.to_lowercase())
        {
            Some(u) => query.user_id = Some(u.id),
            None => user_error = Some(format!("No user has the email {}.", p.user)),
        }
    }
    let page = if user_error.is_some() {
        mdm_core::users::Page {
            items: Vec::new(),
            next: None,
        }
    } else {
        s.core.devices(&actor, tenant, &query).await?
    };
    let mut ids: Vec<_> = page.items.iter().filter_map(|d| d.user_id).collect();
    ids.sort();
    ids.dedup();
    let users: HashMap<_, _> = s
        .core
        .users_by_ids(&actor, tenant, &ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u.email))
        .collect();
    let next = page.next.as_ref().map(|n| {
        format!(
            "?platform={}&status={}&user={}&seen={}&after={}",
            enc(&p.platform),
            enc(&p.status),
            enc(&p.user),
            enc(&p.seen),
            enc(n)
        )
    });
    let devices = page
        .items
        .iter()
        .map(|d| DeviceRow {
            id: d.id.to_string(),
            name: device_name(d),
            platform: d.platform.as_str(),
            status: d.status.as_str(),
            user: d
                .user_id
                .and_then(|u| users.get(&u).cloned())
                .unwrap_or_default(),
            serial: d.serial_number.clone().unwrap_or_default(),
            os: d.os_version.clone().unwrap_or_default(),
            last_seen: when_opt(d.last_seen_at),
        })
        .collect();
    Ok(ListPage {
        title: "Devices",
        nav,
        p,
        devices,
        next,
        user_error,
        statuses: DeviceStatus::ALL,
        platforms: DevicePlatform::ALL,
    })
}

async fn list(
    State(s): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    Query(p): Query<ListParams>,
) -> Response {
    let (tenant, nav) = match tenant_page(&s, &signed, &slug, "devices").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match list_page(&s, &signed, &tenant, nav, p).await {
        Ok(page) => crate::pages::render(StatusCode::OK, &page),
        Err(e) => fail(e),
    }
}

struct Channel {
    id: String,
    channel: &'static str,
    topic: String,
    enabled: bool,
    last_seen: String,
    last_push: String,
}

struct HistoryRow {
    at: String,
    action: String,
    actor: String,
}

struct CommandRow {
    uuid: String,
    request_type: String,
    state: String,
    queued: String,
    result_at: String,
    errors: String,
}

struct CertRow {
    serial: String,
    subject: String,
    not_after: String,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "admin/device.html")]
struct DetailPage {
    title: String,
    nav: Nav,
    id: String,
    identity: Vec<(&'static str, String)>,
    status: &'static str,
    user_id: String,
    user: String,
    channels: Vec<Channel>,
    history: Vec<HistoryRow>,
    commands: Vec<CommandRow>,
    certificates: Vec<CertRow>,
    apple: bool,
    /// An erased device takes no more commands (the core refuses them): only
    /// Delete is offered.
    wiped: bool,
    flash: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct DetailParams {
    done: Option<String>,
}

async fn detail(
    State(s): State<AppState>,
    signed: Signed,
    Path((slug, id)): Path<(String, String)>,
    Query(dp): Query<DetailParams>,
) -> Response {
    let (tenant, nav) = match tenant_page(&s, &signed, &slug, "devices").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<DeviceId>() else {
        return fail(CoreError::NotFound("device"));
    };
    match detail_page(&s, &signed, &tenant, nav, id, dp.done).await {
        Ok(page) => crate::pages::render(StatusCode::OK, &page),
        Err(e) => fail(e),
    }
}

async fn detail_page(
    s: &AppState,
    signed: &Signed,
    tenant: &mdm_core::tenants::Tenant,
    nav: Nav,
    id: DeviceId,
    done: Option<String>,
) -> Result<DetailPage, CoreError> {
    let actor = signed.actor();
    let d = s.core.device(&actor, tenant, id).await?;
    let history = AuditQuery {
        device_id: Some(id.to_string()),
        limit: Some(200),
        ..AuditQuery::default()
    };
    let history = s.core.audit(&actor, Some(tenant), &history).await?.items;
    let commands = CommandQuery {
        limit: Some(100),
        ..CommandQuery::default()
    };
    let commands = s
        .core
        .device_commands(&actor, tenant, id, &commands)
        .await?
        .items;
    let certs = CertificateQuery {
        device_id: Some(id.to_string()),
        limit: Some(50),
        ..CertificateQuery::default()
    };
    let certs = s.core.certificates(&actor, tenant, &certs).await?.items;
    let user = match d.device.user_id {
        Some(u) => s
            .core
            .user(&actor, tenant, u)
            .await
            .map(|u| u.email)
            .unwrap_or_default(),
        None => String::new(),
    };
    let dev = &d.device;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(DetailPage {
        title: device_name(dev),
        nav,
        id: dev.id.to_string(),
        identity: vec![
            ("Platform", dev.platform.as_str().to_string()),
            ("UDID", opt(&dev.udid)),
            ("Serial number", opt(&dev.serial_number)),
            (
                "Model",
                format!("{} {}", opt(&dev.model_name), opt(&dev.model)),
            ),
            (
                "OS",
                format!("{} {}", opt(&dev.os_version), opt(&dev.build_version)),
            ),
            ("Enrolled", when_opt(dev.enrolled_at)),
            ("Last seen", when_opt(dev.last_seen_at)),
            ("Record created", when(dev.created_at)),
        ],
        status: dev.status.as_str(),
        user_id: dev.user_id.map(|u| u.to_string()).unwrap_or_default(),
        user,
        apple: dev.platform != DevicePlatform::Android,
        wiped: dev.status == DeviceStatus::Wiped,
        channels: d
            .enrollments
            .iter()
            .map(|e| Channel {
                id: e.id.clone(),
                channel: e.channel.as_str(),
                topic: e.topic.clone(),
                enabled: e.enabled,
                last_seen: when_opt(e.last_seen_at),
                last_push: format!(
                    "{} {}",
                    when_opt(e.last_push_at),
                    e.last_push_outcome.clone().unwrap_or_default()
                ),
            })
            .collect(),
        history: history
            .into_iter()
            .map(|h| HistoryRow {
                at: when(h.at),
                action: h.action,
                actor: h.actor_label,
            })
            .collect(),
        commands: commands
            .into_iter()
            .map(|c| CommandRow {
                uuid: c.command_uuid,
                request_type: c.request_type,
                state: c.state.as_str().to_string(),
                queued: when(c.created_at),
                result_at: when_opt(c.result_at),
                errors: if c.error_chain.is_null() {
                    String::new()
                } else {
                    c.error_chain.to_string()
                },
            })
            .collect(),
        certificates: certs
            .into_iter()
            .map(|c| CertRow {
                serial: c.serial,
                subject: c.subject,
                not_after: when(c.not_after),
                revoked: c.revoked_at.is_some(),
            })
            .collect(),
        flash: done.map(|d| {
            let what = match d.as_str() {
                "retire" => "retire: queued; the device removes its management profile when it next checks in",
                "wipe" => "wipe: queued; the device erases itself when it next checks in",
                "lock" => "lock: queued; the device locks when it next checks in",
                "resend" => "resend: the enrollment profile is queued for the device",
                _ => "done",
            };
            format!("{what}. The audit trail has the entry.")
        }),
    })
}
