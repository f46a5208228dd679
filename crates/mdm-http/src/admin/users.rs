//! Users: the list (search, filters, paging), Actions > Send Invite on a
//! selection, and each user's page with devices, registrations and
//! invitations. Adding, editing and importing are in `user_forms.rs`.

use super::{Nav, Posted, Signed, Users, enc, fail, tenant_page, when, when_opt};
use crate::AppState;
use crate::error::FORM_INVALID;
use crate::pages::{render, see_other};
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use mdm_core::UserId;
use mdm_core::devices::DeviceQuery;
use mdm_core::invites::{InvitationQuery, InviteRequest};
use mdm_core::registrations::RegistrationQuery;
use mdm_core::users::{User, UserPatch, UserQuery, UserSource};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/t/{slug}/users", get(list))
        .route("/admin/t/{slug}/users/invite", post(invite))
        .route("/admin/t/{slug}/users/{id}", get(detail))
        .route("/admin/t/{slug}/users/{id}/enabled", post(set_enabled))
        .merge(super::user_forms::router())
}

/// The list's query string; unknown values mean "any".
#[derive(serde::Deserialize, Default)]
pub struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    has_device: String,
    #[serde(default)]
    invited: String,
    #[serde(default)]
    enabled: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    invited_now: Option<usize>,
}

fn yes_no(v: &str) -> Option<bool> {
    match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub source: &'static str,
    pub enabled: bool,
    pub created: String,
}

