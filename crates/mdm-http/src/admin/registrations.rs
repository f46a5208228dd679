//! Registrations: the funnel (invited → PIN used → signed in → profile
//! downloaded → certificate issued → checked in → active) drawn as SVG for
//! the whole window, per platform and per day; the stalled registrations
//! with "remind now"; and the recent attempts with their stage times.

use super::charts::{day_columns, stage_bars};
use super::{Nav, Posted, Registrations, Signed, enc, fail, tenant_page, when, when_opt};
use crate::AppState;
use crate::error::FORM_INVALID;
use crate::pages::{render, see_other};
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use mdm_core::CoreError;
use mdm_core::funnel::{FunnelQuery, FunnelStage, StageCounts, StalledQuery};
use mdm_core::registrations::{DevicePlatform, RegistrationQuery};
use mdm_core::tenants::Tenant;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/t/{slug}/registrations", get(page))
        .route("/admin/t/{slug}/registrations/{id}/remind", post(remind))
}

const LABELS: [&str; 7] = [
    "invited",
    "PIN used",
    "signed in",
    "profile downloaded",
    "certificate issued",
    "checked in",
    "active",
];

fn stages(c: &StageCounts) -> Vec<i64> {
    vec![
        c.invited,
        c.pin_used,
        c.signed_in,
        c.profile_downloaded,
        c.certificate_issued,
        c.checked_in,
        c.active,
    ]
}

fn bars(title: &str, c: &StageCounts) -> String {
    let counts = stages(c);
    let pairs: Vec<(&str, i64)> = LABELS.iter().copied().zip(counts).collect();
    stage_bars(title, c.registrations, &pairs)
}

struct Stalled {
    id: String,
    user_id: String,
    email: String,
    platform: &'static str,
    stage: &'static str,
    since: String,
    reminders: i64,
    last_reminded: String,
    given_up: bool,
}

struct Recent {
    id: String,
    platform: &'static str,
    purpose: &'static str,
    status: &'static str,
    created: String,
    stages: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/registrations.html")]
struct RegistrationsPage {
    title: &'static str,
    nav: Nav,
    days: i64,
    platform: String,
    hours: i64,
    platforms: &'static [DevicePlatform],
    total: i64,
    open: i64,
    ended: String,
    funnel_svg: String,
    platform_svgs: Vec<String>,
    days_svg: String,
    stalled: Vec<Stalled>,
    stalled_next: Option<String>,
    recent: Vec<Recent>,
    flash: Option<String>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct Params {
    #[serde(default)]
    days: Option<i64>,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    hours: Option<i64>,
    #[serde(default)]
    after: String,
    #[serde(default)]
    reminded: Option<String>,
}

async fn build(
    s: &AppState,
    signed: &Signed,
    tenant: &Tenant,
    nav: Nav,
    p: &Params,
) -> Result<RegistrationsPage, CoreError> {
    let actor = signed.actor();
    let days = p.days.unwrap_or(30).clamp(1, 366);
    let hours = p.hours.unwrap_or(24).clamp(0, 24 * 366);
    let platform = DevicePlatform::parse(&p.platform);
    let now = s.core.now();
    let fq = FunnelQuery {
        from: Some(now - time::Duration::days(days)),
        to: Some(now),
        platform,
    };
    let funnel = s.core.registration_funnel(&actor, tenant, &fq).await?;
    let sq = StalledQuery {
        older_than_secs: Some(hours * 3600),
        platform,
        limit: Some(50),
        after: Some(p.after.clone()).filter(|a| !a.is_empty()),
        ..StalledQuery::default()
    };
    let stalled = s.core.stalled_registrations(&actor, tenant, &sq).await?;
    let rq = RegistrationQuery {
        platform,
        limit: Some(25),
        ..RegistrationQuery::default()
    };
    let recent = s.core.registrations(&actor, tenant, &rq).await?;
    let t = &funnel.total;
    Ok(RegistrationsPage {
        title: "Registrations",
        nav,
        days,
        hours,
        platform: p.platform.clone(),
        platforms: DevicePlatform::ALL,
        total: t.registrations,
        open: t.open,
        ended: format!(
            "{} cancelled, {} expired, {} failed, {} given up after reminders",
            t.cancelled, t.expired, t.failed, t.given_up
        ),
        funnel_svg: bars("All platforms", t),
        platform_svgs: funnel
            .by_platform
            .iter()
            .map(|pc| bars(&pc.platform, &pc.counts))
            .collect(),
        days_svg: day_columns(
            &funnel
                .by_day
                .iter()
                .map(|d| (d.day.clone(), stages(&d.counts)))
                .collect::<Vec<_>>(),
        ),
        stalled_next: stalled.next.map(|n| {
            format!(
                "?days={days}&platform={}&hours={hours}&after={}",
                enc(&p.platform),
                enc(&n)
            )
        }),
        stalled: stalled
            .items
            .into_iter()
            .map(|r| Stalled {
                id: r.registration_id,
                user_id: r.user_id.map(|u| u.to_string()).unwrap_or_default(),
                email: r.email.unwrap_or_default(),
                platform: r.platform.map_or("unknown", |p| p.as_str()),
                stage: stage_label(r.stage),
                since: when(r.since),
                reminders: r.reminders_sent,
                last_reminded: when_opt(r.last_reminded_at),
                given_up: r.given_up_at.is_some(),
            })
            .collect(),
        recent: recent
            .items
            .iter()
            .map(|r| Recent {
                id: r.id.clone(),
                platform: r.platform.map_or("unknown", |p| p.as_str()),
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
        flash: p
            .reminded
            .as_ref()
            .map(|id| format!("A reminder for {id} is on its way.")),
        error: None,
    })
}

fn stage_label(s: FunnelStage) -> &'static str {
    FunnelStage::ALL
        .iter()
        .position(|x| *x == s)
        .map_or("?", |i| LABELS[i])
}

async fn page(
    State(s): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    let (tenant, nav) = match tenant_page(&s, &signed, &slug, "registrations").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match build(&s, &signed, &tenant, nav, &p).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => fail(e),
    }
}

/// "Remind now" on a stalled registration.
async fn remind(
    State(s): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted {
        signed,
        tenant,
        nav,
        ..
    }: Posted<Registrations>,
) -> Response {
    match s
        .core
        .remind_registration(&signed.actor(), &tenant, &id)
        .await
    {
        Ok(q) => see_other(
            &format!(
                "/admin/t/{}/registrations?reminded={}",
                tenant.slug,
                enc(&q.registration_id)
            ),
            None,
        ),
        Err(CoreError::Conflict { message, .. } | CoreError::Invalid { message, .. }) => {
            match build(&s, &signed, &tenant, nav, &Params::default()).await {
                Ok(mut page) => {
                    page.error = Some(format!("{id}: {message}"));
                    render(FORM_INVALID, &page)
                }
                Err(e) => fail(e),
            }
        }
        Err(e) => fail(e),
    }
}
