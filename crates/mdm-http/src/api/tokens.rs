//! API tokens: per tenant, and operator tokens.

use crate::AppState;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, Caller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mdm_core::TokenId;
use mdm_core::tokens::{ApiToken, IssuedToken, NewToken, Scope};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenant_tokens, create_tenant_token))
        .routes(routes!(revoke_tenant_token))
        .routes(routes!(list_operator_tokens, create_operator_token))
        .routes(routes!(revoke_operator_token))
}

/// API tokens of the tenant (secrets are never shown again).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tokens", tag = "tokens",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = Vec<ApiToken>), (status = 404, body = ErrorEnvelope)))]
async fn list_tenant_tokens(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<Vec<ApiToken>>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.tokens(&actor, Scope::Tenant(tenant.id)).await?))
}

/// Creates an API token scoped to the tenant; the secret is in the answer only.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tokens", tag = "tokens", request_body = NewToken,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = IssuedToken), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn create_tenant_token(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(new): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            s.core
                .create_token(&actor, Scope::Tenant(tenant.id), new)
                .await?,
        ),
    ))
}

/// Revokes one of the tenant's tokens.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/tokens/{token_id}", tag = "tokens",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("token_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorEnvelope)))]
async fn revoke_tenant_token(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, TokenId)>,
) -> ApiResult<StatusCode> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    s.core
        .revoke_token(&actor, Scope::Tenant(tenant.id), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Operator tokens (operators only).
#[utoipa::path(get, path = "/api/v1/operator/tokens", tag = "tokens",
    responses((status = 200, body = Vec<ApiToken>), (status = 403, body = ErrorEnvelope)))]
async fn list_operator_tokens(
    State(s): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(s.core.tokens(&actor, Scope::Operator).await?))
}

/// Creates an operator token (operators only).
#[utoipa::path(post, path = "/api/v1/operator/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = IssuedToken), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn create_operator_token(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(new): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_token(&actor, Scope::Operator, new).await?),
    ))
}

/// Revokes an operator token (operators only).
#[utoipa::path(delete, path = "/api/v1/operator/tokens/{token_id}", tag = "tokens",
    params(("token_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn revoke_operator_token(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<TokenId>,
) -> ApiResult<StatusCode> {
    s.core.revoke_token(&actor, Scope::Operator, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
