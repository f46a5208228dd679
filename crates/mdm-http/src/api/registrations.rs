//! Registration attempts: the funnel from invitation to an active device,
//! the registrations that stall, reminders (R15) and their mail template.

use crate::AppState;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mdm_core::funnel::{Funnel, FunnelQuery, StalledQuery, StalledRegistration};
use mdm_core::mail_templates::{MailTemplate, TemplateView};
use mdm_core::registrations::{Registration, RegistrationQuery};
use mdm_core::reminders::ReminderQueued;
use mdm_core::users::Page;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_registrations))
        .routes(routes!(get_registration))
        .routes(routes!(cancel_registration))
        .routes(routes!(registration_funnel))
        .routes(routes!(stalled_registrations))
        .routes(routes!(remind_registration))
        .routes(routes!(
            get_reminder_template,
            put_reminder_template,
            reset_reminder_template
        ))
}

/// Registrations of the tenant, newest first, with the time of every funnel
/// stage they reached.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/registrations", tag = "registrations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), RegistrationQuery),
    responses((status = 200, body = Page<Registration>), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn list_registrations(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<RegistrationQuery>,
) -> ApiResult<Json<Page<Registration>>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.registrations(&actor, &tenant, &q).await?))
}

/// One registration.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/registrations/{id}", tag = "registrations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path)),
    responses((status = 200, body = Registration), (status = 404, body = ErrorEnvelope)))]
async fn get_registration(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Registration>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.registration(&actor, &tenant, &id).await?))
}

/// The user cancelled the profile installation: the registration ends, and a
/// cancelled re-enrolment disables the device's MDM (R17).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/registrations/{id}/cancel", tag = "registrations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path)),
    responses((status = 200, body = Registration), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn cancel_registration(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Registration>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(
        s.core.cancel_registration(&actor, &tenant, &id).await?,
    ))
}

/// The funnel of the registrations created in a window (default the last 30
/// days): how many reached each stage (invited → PIN used → signed in →
/// profile downloaded → certificate issued → checked in → active), how the
/// others ended, in total, per platform and per day (UTC) of creation.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/registrations/funnel", tag = "registrations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), FunnelQuery),
    responses((status = 200, body = Funnel), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn registration_funnel(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<FunnelQuery>,
) -> ApiResult<Json<Funnel>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.registration_funnel(&actor, &tenant, &q).await?))
}

/// Registrations stuck at their furthest stage for longer than
/// `older_than_secs` (default one day): open ones, and expired first
/// enrolments whose user has not started again. Newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/registrations/stalled", tag = "registrations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), StalledQuery),
    responses((status = 200, body = Page<StalledRegistration>), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn stalled_registrations(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<StalledQuery>,
) -> ApiResult<Json<Page<StalledRegistration>>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(
        s.core.stalled_registrations(&actor, &tenant, &q).await?,
    ))
}

/// "Remind now": queues a reminder (email and client-app push, as the
/// tenant's settings say) for the registration's user immediately. It
/// counts towards the cap and restarts the interval. 409 when the
/// registration has its certificate, was cancelled or was superseded.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/registrations/{id}/remind", tag = "registrations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path)),
    responses((status = 202, body = ReminderQueued), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn remind_registration(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<ReminderQueued>)> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(s.core.remind_registration(&actor, &tenant, &id).await?),
    ))
}

/// The reminder mail template (the built-in one until changed).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/mail-templates/reminder", tag = "registrations",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorEnvelope)))]
async fn get_reminder_template(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<TemplateView>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.reminder_template(&actor, &tenant).await?))
}

/// Replaces the reminder template; both bodies must hold
/// `{{ registration_url }}`.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/mail-templates/reminder", tag = "registrations", request_body = MailTemplate,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn put_reminder_template(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(t): ApiJson<MailTemplate>,
) -> ApiResult<Json<TemplateView>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(
        s.core
            .set_reminder_template(&actor, &tenant, Some(t))
            .await?,
    ))
}

/// Goes back to the built-in reminder template.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/mail-templates/reminder", tag = "registrations",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorEnvelope)))]
async fn reset_reminder_template(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<TemplateView>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(
        s.core.set_reminder_template(&actor, &tenant, None).await?,
    ))
}
