//! The audit trail (R20): filter by action, user, device, actor and time;
//! page back through it; export what the filters match as CSV.

use super::{Nav, Signed, enc, fail, tenant_page, when};
use crate::AppState;
use crate::error::FORM_INVALID;
use crate::pages::render;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mdm_core::audit::{AuditAction, AuditQuery, AuditRecord};
use mdm_core::tenants::Tenant;
use mdm_core::users::UserQuery;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Rows in one CSV export at most.
const EXPORT_LIMIT: usize = 50_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/t/{slug}/audit", get(list))
        .route("/admin/t/{slug}/audit.csv", get(export))
}

#[derive(serde::Deserialize, Default, Clone)]
pub struct Params {
    #[serde(default)]
    action: String,
    /// The user's email.
    #[serde(default)]
    user: String,
    #[serde(default)]
    device: String,
    /// An actor key (`admin:<id>`, `token:<id>`, `system`, `device:<id>`).
    #[serde(default)]
    actor: String,
    /// `YYYY-MM-DDTHH:MM` (UTC), as a datetime-local input sends it.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: String,
}

impl Params {
    fn query_string(&self) -> String {
        format!(
            "action={}&user={}&device={}&actor={}&from={}&to={}",
            enc(&self.action),
            enc(&self.user),
            enc(&self.device),
            enc(&self.actor),
            enc(&self.from),
            enc(&self.to)
        )
    }
}

