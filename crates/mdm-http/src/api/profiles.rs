//! Apple management profiles: one signed `.mobileconfig` per registration attempt.

use crate::AppState;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, Caller};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mdm_core::profiles::NewProfile;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(issue_profile))
}

/// Builds and signs a management profile for one registration attempt: the
/// tenant CA, a SCEP payload whose one-time challenge expires with the
/// tenant's profile validity, and the MDM payload. The registration id is in
/// the `X-Registration` header; a device that installs the profile too late
/// is refused at SCEP and the refusal names that registration.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/enrollment-profiles", tag = "enrollment", request_body = NewProfile,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses(
        (status = 201, description = "Signed profile (CMS, DER)", content_type = "application/x-apple-aspen-config", body = Vec<u8>,
            headers(("X-Registration" = String, description = "The registration the profile belongs to"))),
        (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn issue_profile(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(new): ApiJson<NewProfile>,
) -> ApiResult<Response> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    let issued = s.core.issue_profile(&actor, &tenant, &new).await?;
    let mut res = (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, mdm_apple_content_type())],
        issued.signed,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&issued.registration) {
        res.headers_mut().insert("x-registration", v);
    }
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"enroll.mobileconfig\""),
    );
    Ok(res)
}

fn mdm_apple_content_type() -> &'static str {
    "application/x-apple-aspen-config"
}
