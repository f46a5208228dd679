//! The tenant's directory (LDAP / Active Directory) connector: configure,
//! test the connection, sync users, read the sync runs.

use crate::AppState;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use mdm_core::directory::{
    ConnectorSettings, DirectoryConnector, DirectoryTestReport, SyncRun, SyncTrigger,
};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_directory, put_directory))
        .routes(routes!(test_directory))
        .routes(routes!(sync_directory))
        .routes(routes!(list_runs))
}

/// Paging of the sync runs.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    /// Runs to return, newest first, 1–1000 (default 20).
    limit: Option<u32>,
}

/// The tenant's directory connector (the bind password is never returned).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/directory", tag = "directory",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = DirectoryConnector), (status = 404, body = ErrorEnvelope)))]
async fn get_directory(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<DirectoryConnector>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.directory_connector(&actor, &tenant).await?))
}

/// Creates or replaces the connector. `bind_password` is required the first
/// time and sealed at rest; leave it out to keep the stored one.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/directory", tag = "directory", request_body = ConnectorSettings,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = DirectoryConnector), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn put_directory(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(settings): ApiJson<ConnectorSettings>,
) -> ApiResult<Json<DirectoryConnector>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(
        s.core
            .set_directory_connector(&actor, &tenant, settings)
            .await?,
    ))
}

/// Tests the connection step by step (connect, TLS, bind, base DN, search,
/// mapped attributes) and reports the first step that failed and how many
/// entries the filter matches. Always 200 when the test ran; `ok` says how.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/directory/test", tag = "directory",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = DirectoryTestReport), (status = 404, body = ErrorEnvelope)))]
async fn test_directory(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<DirectoryTestReport>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.test_directory(&actor, &tenant).await?))
}

/// Syncs the directory into the tenant's users now, all or nothing. A
/// directory that cannot be read answers 502 and changes nothing; the
/// failed run is recorded.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/directory/sync", tag = "directory",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = SyncRun), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope), (status = 502, body = ErrorEnvelope)))]
async fn sync_directory(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<SyncRun>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(
        s.core
            .sync_directory(&actor, &tenant, SyncTrigger::Manual)
            .await?,
    ))
}

/// The connector's sync runs, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/directory/runs", tag = "directory",
    params(("tenant" = String, Path, description = "Tenant id or slug"), RunsQuery),
    responses((status = 200, body = Vec<SyncRun>), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn list_runs(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> ApiResult<Json<Vec<SyncRun>>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.directory_runs(&actor, &tenant, q.limit).await?))
}
