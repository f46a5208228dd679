//! Settings: the user settings (R3), the enrollment URL with its version and
//! "regenerate" (R13, with what stops working), mail with "send test mail",
//! the APNs and FCM credentials with their expiry, and the LDAP connector
//! with "test connection" and "sync now" (its forms are in `directory.rs`),
//! and what signs management profiles, with the upload of a signing
//! identity from a CA devices trust (ADR 0017).

use super::{FormData, Nav, Posted, Settings, Signed, fail, tenant_page, when, when_opt};
use crate::AppState;
use crate::error::FORM_INVALID;
use crate::pages::{render, see_other};
use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use mdm_core::CoreError;
use mdm_core::facilities::{PushCredential, TestMail};
use mdm_core::settings::SettingsPatch;
use mdm_core::tenants::Tenant;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/t/{slug}/settings", get(page))
        .route("/admin/t/{slug}/settings/user", post(user_settings))
        .route("/admin/t/{slug}/settings/enrollment-url", post(regenerate))
        .route("/admin/t/{slug}/settings/test-mail", post(test_mail))
        .route(
            "/admin/t/{slug}/settings/signing-identity",
            post(upload_signing_identity),
        )
        .route(
            "/admin/t/{slug}/settings/signing-identity/remove",
            post(remove_signing_identity),
        )
        .merge(super::directory::router())
}

pub struct Push {
    pub name: &'static str,
    pub kind: String,
    pub detail: String,
    pub expires: String,
    pub warning: Option<String>,
}

fn push(name: &'static str, c: &PushCredential, now: time::OffsetDateTime) -> Push {
    let warning = c.expires_at.and_then(|e| {
        let days = (e - now).whole_days();
        if e <= now {
            Some("EXPIRED: no device can be woken. Renew it with the same Apple ID.".into())
        } else if days < 30 {
            Some(format!("Expires in {days} days: renew it soon."))
        } else {
            None
        }
    });
    Push {
        name,
        kind: c
            .kind
            .clone()
            .unwrap_or_else(|| "not configured (pushes are logged, not sent)".into()),
        detail: c.detail.clone(),
        expires: c
            .expires_at
            .map_or_else(|| "not stated by the credential".into(), when),
        warning,
    }
}

/// What signs the tenant's management profiles, for the settings page.
pub struct Signing {
    /// Who signs the next profile, in words.
    pub current: String,
    /// The uploaded identity: subject, issuer, end, whether it signs now.
    pub uploaded: Option<(String, String, String, bool)>,
    pub warning: Option<String>,
    pub error: Option<String>,
}

fn signing(ca: &mdm_core::pki::CaInfo, now: time::OffsetDateTime) -> Signing {
    let uploaded = ca.signing_identity.as_ref().map(|i| {
        (
            i.subject.clone(),
            i.issuer.clone(),
            when(i.not_after),
            i.in_use,
        )
    });
    let warning = ca.signing_identity.as_ref().and_then(|i| {
        let days = (i.not_after - now).whole_days();
        if !i.in_use {
            Some("The uploaded identity is not valid now: the tenant's own signer signs profiles. Upload a renewed one.".into())
        } else if days < 30 {
            Some(format!("The uploaded identity expires in {days} days: upload its renewal."))
        } else {
            None
        }
    });
    let current = match (ca.profiles_signed_by, &ca.signing_identity, &ca.profile_signer) {
        ("signing_identity", Some(i), _) => {
            format!(
                "the uploaded identity {}, issued by {} (devices that trust the root it chains to show profiles as verified)",
                i.subject, i.issuer
            )
        }
        ("ca", _, _) => format!("the tenant CA {} itself", ca.subject),
        (_, _, Some(p)) => format!(
            "{}, certified by the tenant CA (devices show profiles as not verified)",
            p.subject
        ),
        _ => "a signer the tenant CA certifies, made with the first profile (devices show profiles as not verified)".into(),
    };
    Signing {
        current,
        uploaded,
        warning,
        error: None,
    }
}

/// The whole settings page; handlers fill in the result of their form.
#[derive(Template)]
#[template(path = "admin/settings.html")]
pub struct SettingsPage {
    pub title: &'static str,
    pub nav: Nav,
    pub flash: Option<String>,
    pub pin_required: bool,
    pub pin_days: String,
    pub temporary_password: bool,
    pub profile_minutes: String,
    pub qr_registration: bool,
    pub reminder_hours: String,
    pub reminder_max: String,
    pub reminder_email: bool,
    pub reminder_push: bool,
    pub reminder_error: Option<String>,
    pub pin_error: Option<String>,
    pub profile_error: Option<String>,
    pub url_version: i64,
    pub url: String,
    pub registration_url: String,
    pub url_created: String,
    pub confirm_error: Option<&'static str>,
    pub mail: String,
    pub mail_from: String,
    pub mail_to: String,
    pub mail_error: Option<String>,
    pub mail_result: Option<String>,
    pub pushes: Vec<Push>,
    pub directory: super::directory::DirectorySection,
    pub signing: Signing,
}

