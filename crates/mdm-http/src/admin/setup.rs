//! The startup wizard (first run of a tenant): name the tenant, set the
//! user settings (R3), add the first users (typed or CSV), send their
//! invitations (R4). Each step is a plain form; finishing (or skipping)
//! marks the tenant set up, after which its home page is the user list.

use super::user_forms::csv_of;
use super::{Nav, Posted, Setup, Signed, fail, tenant_page};
use crate::AppState;
use crate::error::FORM_INVALID;
use crate::pages::{render, see_other};
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use mdm_core::invites::InviteRequest;
use mdm_core::settings::SettingsPatch;
use mdm_core::tenants::Tenant;
use mdm_core::users::{NewUser, UserQuery, validate_new_user};
use mdm_core::{CoreError, UserId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/t/{slug}/setup", get(page))
        .route("/admin/t/{slug}/setup/{step}", post(submit))
}

const STEPS: [(&str, &str); 4] = [
    ("name", "Name"),
    ("settings", "User settings"),
    ("users", "First users"),
    ("invite", "Invitations"),
];

pub struct Invitee {
    id: String,
    email: String,
    name: String,
}

#[derive(Template)]
#[template(path = "admin/setup.html")]
struct SetupPage {
    title: &'static str,
    nav: Nav,
    step: &'static str,
    steps: &'static [(&'static str, &'static str)],
    name: String,
    pin_required: bool,
    temporary_password: bool,
    qr_registration: bool,
    profile_minutes: String,
    lines: String,
    invitees: Vec<Invitee>,
    error: Option<String>,
    line_errors: Vec<String>,
    note: Option<String>,
}

fn step_of(s: &str) -> &'static str {
    STEPS
        .iter()
        .find(|(k, _)| *k == s)
        .map_or("name", |(k, _)| k)
}

