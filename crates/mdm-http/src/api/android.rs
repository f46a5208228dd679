//! Android administration: QR provisioning codes for company-owned devices.
//! Lifecycle actions use the shared device endpoints (`devices.rs`).

use crate::AppState;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::pages::qr_svg;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mdm_core::android::provisioning::{Provisioning, ProvisioningRequest};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_provisioning))
}

/// How the code is answered.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningFormat {
    /// `svg` answers the QR image itself (`image/svg+xml`).
    pub format: Option<String>,
}

/// A provisioning code with its QR image.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProvisioningCode {
    #[serde(flatten)]
    pub provisioning: Provisioning,
    /// The payload as an SVG QR code.
    pub qr_svg: String,
}

/// A QR provisioning code for a factory-new company-owned device (fully
/// managed or work profile): the `PROVISIONING_*` JSON with a one-time
/// enrollment token for the user. Never carries a password.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/android/provisioning", tag = "android",
    request_body = ProvisioningRequest,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ProvisioningFormat),
    responses((status = 201, body = ProvisioningCode), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn create_provisioning(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(format): ApiQuery<ProvisioningFormat>,
    ApiJson(req): ApiJson<ProvisioningRequest>,
) -> ApiResult<Response> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    let provisioning = s.core.android_provisioning(&actor, &tenant, &req).await?;
    let svg = qr_svg(&provisioning.payload);
    if format.format.as_deref() == Some("svg") {
        return Ok((
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "image/svg+xml")],
            svg,
        )
            .into_response());
    }
    Ok((
        StatusCode::CREATED,
        Json(ProvisioningCode {
            provisioning,
            qr_svg: svg,
        }),
    )
        .into_response())
}
