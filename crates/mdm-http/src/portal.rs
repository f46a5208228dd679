//! The self-service portal (R11) at `/portal/<slug>`: sign in with email
//! and password; the Install Management Profile page for a Mac; a
//! single-use QR code for the client app (R9); "My devices" with their
//! statuses and the registrations in progress.

use crate::AppState;
use crate::error::{FORM_INVALID, sign_in_refusal_status};
use crate::go::{
    PasswordForm, PasswordPage, ProfileForm, ProfilePage, SignInForm, SignInPage, place_refusal,
    profile_steps, session_ended,
};
use crate::pages::{
    ClientAddr, cookie, error_page, profile_download, qr_svg, render, see_other, session_cookie,
};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use mdm_core::CoreError;
use mdm_core::profiles::ApplePlatform;
use mdm_core::registration::{Channel, Credentials};
use mdm_core::tenants::Tenant;
use mdm_core::users::User;
use mdm_core::websession::{SESSION_LIFETIME, SessionKind, WebSession};

const COOKIE: &str = "mdm_portal";
// The cookie's path is `/portal/<slug>` without a trailing slash: a browser
// sends a `/portal/<slug>/` cookie to the sub-pages but not to the portal's
// home page itself (RFC 6265 path-match), which left a signed-in browser on
// the sign-in form.

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/portal/{slug}", get(home))
        .route("/portal/{slug}/sign-in", post(sign_in))
        .route("/portal/{slug}/sign-out", post(sign_out))
        .route("/portal/{slug}/password", post(set_password))
        .route("/portal/{slug}/profile", get(profile_page).post(download))
        .route("/portal/{slug}/qr", get(qr))
        .route("/portal/{slug}/devices", get(crate::my_devices::page))
        .layer(tower_http::csrf::CsrfLayer::new())
}

#[derive(Template)]
#[template(path = "portal_home.html")]
struct HomePage<'a> {
    title: String,
    email: &'a str,
    base: String,
    csrf: &'a str,
    qr: bool,
}

#[derive(Template)]
#[template(path = "qr.html")]
struct QrPage {
    title: &'static str,
    qr_svg: String,
    payload: String,
    expires: String,
    back: String,
}

pub(crate) fn base(t: &Tenant) -> String {
    format!("/portal/{}", t.slug)
}

fn sign_in_page<'a>(t: &Tenant, email: &'a str) -> SignInPage<'a> {
    SignInPage {
        title: format!("{} self-service portal", t.name),
        intro: "Sign in with your email address and password.".into(),
        action: format!("{}/sign-in", base(t)),
        email,
        secret_label: "Password",
        form_error: None,
        email_error: None,
        secret_error: None,
        note: Some("No password yet? Open the link in your invitation email first.".into()),
    }
}

pub(crate) async fn tenant(s: &AppState, slug: &str) -> Result<Tenant, Response> {
    s.core.public_tenant(slug).await.map_err(error_page)
}

pub(crate) async fn session(
    s: &AppState,
    t: &Tenant,
    headers: &HeaderMap,
) -> Result<Option<(WebSession, User)>, Response> {
    match cookie(headers, COOKIE) {
        Some(secret) => s
            .core
            .web_session(t, SessionKind::Portal, &secret)
            .await
            .map_err(error_page),
        None => Ok(None),
    }
}

fn password_page<'a>(t: &'a Tenant, user: &'a User, session: &'a WebSession) -> PasswordPage<'a> {
    PasswordPage {
        title: "Choose a password",
        name: &user.display_name,
        tenant: &t.name,
        action: format!("{}/password", base(t)),
        csrf: &session.csrf,
        password_error: None,
        confirm_error: None,
    }
}

async fn home(State(s): State<AppState>, Path(slug): Path<String>, headers: HeaderMap) -> Response {
    let t = match tenant(&s, &slug).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match session(&s, &t, &headers).await {
        Ok(Some((sess, user))) if sess.must_set_password => {
            render(StatusCode::OK, &password_page(&t, &user, &sess))
        }
        Ok(Some((sess, user))) => {
            let qr = s.core.qr_enabled(&t).await.unwrap_or(false);
            render(
                StatusCode::OK,
                &HomePage {
                    title: format!("{} self-service portal", t.name),
                    email: &user.email,
                    base: base(&t),
                    csrf: &sess.csrf,
                    qr,
                },
            )
        }
        Ok(None) => render(StatusCode::OK, &sign_in_page(&t, "")),
        Err(r) => r,
    }
}

