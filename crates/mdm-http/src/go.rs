//! Web registration (R8): the pages behind the tenant's registration link
//! `/enroll/<slug>/<key>/go`. They work without JavaScript. A desktop
//! browser is told to open the link on the phone (with a QR code of it);
//! on the device the user signs in with the invitation PIN or a password,
//! chooses a password when needed, then downloads the management profile
//! (iOS, macOS) or is told how to install the client app (Android). Every
//! request re-checks the enrollment key, so a regenerated URL stops these
//! pages too (R13). Forms are protected by the Sec-Fetch-Site/Origin check
//! and, once signed in, by the session's token.

use crate::AppState;
use crate::error::{FORM_INVALID, SESSION_GONE, sign_in_refusal_status};
use crate::pages::{
    ClientAddr, Device, cookie, error_page, message, profile_download, qr_svg, render, see_other,
    session_cookie,
};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use mdm_core::CoreError;
use mdm_core::profiles::ApplePlatform;
use mdm_core::registration::{Channel, Credentials, Refusal};
use mdm_core::tenants::Tenant;
use mdm_core::users::User;
use mdm_core::websession::{SESSION_LIFETIME, SessionKind, WebSession};
use serde::Deserialize;

const COOKIE: &str = "mdm_go";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/enroll/{slug}/{key}/go", get(page))
        .route("/enroll/{slug}/{key}/go/sign-in", post(sign_in))
        .route("/enroll/{slug}/{key}/go/password", post(set_password))
        .route("/enroll/{slug}/{key}/go/profile", post(download))
        .layer(tower_http::csrf::CsrfLayer::new())
}

#[derive(Deserialize, Default)]
pub(crate) struct DeviceQuery {
    device: Option<String>,
}

#[derive(Template)]
#[template(path = "signin.html")]
pub(crate) struct SignInPage<'a> {
    pub title: String,
    pub intro: String,
    pub action: String,
    pub email: &'a str,
    pub secret_label: &'a str,
    pub form_error: Option<String>,
    pub email_error: Option<String>,
    pub secret_error: Option<String>,
    pub note: Option<String>,
}

#[derive(Template)]
#[template(path = "password.html")]
pub(crate) struct PasswordPage<'a> {
    pub title: &'a str,
    pub name: &'a str,
    pub tenant: &'a str,
    pub action: String,
    pub csrf: &'a str,
    pub password_error: Option<String>,
    pub confirm_error: Option<String>,
}

#[derive(Template)]
#[template(path = "profile.html")]
pub(crate) struct ProfilePage<'a> {
    pub title: &'a str,
    pub email: &'a str,
    pub steps: &'a str,
    pub action: String,
    pub csrf: &'a str,
    pub platform: &'a str,
    pub minutes: i64,
    pub switch: Option<String>,
    pub switch_text: &'a str,
}

#[derive(Template)]
#[template(path = "android.html")]
struct AndroidPage<'a> {
    title: &'a str,
    email: &'a str,
    tenant: &'a str,
    portal: String,
}

#[derive(Template)]
#[template(path = "desktop.html")]
struct DesktopPage<'a> {
    title: String,
    tenant: &'a str,
    qr_svg: String,
    link: &'a str,
    portal: String,
}

struct Ctx {
    tenant: Tenant,
    base: String,
    device: Device,
    suffix: String,
}

async fn ctx(
    s: &AppState,
    slug: &str,
    key: &str,
    headers: &HeaderMap,
    q: &DeviceQuery,
) -> Result<Ctx, Response> {
    let tenant = s
        .core
        .resolve_enrollment_key(slug, key)
        .await
        .map_err(error_page)?;
    let suffix = match q.device.as_deref() {
        Some(d @ ("ios" | "mac" | "android")) => format!("?device={d}"),
        _ => String::new(),
    };
    Ok(Ctx {
        tenant,
        base: format!("/enroll/{slug}/{key}/go"),
        device: Device::from_headers(headers, q.device.as_deref()),
        suffix,
    })
}

