//! Sign-in, sign-out, the operator's tenant picker and the stylesheet.

use super::{COOKIE, FormData, SIGN_IN, Signed, check_csrf, fail, when};
use crate::AppState;
use crate::error::FORM_INVALID;
use crate::pages::{ClientAddr, cookie, render, see_other, session_cookie};
use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mdm_core::admin_sessions::{ADMIN_MAX_LIFETIME, AdminRefusal};
use mdm_core::tokens::Scope;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(home))
        .route("/admin/", get(home))
        .route("/admin/sign-in", get(sign_in_page).post(sign_in))
        .route("/admin/sign-out", axum::routing::post(sign_out))
        .route("/admin/tenants", get(tenants))
        .route("/admin/t/{slug}", get(tenant_home))
        .route("/admin/static/admin.css", get(stylesheet))
}

#[derive(Template, Default)]
#[template(path = "admin/signin.html")]
struct SignInPage {
    title: &'static str,
    email: String,
    note: Option<&'static str>,
    form_error: Option<String>,
    email_error: Option<&'static str>,
    password_error: Option<&'static str>,
}

fn page() -> SignInPage {
    SignInPage {
        title: "Administrator sign-in",
        ..SignInPage::default()
    }
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("admin.css"),
    )
        .into_response()
}

async fn home(signed: Result<Signed, Response>) -> Response {
    match signed {
        Ok(s) => match s.0.admin.scope {
            Scope::Operator => see_other("/admin/tenants", None),
            Scope::Tenant(id) => see_other(&format!("/admin/t/{id}"), None),
        },
        Err(r) => r,
    }
}

async fn sign_in_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(secret) = cookie(&headers, COOKIE) {
        if let Ok(Some(_)) = s.core.admin_session(&secret).await {
            return see_other("/admin", None);
        }
        let mut p = page();
        p.note = Some("Your session has ended. Sign in again.");
        return render(StatusCode::OK, &p);
    }
    render(StatusCode::OK, &page())
}

async fn sign_in(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&headers, &body);
    let mut p = page();
    p.email = form.get("email").to_string();
    if mdm_core::users::normalize_email(form.get("email")).is_err() {
        p.email_error = Some("Enter your email address, like name@example.com.");
    }
    if form.raw("password").is_empty() {
        p.password_error = Some("Enter your password.");
    }
    if p.email_error.is_some() || p.password_error.is_some() {
        return render(FORM_INVALID, &p);
    }
    match s
        .core
        .admin_sign_in(form.get("email"), form.raw("password"), addr)
        .await
    {
        Ok(Ok(opened)) => {
            let cookie = session_cookie(
                COOKIE,
                &opened.secret,
                "/admin",
                s.core.public_url().starts_with("https:"),
                ADMIN_MAX_LIFETIME.whole_seconds(),
            );
            see_other("/admin", Some(cookie))
        }
        Ok(Err(AdminRefusal::Invalid)) => {
            p.form_error = Some("The email address or the password is not right.".into());
            render(StatusCode::UNAUTHORIZED, &p)
        }
        Ok(Err(AdminRefusal::LockedOut { minutes })) => {
            p.form_error = Some(format!(
                "Too many failed attempts. Try again in {minutes} minutes."
            ));
            render(StatusCode::TOO_MANY_REQUESTS, &p)
        }
        Err(e) => fail(e),
    }
}

async fn sign_out(
    State(s): State<AppState>,
    signed: Result<Signed, Response>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let clear = Some(session_cookie(COOKIE, "", "/admin", false, 0));
    let Ok(signed) = signed else {
        return see_other(SIGN_IN, clear);
    };
    let form = FormData::parse(&headers, &body);
    if let Err(r) = check_csrf(&signed, &form) {
        return r;
    }
    if let Err(e) = s.core.admin_sign_out(&signed.0).await {
        return fail(e);
    }
    see_other(SIGN_IN, clear)
}

struct TenantRow {
    slug: String,
    name: String,
    created: String,
}

#[derive(Template)]
#[template(path = "admin/tenants.html")]
struct TenantsPage {
    title: &'static str,
    email: String,
    csrf: String,
    tenants: Vec<TenantRow>,
}

async fn tenants(State(s): State<AppState>, signed: Signed) -> Response {
    let actor = signed.actor();
    if let Scope::Tenant(id) = signed.0.admin.scope {
        return see_other(&format!("/admin/t/{id}"), None);
    }
    match s.core.tenants(&actor).await {
        Ok(all) => render(
            StatusCode::OK,
            &TenantsPage {
                title: "Choose a tenant",
                email: signed.0.admin.email.clone(),
                csrf: signed.0.session.csrf.clone(),
                tenants: all
                    .into_iter()
                    .map(|t| TenantRow {
                        created: when(t.created_at),
                        slug: t.slug,
                        name: t.name,
                    })
                    .collect(),
            },
        ),
        Err(e) => fail(e),
    }
}

/// A tenant's first page: the startup wizard on its first run, else users.
async fn tenant_home(
    State(s): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
) -> Response {
    let actor = signed.actor();
    let tenant = match s.core.tenant(&actor, &slug).await {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    match s.core.setup_completed(&actor, &tenant).await {
        Ok(None) => see_other(&format!("/admin/t/{}/setup", tenant.slug), None),
        Ok(Some(_)) => see_other(&format!("/admin/t/{}/users", tenant.slug), None),
        Err(e) => fail(e),
    }
}