/// Parses `YYYY-MM-DDTHH:MM[:SS]` as UTC.
pub fn parse_local(s: &str) -> Option<OffsetDateTime> {
    let (d, t) = s.split_once('T')?;
    let mut d = d.split('-');
    let (y, m, day) = (
        d.next()?.parse().ok()?,
        d.next()?.parse::<u8>().ok()?,
        d.next()?.parse().ok()?,
    );
    let mut t = t.split(':');
    let (h, min) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let sec = t.next().map_or(Some(0), |x| x.parse().ok())?;
    let date = Date::from_calendar_date(y, Month::try_from(m).ok()?, day).ok()?;
    let time = Time::from_hms(h, min, sec).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

#[derive(Default)]
struct Errors {
    action: Option<String>,
    user: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

impl Errors {
    fn any(&self) -> bool {
        self.action.is_some() || self.user.is_some() || self.from.is_some() || self.to.is_some()
    }
}

/// The store query of the filters, or the errors to show next to them.
async fn query_of(
    s: &AppState,
    signed: &Signed,
    tenant: &Tenant,
    p: &Params,
) -> Result<(AuditQuery, Errors), mdm_core::CoreError> {
    let mut errors = Errors::default();
    let mut q = AuditQuery::default();
    if !p.action.is_empty() {
        let known = p.action.ends_with('.')
            && AuditAction::ALL
                .iter()
                .any(|a| a.as_str().starts_with(&p.action))
            || AuditAction::parse(&p.action).is_some();
        if known {
            q.action = Some(p.action.clone());
        } else {
            errors.action = Some(format!("No such action: {}", p.action));
        }
    }
    if !p.user.is_empty() {
        let uq = UserQuery {
            q: Some(p.user.clone()),
            limit: Some(2),
            ..UserQuery::default()
        };
        let found = s.core.users(&signed.actor(), tenant, &uq).await?;
        match found
            .items
            .iter()
            .find(|u| u.email == p.user.to_lowercase())
        {
            Some(u) => q.user_id = Some(u.id),
            None => errors.user = Some(format!("No user has the email {}.", p.user)),
        }
    }
    q.device_id = Some(p.device.clone()).filter(|d| !d.is_empty());
    q.actor = Some(p.actor.clone()).filter(|a| !a.is_empty());
    for (raw, slot, err) in [
        (&p.from, &mut q.from, &mut errors.from),
        (&p.to, &mut q.to, &mut errors.to),
    ] {
        if !raw.is_empty() {
            match parse_local(raw) {
                Some(t) => *slot = Some(t),
                None => *err = Some("Enter a date and time, like 2026-12-01T13:00.".into()),
            }
        }
    }
    if let (Some(f), Some(t)) = (q.from, q.to)
        && f >= t
    {
        errors.to = Some("Must be after 'from'.".into());
    }
    Ok((q, errors))
}

struct Row {
    at: String,
    actor: String,
    actor_key: String,
    action: String,
    subject: String,
    user_id: String,
    device_id: String,
    details: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct ListPage {
    title: &'static str,
    nav: Nav,
    p: Params,
    actions: Vec<&'static str>,
    rows: Vec<Row>,
    next: Option<String>,
    csv: String,
    errors: Errors,
}

async fn list(
    State(s): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    let (tenant, nav) = match tenant_page(&s, &signed, &slug, "audit").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (mut q, errors) = match query_of(&s, &signed, &tenant, &p).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let mut page = ListPage {
        title: "Audit trail",
        csv: format!("{}/audit.csv?{}", nav.base, p.query_string()),
        nav,
        actions: AuditAction::ALL.iter().map(|a| a.as_str()).collect(),
        rows: Vec::new(),
        next: None,
        errors,
        p,
    };
    if page.errors.any() {
        return render(FORM_INVALID, &page);
    }
    q.limit = Some(100);
    q.before = page.p.before.parse().ok();
    match s.core.audit(&signed.actor(), Some(&tenant), &q).await {
        Ok(found) => {
            page.next = found
                .next
                .map(|n| format!("?{}&before={}", page.p.query_string(), enc(&n)));
            page.rows = found
                .items
                .into_iter()
                .map(|r| Row {
                    at: when(r.at),
                    actor: r.actor_label,
                    actor_key: enc(&r.actor),
                    action: r.action,
                    subject: format!("{} {}", r.subject_type, r.subject_id),
                    user_id: r.user_id.map(|u| u.to_string()).unwrap_or_default(),
                    device_id: r.device_id.unwrap_or_default(),
                    details: r.details.to_string(),
                })
                .collect();
            render(StatusCode::OK, &page)
        }
        Err(e) => fail(e),
    }
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ would be a formula in a spreadsheet.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_line(r: &AuditRecord) -> String {
    let at =
        r.at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
    [
        r.id.to_string(),
        at,
        r.actor.clone(),
        r.actor_label.clone(),
        r.action.clone(),
        r.subject_type.clone(),
        r.subject_id.clone(),
        r.user_id.map(|u| u.to_string()).unwrap_or_default(),
        r.device_id.clone().unwrap_or_default(),
        r.details.to_string(),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
}

/// Every entry the filters match (newest first, at most [`EXPORT_LIMIT`]) as CSV.
async fn export(
    State(s): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    let (tenant, _) = match tenant_page(&s, &signed, &slug, "audit").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (mut q, errors) = match query_of(&s, &signed, &tenant, &p).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    if errors.any() {
        return crate::pages::message(
            FORM_INVALID,
            "Check the filters",
            "The audit filters are not valid; fix them on the audit page first.",
        );
    }
    let mut out = String::from(
        "id,at,actor,actor_label,action,subject_type,subject_id,user_id,device_id,details\r\n",
    );
    let mut rows = 0;
    q.limit = Some(1000);
    loop {
        let page = match s.core.audit(&signed.actor(), Some(&tenant), &q).await {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        for r in &page.items {
            out.push_str(&csv_line(r));
            out.push_str("\r\n");
        }
        rows += page.items.len();
        match page.next.and_then(|n| n.parse().ok()) {
            Some(before) if rows < EXPORT_LIMIT => q.before = Some(before),
            _ => break,
        }
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"audit-{}.csv\"", tenant.slug),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_csv() {
        assert_eq!(
            parse_local("2026-12-01T13:05").map(|t| t.unix_timestamp()),
            Some(1_796_130_300)
        );
        assert!(parse_local("2026-13-01T13:05").is_none());
        assert!(parse_local("yesterday").is_none());
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }
}