pub async fn settings_page(
    s: &AppState,
    signed: &Signed,
    tenant: &Tenant,
    nav: Nav,
) -> Result<SettingsPage, CoreError> {
    let actor = signed.actor();
    let settings = s.core.settings(&actor, tenant).await?;
    let url = s.core.enrollment_url(&actor, tenant).await?;
    let f = s.core.facilities(&actor, tenant)?;
    let now = s.core.now();
    let directory = super::directory::section(s, signed, tenant).await?;
    let ca = s.core.ca_info(&actor, tenant).await?;
    Ok(SettingsPage {
        signing: signing(&ca, now),
        title: "Settings",
        flash: None,
        pin_required: settings.pin_required,
        pin_days: format!("{}", settings.pin_lifetime_secs as f64 / 86400.0),
        temporary_password: settings.temporary_password,
        profile_minutes: format!("{}", settings.profile_validity_secs / 60),
        qr_registration: settings.qr_registration,
        reminder_hours: format!("{}", settings.reminder_interval_secs as f64 / 3600.0),
        reminder_max: settings.reminder_max.to_string(),
        reminder_email: settings.reminder_email,
        reminder_push: settings.reminder_push,
        reminder_error: None,
        pin_error: None,
        profile_error: None,
        url_version: url.version,
        url: url.url,
        registration_url: url.registration_url,
        url_created: when(url.created_at),
        confirm_error: None,
        mail: f.mail.clone(),
        mail_from: f.mail_from.clone(),
        mail_to: signed.0.admin.email.clone(),
        mail_error: None,
        mail_result: None,
        pushes: vec![
            push("APNs (Apple)", &f.apns, now),
            push("FCM (Android)", &f.fcm, now),
        ],
        directory,
        nav,
    })
}

#[derive(serde::Deserialize, Default)]
struct PageParams {
    saved: Option<String>,
}

async fn page(
    State(s): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    Query(pp): Query<PageParams>,
) -> Response {
    let (tenant, nav) = match tenant_page(&s, &signed, &slug, "settings").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match settings_page(&s, &signed, &tenant, nav).await {
        Ok(mut p) => {
            p.flash = pp.saved.map(|what| match what.as_str() {
                "url" => "The enrollment URL was regenerated: older URLs stop working.".into(),
                "directory" => "The directory connector was saved.".into(),
                "signing" => {
                    "The signing identity was uploaded: it signs every new profile.".into()
                }
                "signing-removed" => {
                    "The signing identity was removed: the tenant's own signer signs new profiles."
                        .into()
                }
                _ => "Saved.".into(),
            });
            render(StatusCode::OK, &p)
        }
        Err(e) => fail(e),
    }
}

/// A form posted from the settings page, its CSRF token checked: who posted
/// it, its fields, its tenant, and the settings page to show its result or
/// errors on. Nothing runs for a request without a live session or with a
/// foreign token (the rejection is the sign-in redirect or the refusal page).
pub struct SettingsForm {
    pub signed: Signed,
    pub form: FormData,
    pub tenant: Tenant,
    pub page: SettingsPage,
}

impl FromRequest<AppState> for SettingsForm {
    type Rejection = Response;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Response> {
        let Posted {
            signed,
            form,
            tenant,
            nav,
            ..
        } = Posted::<Settings>::from_request(req, s).await?;
        let page = settings_page(s, &signed, &tenant, nav)
            .await
            .map_err(fail)?;
        Ok(Self {
            signed,
            form,
            tenant,
            page,
        })
    }
}

