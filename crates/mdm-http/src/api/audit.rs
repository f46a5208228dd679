//! The audit trail (R20).

use crate::AppState;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use mdm_core::audit::{AuditQuery, AuditRecord};
use mdm_core::users::Page;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tenant_audit))
        .routes(routes!(operator_audit))
}

/// The tenant's audit trail, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit", tag = "audit",
    params(("tenant" = String, Path, description = "Tenant id or slug"), AuditQuery),
    responses((status = 200, body = Page<AuditRecord>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn tenant_audit(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditRecord>>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.audit(&actor, Some(&tenant), &q).await?))
}

/// Operator-level audit entries that concern no tenant (operators only).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditRecord>), (status = 403, body = ErrorEnvelope)))]
async fn operator_audit(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditRecord>>> {
    Ok(Json(s.core.audit(&actor, None, &q).await?))
}
