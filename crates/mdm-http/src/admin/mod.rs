//! The admin web portal under `/admin`: server-rendered pages behind an
//! administrator sign-in, one module per page group. Every action is a
//! plain HTML form; every form carries the session's CSRF token and the
//! router carries tower-http's `Sec-Fetch-Site`/`Origin` check as well. The
//! tenant is always in the URL (`/admin/t/<slug>/…`) and checked against
//! the administrator's scope by the use case (ADR 0012).

mod audit;
mod charts;
mod device_actions;
mod devices;
mod directory;
mod forms;
mod registrations;
mod settings;
mod setup;
mod signin;
mod user_forms;
mod users;

pub use forms::FormData;

use crate::AppState;
use crate::error::page_status;
use crate::pages::{cookie, message, see_other};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mdm_core::CoreError;
use mdm_core::admin_sessions::SignedInAdmin;
use mdm_core::tenants::Tenant;
use mdm_core::tokens::{Actor, Scope};
use std::marker::PhantomData;
use time::OffsetDateTime;

/// The session cookie (HttpOnly, SameSite=Strict, Path=/admin, Secure on HTTPS).
pub const COOKIE: &str = "mdm_admin";
/// Where a request without a live session is sent.
pub const SIGN_IN: &str = "/admin/sign-in";

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(signin::router())
        .merge(setup::router())
        .merge(users::router())
        .merge(devices::router())
        .merge(audit::router())
        .merge(settings::router())
        .merge(registrations::router())
        .layer(tower_http::csrf::CsrfLayer::new())
}

/// The signed-in administrator of a request. Without a live session, a
/// page request is sent to the sign-in page and nothing runs.
pub struct Signed(pub SignedInAdmin);

impl Signed {
    pub fn actor(&self) -> Actor {
        self.0.actor()
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let Some(secret) = cookie(&parts.headers, COOKIE) else {
            return Err(see_other(SIGN_IN, None));
        };
        match s.core.admin_session(&secret).await {
            Ok(Some(signed)) => Ok(Signed(signed)),
            Ok(None) => Err(see_other(SIGN_IN, None)),
            Err(e) => Err(fail(e)),
        }
    }
}

/// What the layout of every tenant page shows.
pub struct Nav {
    /// `/admin/t/<slug>`
    pub base: String,
    pub tenant: String,
    pub email: String,
    pub csrf: String,
    /// The current section, for the highlighted tab.
    pub section: &'static str,
    /// Operators may switch tenants.
    pub operator: bool,
}

impl Nav {
    pub fn tab(&self, section: &str) -> &'static str {
        if self.section == section {
            "current"
        } else {
            ""
        }
    }
}

/// The tenant of a page and the layout for it; `NotFound` for a tenant the
/// administrator may not act in.
pub async fn tenant_page(
    s: &AppState,
    signed: &Signed,
    slug: &str,
    section: &'static str,
) -> Result<(Tenant, Nav), Response> {
    let tenant = s.core.tenant(&signed.actor(), slug).await.map_err(fail)?;
    let nav = Nav {
        base: format!("/admin/t/{}", tenant.slug),
        tenant: tenant.name.clone(),
        email: signed.0.admin.email.clone(),
        csrf: signed.0.session.csrf.clone(),
        section,
        operator: signed.0.admin.scope == Scope::Operator,
    };
    Ok((tenant, nav))
}

/// The portal section (its highlighted tab) a posted form belongs to.
pub trait Section {
    const NAME: &'static str;
}

macro_rules! sections {
    ($($ty:ident => $name:literal),* $(,)?) => {
        $(
            #[doc = concat!("The `", $name, "` section of the portal.")]
            pub struct $ty;
            impl Section for $ty {
                const NAME: &'static str = $name;
            }
        )*
    };
}

sections! {
    Users => "users",
    Devices => "devices",
    Registrations => "registrations",
    Settings => "settings",
    Setup => "setup",
}

/// A form posted from a tenant page of section `S`, its CSRF token checked:
/// who posted it, its fields, its tenant (the route's `{slug}`, in the
/// administrator's scope) and the page layout. Nothing runs for a request
/// without a live session or with a foreign token: the rejection is the
/// sign-in redirect or the refusal page ([`check_csrf`], [`tenant_page`]).
pub struct Posted<S> {
    pub signed: Signed,
    pub form: FormData,
    pub tenant: Tenant,
    pub nav: Nav,
    section: PhantomData<S>,
}

impl<S: Section> FromRequest<AppState> for Posted<S> {
    type Rejection = Response;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, s).await?;
        let params = RawPathParams::from_request_parts(&mut parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(slug) = params
            .iter()
            .find_map(|(k, v)| (k == "slug").then(|| v.to_string()))
        else {
            return Err(fail(CoreError::NotFound("tenant")));
        };
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), s)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = FormData::parse(&headers, &body);
        check_csrf(&signed, &form)?;
        let (tenant, nav) = tenant_page(s, &signed, &slug, S::NAME).await?;
        Ok(Self {
            signed,
            form,
            tenant,
            nav,
            section: PhantomData,
        })
    }
}

/// Refuses a form whose token is not this session's: nothing changes.
// The refusal is a whole page, made at most once per request.
#[allow(clippy::result_large_err)]
pub fn check_csrf(signed: &Signed, form: &FormData) -> Result<(), Response> {
    if signed.0.session.csrf_ok(form.get("csrf")) {
        Ok(())
    } else {
        Err(message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Nothing was changed. Go back, reload the page and try again.",
        ))
    }
}

/// The page for a domain error on an admin route.
pub fn fail(e: CoreError) -> Response {
    let status = page_status(&e);
    match e {
        CoreError::NotFound(what) => message(status, "Not found", &format!("No such {what}.")),
        CoreError::Invalid { field, message: m } => {
            message(status, "Check the form", &format!("{field}: {m}"))
        }
        CoreError::Conflict { message: m, .. } | CoreError::Gone { message: m, .. } => {
            message(status, "Not done", &m)
        }
        CoreError::Forbidden(m) => message(status, "Not allowed", m),
        CoreError::Upstream { message: m, .. } => message(status, "The other side failed", &m),
        other => {
            tracing::error!(error = %other, "admin page failed");
            message(
                status,
                "Try again later",
                "The server could not do this right now.",
            )
        }
    }
}

/// `2026-12-01 13:45 UTC`
pub fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// [`when`] or a dash.
pub fn when_opt(t: Option<OffsetDateTime>) -> String {
    t.map_or_else(|| "—".into(), when)
}

/// A query-string value, percent-encoded.
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