fn number(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

async fn user_settings(
    State(s): State<AppState>,
    SettingsForm {
        signed,
        form,
        tenant,
        mut page,
    }: SettingsForm,
) -> Response {
    page.pin_days = form.get("pin_days").to_string();
    page.profile_minutes = form.get("profile_minutes").to_string();
    page.reminder_hours = form.get("reminder_hours").to_string();
    page.reminder_max = form.get("reminder_max").to_string();
    let reminder = number(form.get("reminder_hours")).map(|h| (h * 3600.0).round() as i64);
    let reminder_max = form.get("reminder_max").parse::<i64>().ok();
    if reminder.is_none() || reminder_max.is_none() {
        page.reminder_error =
            Some("Enter hours between reminders and a whole number of reminders.".into());
    }
    let pin = number(form.get("pin_days")).map(|d| (d * 86400.0).round() as i64);
    let profile = number(form.get("profile_minutes")).map(|m| (m * 60.0).round() as i64);
    if pin.is_none() {
        page.pin_error = Some("Enter a number of days.".into());
    }
    if profile.is_none() {
        page.profile_error = Some("Enter a number of minutes.".into());
    }
    if page.pin_error.is_some() || page.profile_error.is_some() || page.reminder_error.is_some() {
        return render(FORM_INVALID, &page);
    }
    let patch = SettingsPatch {
        pin_required: Some(form.checked("pin_required")),
        pin_lifetime_secs: pin,
        temporary_password: Some(form.checked("temporary_password")),
        profile_validity_secs: profile,
        qr_registration: Some(form.checked("qr_registration")),
        reminder_interval_secs: reminder,
        reminder_max,
        reminder_email: Some(form.checked("reminder_email")),
        reminder_push: Some(form.checked("reminder_push")),
    };
    match s
        .core
        .update_settings(&signed.actor(), &tenant, &patch)
        .await
    {
        Ok(_) => see_other(
            &format!("/admin/t/{}/settings?saved=user", tenant.slug),
            None,
        ),
        Err(CoreError::Invalid { field, message }) => {
            if field == "pin_lifetime_secs" {
                page.pin_error = Some(format!("PIN lifetime: {message}"));
            } else if field.starts_with("reminder") {
                page.reminder_error = Some(format!("Reminders: {message}"));
            } else {
                page.profile_error = Some(format!("Profile validity: {message}"));
            }
            render(FORM_INVALID, &page)
        }
        Err(e) => fail(e),
    }
}

async fn regenerate(
    State(s): State<AppState>,
    SettingsForm {
        signed,
        form,
        tenant,
        mut page,
    }: SettingsForm,
) -> Response {
    if !form.checked("understood") {
        page.confirm_error = Some("Tick the box to confirm that older links will stop working.");
        return render(FORM_INVALID, &page);
    }
    match s
        .core
        .regenerate_enrollment_url(&signed.actor(), &tenant)
        .await
    {
        Ok(_) => see_other(
            &format!("/admin/t/{}/settings?saved=url", tenant.slug),
            None,
        ),
        Err(e) => fail(e),
    }
}

async fn test_mail(
    State(s): State<AppState>,
    SettingsForm {
        signed,
        form,
        tenant,
        mut page,
    }: SettingsForm,
) -> Response {
    page.mail_to = form.get("to").to_string();
    match s
        .core
        .send_test_mail(&signed.actor(), &tenant, form.get("to"))
        .await
    {
        Ok(TestMail::Delivered) => {
            page.mail_result = Some(format!(
                "Delivered to the mail server for {}.",
                form.get("to")
            ));
            render(StatusCode::OK, &page)
        }
        Ok(TestMail::Failed(why)) => {
            page.mail_error = Some(format!("Not delivered: {why}"));
            render(StatusCode::BAD_GATEWAY, &page)
        }
        Err(CoreError::Invalid { message, .. }) => {
            page.mail_error = Some(message);
            render(FORM_INVALID, &page)
        }
        Err(e) => fail(e),
    }
}

async fn upload_signing_identity(
    State(s): State<AppState>,
    SettingsForm {
        signed,
        form,
        tenant,
        mut page,
    }: SettingsForm,
) -> Response {
    let key = form.get("private_key_pem").trim();
    let p12 = form.file("pkcs12").filter(|f| !f.is_empty());
    let new = mdm_core::signing_identity::NewSigningIdentity {
        certificate_pem: p12
            .is_none()
            .then(|| form.get("certificate_pem").to_string()),
        private_key_pem: (p12.is_none() && !key.is_empty()).then(|| key.to_string()),
        pkcs12_base64: p12.map(|f| base64::engine::general_purpose::STANDARD.encode(f)),
        password: p12.map(|_| form.get("pkcs12_password").to_string()),
    };
    match s
        .core
        .set_signing_identity(&signed.actor(), &tenant, &new)
        .await
    {
        Ok(_) => see_other(
            &format!("/admin/t/{}/settings?saved=signing#signing", tenant.slug),
            None,
        ),
        Err(CoreError::Invalid { field, message }) => {
            let what = match field.as_str() {
                "private_key_pem" => "Private key",
                "pkcs12_base64" => "PKCS#12 file",
                _ => "Certificates",
            };
            // The pasted text is not shown again: it may hold a private key.
            page.signing.error = Some(format!("{what}: {message}"));
            render(FORM_INVALID, &page)
        }
        Err(e) => fail(e),
    }
}

async fn remove_signing_identity(
    State(s): State<AppState>,
    SettingsForm { signed, tenant, .. }: SettingsForm,
) -> Response {
    match s
        .core
        .remove_signing_identity(&signed.actor(), &tenant)
        .await
    {
        Ok(()) | Err(CoreError::NotFound(_)) => see_other(
            &format!(
                "/admin/t/{}/settings?saved=signing-removed#signing",
                tenant.slug
            ),
            None,
        ),
        Err(e) => fail(e),
    }
}

/// `when_opt` for the directory section.
pub fn last_run(t: Option<time::OffsetDateTime>) -> String {
    when_opt(t)
}
