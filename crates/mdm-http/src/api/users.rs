//! End users: CRUD, bulk create and CSV import.

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{ApiBytes, ApiJson, ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use mdm_core::UserId;
use mdm_core::invites::AddUsersOptions;
use mdm_core::users::{ImportReport, NewUser, Page, User, UserPatch, UserQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(bulk_create_users))
        .routes(routes!(import_users))
        .routes(routes!(get_user, update_user, delete_user))
}

/// Users of the tenant, ordered by email, filtered and paged.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users", tag = "users",
    params(("tenant" = String, Path, description = "Tenant id or slug"), UserQuery),
    responses((status = 200, body = Page<User>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn list_users(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<Page<User>>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.users(&actor, &tenant, &q).await?))
}

/// Adds a local user (`?invite=true` also sends an invitation).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/users", tag = "users", request_body = NewUser,
    params(("tenant" = String, Path, description = "Tenant id or slug"), AddUsersOptions),
    responses((status = 201, body = User), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn create_user(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(options): ApiQuery<AddUsersOptions>,
    ApiJson(new): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    let mut users = s
        .core
        .add_users(&actor, &tenant, vec![new], options)
        .await?;
    let user = users
        .pop()
        .ok_or(mdm_core::CoreError::Store("no user created".into()))?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Adds up to 10,000 local users at once, all or none (`?invite=true` invites them).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/users/bulk", tag = "users", request_body = Vec<NewUser>,
    params(("tenant" = String, Path, description = "Tenant id or slug"), AddUsersOptions),
    responses((status = 201, body = Vec<User>), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn bulk_create_users(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(options): ApiQuery<AddUsersOptions>,
    ApiJson(batch): ApiJson<Vec<NewUser>>,
) -> ApiResult<(StatusCode, Json<Vec<User>>)> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok((
        StatusCode::CREATED,
        Json(s.core.add_users(&actor, &tenant, batch, options).await?),
    ))
}

/// Imports local users from CSV (`email`, `display_name`, `password`, `enabled`
/// columns), all or none; row errors are listed by line. `?invite=true` invites them.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/users/import", tag = "users",
    request_body(content = String, content_type = "text/csv", description = "CSV with a header row"),
    params(("tenant" = String, Path, description = "Tenant id or slug"), AddUsersOptions),
    responses((status = 201, body = ImportReport), (status = 409, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn import_users(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(options): ApiQuery<AddUsersOptions>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<ImportReport>)> {
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv"));
    if !csv {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: text/csv",
        ));
    }
    let tenant = s.core.tenant(&actor, &tenant).await?;
    match s
        .core
        .import_users_inviting(&actor, &tenant, &body, options)
        .await?
    {
        Ok(report) => Ok((StatusCode::CREATED, Json(report))),
        Err(rows) => Err(ApiError::csv_rows(rows)),
    }
}

/// One user.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users/{user_id}", tag = "users",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user_id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorEnvelope)))]
async fn get_user(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, UserId)>,
) -> ApiResult<Json<User>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.user(&actor, &tenant, id).await?))
}

/// Changes a user's email, name, password or enabled flag.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/users/{user_id}", tag = "users", request_body = UserPatch,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user_id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn update_user(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, UserId)>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> ApiResult<Json<User>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.update_user(&actor, &tenant, id, patch).await?))
}

/// Removes a user.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/users/{user_id}", tag = "users",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorEnvelope)))]
async fn delete_user(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, UserId)>,
) -> ApiResult<StatusCode> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    s.core.delete_user(&actor, &tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
