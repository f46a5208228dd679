//! Devices: inventory, their Apple enrollments and commands, and the
//! lifecycle actions (retire, wipe, lock, re-enrol).

use crate::AppState;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mdm_core::DeviceId;
use mdm_core::android::AndroidCommand;
use mdm_core::commands::{AppleCommand, CommandQuery, NewCommand};
use mdm_core::devices::{Device, DeviceDetail, DeviceQuery, EraseOptions, QueuedCommand};
use mdm_core::users::Page;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_devices))
        .routes(routes!(get_device, delete_device))
        .routes(routes!(queue_command, list_commands))
        .routes(routes!(retire_device))
        .routes(routes!(wipe_device))
        .routes(routes!(lock_device))
        .routes(routes!(reenroll_device))
        .routes(routes!(resend_profile))
        .routes(routes!(list_agent_commands))
}

/// Delete (Android): the entry is gone, its key stops working, and the
/// device may register again without anything to clear (R18).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/devices/{id}", tag = "devices",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn delete_device(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, DeviceId)>,
) -> ApiResult<StatusCode> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    s.core.delete_device(&actor, &tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An Android device's agent commands and their results, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{id}/agent-commands", tag = "devices",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path), CommandQuery),
    responses((status = 200, body = Page<AndroidCommand>), (status = 404, body = ErrorEnvelope)))]
async fn list_agent_commands(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, DeviceId)>,
    ApiQuery(q): ApiQuery<CommandQuery>,
) -> ApiResult<Json<Page<AndroidCommand>>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(
        s.core
            .android_device_commands(&actor, &tenant, id, &q)
            .await?,
    ))
}

/// Devices of the tenant, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices", tag = "devices",
    params(("tenant" = String, Path, description = "Tenant id or slug"), DeviceQuery),
    responses((status = 200, body = Page<Device>), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn list_devices(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeviceQuery>,
) -> ApiResult<Json<Page<Device>>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.devices(&actor, &tenant, &q).await?))
}

/// One device with its Apple MDM channels (push secrets are never shown).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{id}", tag = "devices",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path)),
    responses((status = 200, body = DeviceDetail), (status = 404, body = ErrorEnvelope)))]
async fn get_device(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, DeviceId)>,
) -> ApiResult<Json<DeviceDetail>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.device(&actor, &tenant, id).await?))
}

/// Queues a typed MDM command and pushes to the device (or, with
/// `user_channel`, to its macOS user channel).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{id}/commands", tag = "devices", request_body = NewCommand,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path)),
    responses((status = 201, body = AppleCommand), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn queue_command(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, DeviceId)>,
    ApiJson(new): ApiJson<NewCommand>,
) -> ApiResult<(StatusCode, Json<AppleCommand>)> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    let cmd = s.core.queue_new_command(&actor, &tenant, id, &new).await?;
    Ok((StatusCode::CREATED, Json(cmd)))
}

/// The device's commands and their results, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{id}/commands", tag = "devices",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path), CommandQuery),
    responses((status = 200, body = Page<AppleCommand>), (status = 404, body = ErrorEnvelope)))]
async fn list_commands(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, DeviceId)>,
    ApiQuery(q): ApiQuery<CommandQuery>,
) -> ApiResult<Json<Page<AppleCommand>>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.device_commands(&actor, &tenant, id, &q).await?))
}

/// Retire: removes management from the device (RemoveProfile of the
/// enrollment profile); the record becomes `retired` at once.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{id}/retire", tag = "devices",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path)),
    responses((status = 202, body = QueuedCommand), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn retire_device(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, DeviceId)>,
) -> ApiResult<(StatusCode, Json<QueuedCommand>)> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    let cmd = s.core.retire_device(&actor, &tenant, id).await?;
    Ok((StatusCode::ACCEPTED, Json(cmd)))
}

/// Re-send the enrollment profile: queues InstallProfile with a fresh
/// profile for the same device record, which renews its identity
/// certificate in place (the server does this by itself before certificates
/// expire). The device must be active.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{id}/resend-profile", tag = "devices",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path)),
    responses((status = 202, body = AppleCommand), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn resend_profile(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, DeviceId)>,
) -> ApiResult<(StatusCode, Json<AppleCommand>)> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    let cmd = s.core.resend_profile(&actor, &tenant, id).await?;
    Ok((StatusCode::ACCEPTED, Json(cmd)))
}

/// Wipe: queues EraseDevice; the record becomes `wiped` when the device acknowledges it.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{id}/wipe", tag = "devices", request_body = EraseOptions,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path)),
    responses((status = 202, body = QueuedCommand), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn wipe_device(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, DeviceId)>,
    ApiJson(options): ApiJson<EraseOptions>,
) -> ApiResult<(StatusCode, Json<QueuedCommand>)> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    let cmd = s.core.wipe_device(&actor, &tenant, id, &options).await?;
    Ok((StatusCode::ACCEPTED, Json(cmd)))
}

/// Lock: queues DeviceLock.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{id}/lock", tag = "devices", request_body = EraseOptions,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path)),
    responses((status = 202, body = QueuedCommand), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn lock_device(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, DeviceId)>,
    ApiJson(options): ApiJson<EraseOptions>,
) -> ApiResult<(StatusCode, Json<QueuedCommand>)> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    let cmd = s.core.lock_device(&actor, &tenant, id, &options).await?;
    Ok((StatusCode::ACCEPTED, Json(cmd)))
}

/// Re-enrol (R17): a fresh expiring profile for the same device record
/// (`X-Registration` names its registration, purpose `reenroll`). Cancelling
/// the registration or letting it expire disables the device's MDM.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{id}/reenroll", tag = "devices",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path)),
    responses(
        (status = 201, description = "Signed profile (CMS, DER)", content_type = "application/x-apple-aspen-config", body = Vec<u8>,
            headers(("X-Registration" = String, description = "The registration the profile belongs to"))),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn reenroll_device(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, DeviceId)>,
) -> ApiResult<Response> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    let issued = s.core.reenroll_device(&actor, &tenant, id).await?;
    let mut res = (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/x-apple-aspen-config")],
        issued.signed,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&issued.registration) {
        res.headers_mut().insert("x-registration", v);
    }
    Ok(res)
}
