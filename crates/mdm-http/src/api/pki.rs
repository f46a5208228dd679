//! The tenant CA, one-time SCEP challenges and issued certificates.

use crate::AppState;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mdm_core::pki::{CaInfo, CertificateQuery, CertificateRecord, IssuedChallenge, NewChallenge};
use mdm_core::signing_identity::{NewSigningIdentity, SigningIdentityInfo};
use mdm_core::users::Page;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_ca))
        .routes(routes!(
            get_signing_identity,
            put_signing_identity,
            delete_signing_identity
        ))
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

/// The profile-signing identity an administrator uploaded.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/ca/signing-identity", tag = "certificates",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = SigningIdentityInfo), (status = 404, body = ErrorEnvelope)))]
async fn get_signing_identity(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<SigningIdentityInfo>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.signing_identity(&actor, &tenant).await?))
}

/// Uploads a profile-signing identity (a certificate from another CA, such
/// as a public one, with its key; PEM or PKCS#12), replacing the tenant's
/// previous one. While it is valid it signs every management profile.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/ca/signing-identity", tag = "certificates",
    request_body = NewSigningIdentity,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = SigningIdentityInfo), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn put_signing_identity(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(new): ApiJson<NewSigningIdentity>,
) -> ApiResult<Json<SigningIdentityInfo>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(
        s.core.set_signing_identity(&actor, &tenant, &new).await?,
    ))
}

/// Removes the uploaded profile-signing identity: the signer the tenant CA
/// certifies signs profiles again.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/ca/signing-identity", tag = "certificates",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 204), (status = 404, body = ErrorEnvelope)))]
async fn delete_signing_identity(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    s.core.remove_signing_identity(&actor, &tenant).await?;
    Ok(StatusCode::NO_CONTENT)
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