async fn session(
    s: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
) -> Result<Option<(WebSession, User)>, Response> {
    match cookie(headers, COOKIE) {
        Some(secret) => s
            .core
            .web_session(tenant, SessionKind::Registration, &secret)
            .await
            .map_err(error_page),
        None => Ok(None),
    }
}

fn sign_in_page<'a>(c: &Ctx, email: &'a str) -> SignInPage<'a> {
    SignInPage {
        title: format!("Register with {}", c.tenant.name),
        intro: "Sign in with your email address and the one-time PIN from your invitation, or your password.".into(),
        action: format!("{}/sign-in{}", c.base, c.suffix),
        email,
        secret_label: "PIN or password",
        form_error: None,
        email_error: None,
        secret_error: None,
        note: Some("Lost the invitation? This link still works; ask your administrator for a new PIN.".into()),
    }
}

pub(crate) fn profile_steps(platform: ApplePlatform) -> &'static str {
    match platform {
        ApplePlatform::Ios => {
            "Tap the button, allow the download, then open Settings > Profile Downloaded and tap Install."
        }
        ApplePlatform::Macos => {
            "Click the button, then open System Settings > Privacy & Security > Profiles, double-click the downloaded profile and click Install."
        }
    }
}

async fn page(
    State(s): State<AppState>,
    Path((slug, key)): Path<(String, String)>,
    Query(q): Query<DeviceQuery>,
    headers: HeaderMap,
) -> Response {
    let c = match ctx(&s, &slug, &key, &headers, &q).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let portal = format!("/portal/{}", c.tenant.slug);
    if c.device == Device::Desktop {
        let link = format!("{}{}", s.core.public_url(), c.base);
        return render(
            StatusCode::OK,
            &DesktopPage {
                title: format!("Register a device with {}", c.tenant.name),
                tenant: &c.tenant.name,
                qr_svg: qr_svg(&link),
                link: &link,
                portal,
            },
        );
    }
    let (session, user) = match session(&s, &c.tenant, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return render(StatusCode::OK, &sign_in_page(&c, "")),
        Err(r) => return r,
    };
    if session.must_set_password {
        return render(
            StatusCode::OK,
            &PasswordPage {
                title: "Choose a password",
                name: &user.display_name,
                tenant: &c.tenant.name,
                action: format!("{}/password{}", c.base, c.suffix),
                csrf: &session.csrf,
                password_error: None,
                confirm_error: None,
            },
        );
    }
    let minutes = s.core.profile_minutes(&c.tenant).await.unwrap_or(10);
    match c.device {
        Device::Android => render(
            StatusCode::OK,
            &AndroidPage {
                title: "Install the client app",
                email: &user.email,
                tenant: &c.tenant.name,
                portal,
            },
        ),
        device => {
            let (platform, name, switch, switch_text) = match device {
                Device::Mac => (
                    ApplePlatform::Macos,
                    "macos",
                    Some(format!("{}?device=ios", c.base)),
                    "On an iPad? Use the iPad page instead.",
                ),
                _ => (ApplePlatform::Ios, "ios", None, ""),
            };
            render(
                StatusCode::OK,
                &ProfilePage {
                    title: "Install the management profile",
                    email: &user.email,
                    steps: profile_steps(platform),
                    action: format!("{}/profile", c.base),
                    csrf: &session.csrf,
                    platform: name,
                    minutes,
                    switch,
                    switch_text,
                },
            )
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub secret: String,
}

/// Places a refusal next to the field it concerns (never saying whether the email exists).
pub(crate) fn place_refusal(page: &mut SignInPage<'_>, r: &Refusal) {
    match r {
        Refusal::PinRequired | Refusal::PinExpired | Refusal::PinUsed => {
            page.secret_error = Some(r.message())
        }
        _ => page.form_error = Some(r.message()),
    }
}

async fn sign_in(
    State(s): State<AppState>,
    Path((slug, key)): Path<(String, String)>,
    Query(q): Query<DeviceQuery>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let c = match ctx(&s, &slug, &key, &headers, &q).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut page = sign_in_page(&c, form.email.trim());
    if mdm_core::users::normalize_email(&form.email).is_err() {
        page.email_error = Some("Enter your email address, like name@example.com.".into());
        return render(FORM_INVALID, &page);
    }
    if form.secret.is_empty() {
        page.secret_error = Some("Enter the PIN from your invitation, or your password.".into());
        return render(FORM_INVALID, &page);
    }
    let creds = Credentials {
        email: &form.email,
        secret: &form.secret,
        addr,
    };
    match s.core.sign_in(&c.tenant, Channel::Web, creds).await {
        Ok(Ok(signed)) => {
            let cookie = signed.session.map(|o| {
                session_cookie(
                    COOKIE,
                    &o.secret,
                    &format!("/enroll/{slug}/"),
                    s.core.public_url().starts_with("https:"),
                    SESSION_LIFETIME.whole_seconds(),
                )
            });
            see_other(&format!("{}{}", c.base, c.suffix), cookie)
        }
        Ok(Err(refusal)) => {
            place_refusal(&mut page, &refusal);
            render(sign_in_refusal_status(&refusal), &page)
        }
        Err(e) => error_page(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub confirm: String,
}

pub(crate) fn session_ended(sign_in: &str) -> Response {
    render(
        SESSION_GONE,
        &crate::pages::MessagePage {
            title: "Please sign in again",
            text: "Your session has ended, or the form was too old.",
            link: Some(sign_in),
            link_text: "Sign in",
        },
    )
}

async fn set_password(
    State(s): State<AppState>,
    Path((slug, key)): Path<(String, String)>,
    Query(q): Query<DeviceQuery>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let c = match ctx(&s, &slug, &key, &headers, &q).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (session, user) = match session(&s, &c.tenant, &headers).await {
        Ok(Some((sess, u))) if sess.csrf_ok(&form.csrf) => (sess, u),
        Ok(_) => return session_ended(&c.base),
        Err(r) => return r,
    };
    match s
        .core
        .set_own_password(&c.tenant, &session, &user, &form.password, &form.confirm)
        .await
    {
        Ok(()) => see_other(&format!("{}{}", c.base, c.suffix), None),
        Err(CoreError::Invalid { field, message: m }) => {
            let (password_error, confirm_error) = if field == "confirm" {
                (None, Some(m))
            } else {
                (Some(m), None)
            };
            render(
                FORM_INVALID,
                &PasswordPage {
                    title: "Choose a password",
                    name: &user.display_name,
                    tenant: &c.tenant.name,
                    action: format!("{}/password{}", c.base, c.suffix),
                    csrf: &session.csrf,
                    password_error,
                    confirm_error,
                },
            )
        }
        Err(e) => error_page(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct ProfileForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub platform: String,
}

async fn download(
    State(s): State<AppState>,
    Path((slug, key)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<ProfileForm>,
) -> Response {
    let c = match ctx(&s, &slug, &key, &headers, &DeviceQuery::default()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let user = match session(&s, &c.tenant, &headers).await {
        Ok(Some((sess, u))) if sess.csrf_ok(&form.csrf) && !sess.must_set_password => u,
        Ok(_) => return session_ended(&c.base),
        Err(r) => return r,
    };
    let platform = match form.platform.as_str() {
        "macos" => ApplePlatform::Macos,
        "ios" => ApplePlatform::Ios,
        _ => return message(FORM_INVALID, "Unknown device", "Go back and try again."),
    };
    match s.core.issue_user_profile(&c.tenant, &user, platform).await {
        Ok(issued) => profile_download(issued),
        Err(e) => error_page(e),
    }
}