impl UserRow {
    pub fn of(u: &User) -> UserRow {
        UserRow {
            id: u.id.to_string(),
            email: u.email.clone(),
            name: u.display_name.clone(),
            source: u.source.as_str(),
            enabled: u.enabled,
            created: when(u.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage {
    title: &'static str,
    nav: Nav,
    p: ListParams,
    users: Vec<UserRow>,
    next: Option<String>,
    flash: Option<String>,
    selection_error: Option<&'static str>,
}

async fn list(
    State(s): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    Query(p): Query<ListParams>,
) -> Response {
    let (tenant, nav) = match tenant_page(&s, &signed, &slug, "users").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let query = UserQuery {
        q: Some(p.q.clone()).filter(|q| !q.trim().is_empty()),
        source: UserSource::parse(&p.source),
        enabled: yes_no(&p.enabled),
        has_device: yes_no(&p.has_device),
        invited: yes_no(&p.invited),
        limit: Some(50),
        after: Some(p.after.clone()).filter(|a| !a.is_empty()),
    };
    match s.core.users(&signed.actor(), &tenant, &query).await {
        Ok(page) => {
            let next = page.next.map(|n| {
                format!(
                    "?q={}&source={}&has_device={}&invited={}&enabled={}&after={}",
                    enc(&p.q),
                    enc(&p.source),
                    enc(&p.has_device),
                    enc(&p.invited),
                    enc(&p.enabled),
                    enc(&n)
                )
            });
            let flash = p
                .invited_now
                .map(|n| format!("{n} invitation(s) queued for sending."));
            render(
                StatusCode::OK,
                &ListPage {
                    title: "Users",
                    nav,
                    users: page.items.iter().map(UserRow::of).collect(),
                    next,
                    flash,
                    p,
                    selection_error: None,
                },
            )
        }
        Err(e) => fail(e),
    }
}

/// Actions > Send Invite on the selected users (R4).
async fn invite(
    State(s): State<AppState>,
    Posted {
        signed,
        form,
        tenant,
        nav,
        ..
    }: Posted<Users>,
) -> Response {
    let ids: Result<Vec<UserId>, _> = form.all("user").iter().map(|v| v.parse()).collect();
    let ids = match ids {
        Ok(ids) if !ids.is_empty() && form.get("action") == "invite" => ids,
        _ => {
            let page = ListPage {
                title: "Users",
                nav,
                p: ListParams::default(),
                users: Vec::new(),
                next: None,
                flash: None,
                selection_error: Some("Select one or more users, then choose Send invite."),
            };
            return render(FORM_INVALID, &page);
        }
    };
    let request = InviteRequest {
        user_ids: ids,
        all_not_registered: false,
        temporary_password: None,
    };
    match s
        .core
        .invite_users(&signed.actor(), &tenant, &request)
        .await
    {
        Ok(report) => {
            let back = match form.get("back") {
                b if b.starts_with(&format!("/admin/t/{}/", tenant.slug)) => b.to_string(),
                _ => format!("/admin/t/{}/users", tenant.slug),
            };
            let sep = if back.contains('?') { '&' } else { '?' };
            see_other(&format!("{back}{sep}invited_now={}", report.invited), None)
        }
        Err(e) => fail(e),
    }
}

struct DeviceRow {
    id: String,
    name: String,
    platform: &'static str,
    status: &'static str,
    last_seen: String,
}

struct RegistrationRow {
    id: String,
    platform: &'static str,
    purpose: &'static str,
    status: &'static str,
    created: String,
}

struct InvitationRow {
    delivery: &'static str,
    created: String,
    sent: String,
    pin_used: String,
    error: String,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct DetailPage {
    title: String,
    nav: Nav,
    user: UserRow,
    login_name: String,
    has_password: bool,
    devices: Vec<DeviceRow>,
    registrations: Vec<RegistrationRow>,
    invitations: Vec<InvitationRow>,
    flash: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct DetailParams {
    invited_now: Option<usize>,
}

async fn detail(
    State(s): State<AppState>,
    signed: Signed,
    Path((slug, id)): Path<(String, String)>,
    Query(dp): Query<DetailParams>,
) -> Response {
    let (tenant, nav) = match tenant_page(&s, &signed, &slug, "users").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<UserId>() else {
        return fail(mdm_core::CoreError::NotFound("user"));
    };
    let actor = signed.actor();
    let user = match s.core.user(&actor, &tenant, id).await {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let devices = DeviceQuery {
        user_id: Some(id),
        limit: Some(100),
        ..DeviceQuery::default()
    };
    let regs = RegistrationQuery {
        user_id: Some(id),
        limit: Some(50),
        ..RegistrationQuery::default()
    };
    let invs = InvitationQuery {
        user_id: Some(id),
        limit: Some(20),
        ..InvitationQuery::default()
    };
    let (devices, regs, invs) = match (
        s.core.devices(&actor, &tenant, &devices).await,
        s.core.registrations(&actor, &tenant, &regs).await,
        s.core.invitations(&actor, &tenant, &invs).await,
    ) {
        (Ok(d), Ok(r), Ok(i)) => (d.items, r.items, i.items),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return fail(e),
    };
    render(
        StatusCode::OK,
        &DetailPage {
            title: user.display_name.clone(),
            nav,
            login_name: user.login_name.clone().unwrap_or_default(),
            has_password: user.has_password(),
            user: UserRow::of(&user),
            devices: devices
                .iter()
                .map(|d| DeviceRow {
                    id: d.id.to_string(),
                    name: super::devices::device_name(d),
                    platform: d.platform.as_str(),
                    status: d.status.as_str(),
                    last_seen: when_opt(d.last_seen_at),
                })
                .collect(),
            registrations: regs
                .iter()
                .map(|r| RegistrationRow {
                    id: r.id.clone(),
                    platform: r.platform.map_or("unknown", |p| p.as_str()),
                    purpose: r.purpose.as_str(),
                    status: r.status.as_str(),
                    created: when(r.created_at),
                })
                .collect(),
            invitations: invs
                .iter()
                .map(|i| InvitationRow {
                    delivery: i.delivery.as_str(),
                    created: when(i.created_at),
                    sent: when_opt(i.sent_at),
                    pin_used: when_opt(i.pin_used_at),
                    error: i.last_error.clone().unwrap_or_default(),
                })
                .collect(),
            flash: dp
                .invited_now
                .map(|n| format!("{n} invitation(s) queued for sending.")),
        },
    )
}

/// Disable or enable a user (a disabled user cannot sign in or register).
async fn set_enabled(
    State(s): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted {
        signed,
        form,
        tenant,
        ..
    }: Posted<Users>,
) -> Response {
    let Ok(id) = id.parse::<UserId>() else {
        return fail(mdm_core::CoreError::NotFound("user"));
    };
    let patch = UserPatch {
        enabled: Some(form.get("enabled") == "true"),
        ..UserPatch::default()
    };
    match s
        .core
        .update_user(&signed.actor(), &tenant, id, patch)
        .await
    {
        Ok(u) => see_other(&format!("/admin/t/{}/users/{}", tenant.slug, u.id), None),
        Err(e) => fail(e),
    }
}
