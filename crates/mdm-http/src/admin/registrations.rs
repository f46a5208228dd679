//! Registrations: the attempts of the tenant, newest first, with how far
//! each got through the funnel.

use super::{Nav, Signed, enc, fail, tenant_page, when, when_opt};
use crate::AppState;
use crate::pages::render;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use mdm_core::registrations::{RegistrationQuery, RegistrationStatus};

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/t/{slug}/registrations", get(list))
}

struct Row {
    id: String,
    platform: &'static str,
    purpose: &'static str,
    status: &'static str,
    created: String,
    stages: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/registrations.html")]
struct ListPage {
    title: &'static str,
    nav: Nav,
    stages: [&'static str; 7],
    rows: Vec<Row>,
    next: Option<String>,
    status: String,
    statuses: &'static [RegistrationStatus],
}

#[derive(serde::Deserialize, Default)]
struct Params {
    #[serde(default)]
    status: String,
    #[serde(default)]
    after: String,
}

async fn list(
    State(s): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    let (tenant, nav) = match tenant_page(&s, &signed, &slug, "registrations").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let q = RegistrationQuery {
        status: RegistrationStatus::parse(&p.status),
        limit: Some(100),
        after: Some(p.after.clone()).filter(|a| !a.is_empty()),
        ..RegistrationQuery::default()
    };
    match s.core.registrations(&signed.actor(), &tenant, &q).await {
        Ok(page) => render(
            StatusCode::OK,
            &ListPage {
                title: "Registrations",
                nav,
                stages: [
                    "invited",
                    "PIN used",
                    "signed in",
                    "profile downloaded",
                    "certificate issued",
                    "checked in",
                    "active",
                ],
                next: page
                    .next
                    .map(|n| format!("?status={}&after={}", enc(&p.status), enc(&n))),
                rows: page
                    .items
                    .iter()
                    .map(|r| Row {
                        id: r.id.clone(),
                        platform: r.platform.as_str(),
                        purpose: r.purpose.as_str(),
                        status: r.status.as_str(),
                        created: when(r.created_at),
                        stages: [
                            r.invited_at,
                            r.pin_used_at,
                            r.signed_in_at,
                            r.profile_downloaded_at,
                            r.certificate_issued_at,
                            r.checked_in_at,
                            r.active_at,
                        ]
                        .into_iter()
                        .map(when_opt)
                        .collect(),
                    })
                    .collect(),
                status: p.status,
                statuses: RegistrationStatus::ALL,
            },
        ),
        Err(e) => fail(e),
    }
}
