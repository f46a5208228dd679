//! The tenant CA, one-time SCEP challenges and issued certificates.

use crate::AppState;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mdm_core::pki::{CaInfo, CertificateQuery, CertificateRecord, IssuedChallenge, NewChallenge};
use mdm_core::users::Page;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_ca))
        .routes(routes!(create_challenge))
        .routes(routes!(list_certificates))
        .routes(routes!(get_certificate))
        .routes(routes!(revoke_certificate))
}

/// The tenant's certificate authority and SCEP URL.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/ca", tag = "certificates",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = CaInfo), (status = 404, body = ErrorEnvelope)))]
async fn get_ca(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<CaInfo>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.ca_info(&actor, &tenant).await?))
}

/// Mints a one-time SCEP challenge password, valid for the tenant's profile
/// validity, for enrolling a third-party SCEP client by hand.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/scep/challenges", tag = "certificates", request_body = NewChallenge,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = IssuedChallenge), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn create_challenge(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(new): ApiJson<NewChallenge>,
) -> ApiResult<(StatusCode, Json<IssuedChallenge>)> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    let registration = new
        .registration
        .unwrap_or_else(|| format!("manual:{}", mdm_core::ChallengeId::new()));
    Ok((
        StatusCode::CREATED,
        Json(
            s.core
                .mint_challenge(&actor, &tenant, &registration)
                .await?,
        ),
    ))
}

/// Certificates issued in the tenant, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/certificates", tag = "certificates",
    params(("tenant" = String, Path, description = "Tenant id or slug"), CertificateQuery),
    responses((status = 200, body = Page<CertificateRecord>), (status = 404, body = ErrorEnvelope)))]
async fn list_certificates(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<CertificateQuery>,
) -> ApiResult<Json<Page<CertificateRecord>>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.certificates(&actor, &tenant, &q).await?))
}

/// One issued certificate, by serial number (hex).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/certificates/{serial}", tag = "certificates",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("serial" = String, Path)),
    responses((status = 200, body = CertificateRecord), (status = 404, body = ErrorEnvelope)))]
async fn get_certificate(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, serial)): ApiPath<(String, String)>,
) -> ApiResult<Json<CertificateRecord>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.certificate(&actor, &tenant, &serial).await?))
}

/// Revokes an issued certificate: it can no longer renew or identify a device.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/certificates/{serial}/revoke", tag = "certificates",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("serial" = String, Path)),
    responses((status = 200, body = CertificateRecord), (status = 404, body = ErrorEnvelope)))]
async fn revoke_certificate(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, serial)): ApiPath<(String, String)>,
) -> ApiResult<Json<CertificateRecord>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(
        s.core.revoke_certificate(&actor, &tenant, &serial).await?,
    ))
}
