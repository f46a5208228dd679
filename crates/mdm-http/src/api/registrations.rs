//! Registration attempts: the funnel from invitation to an active device.

use crate::AppState;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use mdm_core::registrations::{Registration, RegistrationQuery};
use mdm_core::users::Page;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_registrations))
        .routes(routes!(get_registration))
        .routes(routes!(cancel_registration))
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