async fn sign_in(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    ClientAddr(addr): ClientAddr,
    Form(form): Form<SignInForm>,
) -> Response {
    let t = match tenant(&s, &slug).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut page = sign_in_page(&t, form.email.trim());
    if mdm_core::users::normalize_email(&form.email).is_err() {
        page.email_error = Some("Enter your email address, like name@example.com.".into());
        return render(FORM_INVALID, &page);
    }
    let creds = Credentials {
        email: &form.email,
        secret: &form.secret,
        addr,
    };
    match s.core.sign_in(&t, Channel::Portal, creds).await {
        Ok(Ok(signed)) => {
            let cookie = signed.session.map(|o| {
                session_cookie(
                    COOKIE,
                    &o.secret,
                    &base(&t),
                    s.core.public_url().starts_with("https:"),
                    SESSION_LIFETIME.whole_seconds(),
                )
            });
            see_other(&base(&t), cookie)
        }
        Ok(Err(refusal)) => {
            place_refusal(&mut page, &refusal);
            render(sign_in_refusal_status(&refusal), &page)
        }
        Err(e) => error_page(e),
    }
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let t = match tenant(&s, &slug).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let (Ok(Some((sess, _))), Some(secret)) =
        (session(&s, &t, &headers).await, cookie(&headers, COOKIE))
        && sess.csrf_ok(&form.csrf)
        && let Err(e) = s.core.end_web_session(&t, &secret).await
    {
        return error_page(e);
    }
    see_other(
        &base(&t),
        Some(session_cookie(COOKIE, "", &base(&t), false, 0)),
    )
}

async fn set_password(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let t = match tenant(&s, &slug).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (sess, user) = match session(&s, &t, &headers).await {
        Ok(Some((sess, u))) if sess.csrf_ok(&form.csrf) => (sess, u),
        Ok(_) => return session_ended(&base(&t)),
        Err(r) => return r,
    };
    match s
        .core
        .set_own_password(&t, &sess, &user, &form.password, &form.confirm)
        .await
    {
        Ok(()) => see_other(&base(&t), None),
        Err(CoreError::Invalid { field, message }) => {
            let mut page = password_page(&t, &user, &sess);
            if field == "confirm" {
                page.confirm_error = Some(message);
            } else {
                page.password_error = Some(message);
            }
            render(FORM_INVALID, &page)
        }
        Err(e) => error_page(e),
    }
}

async fn profile_page(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let t = match tenant(&s, &slug).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (sess, user) = match session(&s, &t, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return see_other(&base(&t), None),
        Err(r) => return r,
    };
    if sess.must_set_password {
        return render(StatusCode::OK, &password_page(&t, &user, &sess));
    }
    let minutes = s.core.profile_minutes(&t).await.unwrap_or(10);
    render(
        StatusCode::OK,
        &ProfilePage {
            title: "Install Management Profile",
            email: &user.email,
            steps: profile_steps(ApplePlatform::Macos),
            action: format!("{}/profile", base(&t)),
            csrf: &sess.csrf,
            platform: "macos",
            minutes,
            switch: None,
            switch_text: "",
        },
    )
}

async fn download(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ProfileForm>,
) -> Response {
    let t = match tenant(&s, &slug).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let user = match session(&s, &t, &headers).await {
        Ok(Some((sess, u))) if sess.csrf_ok(&form.csrf) && !sess.must_set_password => u,
        Ok(_) => return session_ended(&base(&t)),
        Err(r) => return r,
    };
    let platform = if form.platform == "ios" {
        ApplePlatform::Ios
    } else {
        ApplePlatform::Macos
    };
    match s.core.issue_user_profile(&t, &user, platform).await {
        Ok(issued) => profile_download(issued),
        Err(e) => error_page(e),
    }
}

async fn qr(State(s): State<AppState>, Path(slug): Path<String>, headers: HeaderMap) -> Response {
    let t = match tenant(&s, &slug).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let user = match session(&s, &t, &headers).await {
        Ok(Some((sess, u))) if !sess.must_set_password => u,
        Ok(_) => return see_other(&base(&t), None),
        Err(r) => return r,
    };
    match s.core.create_qr_code(&t, &user).await {
        Ok(code) => render(
            StatusCode::OK,
            &QrPage {
                title: "Register the client app",
                qr_svg: qr_svg(&code.payload),
                payload: code.payload.clone(),
                expires: mdm_core::invite_mail::human_time(code.expires_at),
                back: base(&t),
            },
        ),
        Err(e) => error_page(e),
    }
}
