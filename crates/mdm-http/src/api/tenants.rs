//! Tenants, their user settings and their enrollment URL.

use crate::AppState;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, Caller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mdm_core::enrollment::EnrollmentUrl;
use mdm_core::settings::{SettingsPatch, UserSettings};
use mdm_core::tenants::{NewTenant, Tenant};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant))
        .routes(routes!(get_settings, update_settings))
        .routes(routes!(get_enrollment_url))
        .routes(routes!(regenerate_enrollment_url))
}

/// Tenants the caller may see (all of them for an operator token).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, body = Vec<Tenant>), (status = 401, body = ErrorEnvelope)))]
async fn list_tenants(
    State(s): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Json<Vec<Tenant>>> {
    Ok(Json(s.core.tenants(&actor).await?))
}

/// Creates a tenant (operator tokens only).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = NewTenant,
    responses((status = 201, body = Tenant), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn create_tenant(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(new): ApiJson<NewTenant>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_tenant(&actor, new).await?),
    ))
}

/// One tenant, by id or slug.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorEnvelope)))]
async fn get_tenant(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<Tenant>> {
    Ok(Json(s.core.tenant(&actor, &tenant).await?))
}

/// The tenant's user settings (R3).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/settings", tag = "settings",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = UserSettings), (status = 404, body = ErrorEnvelope)))]
async fn get_settings(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<UserSettings>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.settings(&actor, &tenant).await?))
}

/// Changes some of the tenant's user settings.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/settings", tag = "settings", request_body = SettingsPatch,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = UserSettings), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn update_settings(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> ApiResult<Json<UserSettings>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.update_settings(&actor, &tenant, &patch).await?))
}

/// The tenant's current device enrollment URL (R13).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/enrollment-url", tag = "enrollment",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = EnrollmentUrl), (status = 404, body = ErrorEnvelope)))]
async fn get_enrollment_url(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<EnrollmentUrl>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.enrollment_url(&actor, &tenant).await?))
}

/// Makes a new enrollment URL; every older one stops working with an "out of date" answer.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/enrollment-url/regenerate", tag = "enrollment",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = EnrollmentUrl), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn regenerate_enrollment_url(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<EnrollmentUrl>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(
        s.core.regenerate_enrollment_url(&actor, &tenant).await?,
    ))
}