async fn build(
    s: &AppState,
    signed: &Signed,
    tenant: &Tenant,
    nav: Nav,
    step: &'static str,
) -> Result<SetupPage, CoreError> {
    let actor = signed.actor();
    let settings = s.core.settings(&actor, tenant).await?;
    let invitees = if step == "invite" {
        let q = UserQuery {
            invited: Some(false),
            enabled: Some(true),
            limit: Some(500),
            ..UserQuery::default()
        };
        s.core
            .users(&actor, tenant, &q)
            .await?
            .items
            .into_iter()
            .map(|u| Invitee {
                id: u.id.to_string(),
                email: u.email,
                name: u.display_name,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(SetupPage {
        title: "Set up this tenant",
        nav,
        step,
        steps: &STEPS,
        name: tenant.name.clone(),
        pin_required: settings.pin_required,
        temporary_password: settings.temporary_password,
        qr_registration: settings.qr_registration,
        profile_minutes: (settings.profile_validity_secs / 60).to_string(),
        lines: String::new(),
        invitees,
        error: None,
        line_errors: Vec::new(),
        note: None,
    })
}

#[derive(serde::Deserialize, Default)]
struct Params {
    #[serde(default)]
    step: String,
    added: Option<usize>,
}

async fn page(
    State(s): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    let (tenant, nav) = match tenant_page(&s, &signed, &slug, "setup").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match build(&s, &signed, &tenant, nav, step_of(&p.step)).await {
        Ok(mut page) => {
            page.note = p.added.map(|n| format!("{n} user(s) added."));
            render(StatusCode::OK, &page)
        }
        Err(e) => fail(e),
    }
}

/// `email[, name]` per line; every line's problem, or the users.
fn typed_users(text: &str) -> Result<Vec<NewUser>, Vec<String>> {
    let mut users = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (email, name) = match line.split_once(',') {
            Some((e, n)) => (
                e.trim(),
                Some(n.trim().to_string()).filter(|n| !n.is_empty()),
            ),
            None => (line, None),
        };
        let new = NewUser {
            email: email.to_string(),
            display_name: name,
            password: None,
            enabled: true,
        };
        match validate_new_user(&new) {
            Ok(_) => users.push(new),
            Err(CoreError::Invalid { message, .. }) => {
                errors.push(format!("Line {}: {message}", i + 1));
            }
            Err(e) => errors.push(format!("Line {}: {e}", i + 1)),
        }
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        Err(errors)
    }
}

async fn submit(
    State(s): State<AppState>,
    Path((_, step)): Path<(String, String)>,
    Posted {
        signed,
        form,
        tenant,
        nav,
        ..
    }: Posted<Setup>,
) -> Response {
    let step = step_of(&step);
    let mut page = match build(&s, &signed, &tenant, nav, step).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let actor = signed.actor();
    let base = format!("/admin/t/{}/setup", tenant.slug);
    let outcome = match step {
        "name" => match s
            .core
            .rename_tenant(&actor, &tenant, form.get("name"))
            .await
        {
            Ok(_) => Ok(format!("{base}?step=settings")),
            Err(e) => {
                page.name = form.get("name").to_string();
                Err(e)
            }
        },
        "settings" => {
            let minutes = form.get("profile_minutes").parse::<i64>().ok();
            page.profile_minutes = form.get("profile_minutes").to_string();
            let patch = SettingsPatch {
                pin_required: Some(form.checked("pin_required")),
                temporary_password: Some(form.checked("temporary_password")),
                qr_registration: Some(form.checked("qr_registration")),
                profile_validity_secs: Some(minutes.map_or(-1, |m| m * 60)),
                ..SettingsPatch::default()
            };
            s.core
                .update_settings(&actor, &tenant, &patch)
                .await
                .map(|_| format!("{base}?step=users"))
        }
        "users" => {
            page.lines = form.raw("lines").to_string();
            let added = if let Some(csv) =
                csv_of(&form).filter(|_| form.file("csv").is_some_and(|f| !f.is_empty()))
            {
                match s.core.import_users_csv(&actor, &tenant, &csv).await {
                    Ok(Ok(report)) => Ok(report.created),
                    Ok(Err(rows)) => {
                        page.line_errors = rows
                            .into_iter()
                            .map(|r| format!("Line {}: {}: {}", r.line, r.field, r.message))
                            .collect();
                        return render(FORM_INVALID, &page);
                    }
                    Err(e) => Err(e),
                }
            } else {
                match typed_users(form.raw("lines")) {
                    Ok(users) if users.is_empty() => Ok(0),
                    Ok(users) => s
                        .core
                        .create_users(&actor, &tenant, users)
                        .await
                        .map(|u| u.len()),
                    Err(lines) => {
                        page.line_errors = lines;
                        return render(FORM_INVALID, &page);
                    }
                }
            };
            added.map(|n| format!("{base}?step=invite&added={n}"))
        }
        _ => {
            let ids: Result<Vec<UserId>, _> = form.all("user").iter().map(|v| v.parse()).collect();
            let Ok(ids) = ids else {
                return fail(CoreError::NotFound("user"));
            };
            let invited = if ids.is_empty() {
                Ok(0)
            } else {
                let req = InviteRequest {
                    user_ids: ids,
                    all_not_registered: false,
                    temporary_password: None,
                };
                s.core
                    .invite_users(&actor, &tenant, &req)
                    .await
                    .map(|r| r.invited)
            };
            match invited {
                Ok(n) => s
                    .core
                    .complete_setup(&actor, &tenant)
                    .await
                    .map(|()| format!("/admin/t/{}/users?invited_now={n}", tenant.slug)),
                Err(e) => Err(e),
            }
        }
    };
    match outcome {
        Ok(to) => see_other(&to, None),
        Err(CoreError::Invalid { message, .. } | CoreError::Conflict { message, .. }) => {
            page.error = Some(message);
            render(FORM_INVALID, &page)
        }
        Err(e) => fail(e),
    }
}
