//! The client app's registration API (R9), JSON under `/app/v1`:
//! `POST /app/v1/tenants/<slug>/register` with email and password or a QR
//! token (refused on Android < 9 and iOS < 14), and the one-time profile
//! download link it hands out to Apple devices.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::pages::{ClientAddr, profile_download};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use mdm_core::app_register::{AppNext, AppRegistration};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app/v1/tenants/{slug}/register", post(register))
        .route("/app/v1/tenants/{slug}/profiles/{token}", get(profile))
}

async fn register(
    State(s): State<AppState>,
    ApiPath(slug): ApiPath<String>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<AppRegistration>,
) -> ApiResult<Json<AppNext>> {
    let tenant = s.core.public_tenant(&slug).await?;
    match s.core.app_register(&tenant, &req, addr).await? {
        Ok(next) => Ok(Json(next)),
        Err(refusal) => Err(ApiError::from(refusal)),
    }
}

async fn profile(
    State(s): State<AppState>,
    ApiPath((slug, token)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let tenant = s.core.public_tenant(&slug).await?;
    Ok(profile_download(
        s.core.download_linked_profile(&tenant, &token).await?,
    ))
}
