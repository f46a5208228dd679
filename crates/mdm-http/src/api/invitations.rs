//! Invitations (R4–R7): invite users, resend, list with delivery state; the
//! tenant's invitation mail template.

use crate::AppState;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mdm_core::InvitationId;
use mdm_core::invites::{Invitation, InvitationQuery, InviteReport, InviteRequest};
use mdm_core::mail_templates::{MailTemplate, TemplateView};
use mdm_core::users::Page;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_invitations, invite_users))
        .routes(routes!(get_invitation))
        .routes(routes!(resend_invitation))
        .routes(routes!(get_template, put_template, reset_template))
}

/// Invites users: by id, or every enabled user who has not downloaded a
/// profile yet. Each gets a mail with the registration link, a one-time PIN
/// when needed and, optionally, a temporary password; sending happens in the
/// background and is retried.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/invitations", tag = "invitations", request_body = InviteRequest,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = InviteReport), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn invite_users(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<InviteRequest>,
) -> ApiResult<(StatusCode, Json<InviteReport>)> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok((
        StatusCode::CREATED,
        Json(s.core.invite_users(&actor, &tenant, &req).await?),
    ))
}

/// Invitations, newest first, with delivery state, attempts and last error.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/invitations", tag = "invitations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), InvitationQuery),
    responses((status = 200, body = Page<Invitation>), (status = 404, body = ErrorEnvelope)))]
async fn list_invitations(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<InvitationQuery>,
) -> ApiResult<Json<Page<Invitation>>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.invitations(&actor, &tenant, &q).await?))
}

/// One invitation.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/invitations/{invitation_id}", tag = "invitations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("invitation_id" = String, Path)),
    responses((status = 200, body = Invitation), (status = 404, body = ErrorEnvelope)))]
async fn get_invitation(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, InvitationId)>,
) -> ApiResult<Json<Invitation>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.invitation(&actor, &tenant, id).await?))
}

/// Sends the user a new invitation (a fresh PIN; the old one stops working).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/invitations/{invitation_id}/resend", tag = "invitations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("invitation_id" = String, Path)),
    responses((status = 201, body = Invitation), (status = 404, body = ErrorEnvelope)))]
async fn resend_invitation(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((tenant, id)): ApiPath<(String, InvitationId)>,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok((
        StatusCode::CREATED,
        Json(s.core.resend_invitation(&actor, &tenant, id).await?),
    ))
}

/// The invitation mail template (the built-in one until changed).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/mail-templates/invitation", tag = "invitations",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorEnvelope)))]
async fn get_template(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<TemplateView>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(s.core.invitation_template(&actor, &tenant).await?))
}

/// Replaces the invitation template. `{{ placeholder }}` values are
/// HTML-escaped in the HTML body; both bodies must hold
/// `{{ registration_url }}` and `{{ pin_block }}`.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/mail-templates/invitation", tag = "invitations", request_body = MailTemplate,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn put_template(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(t): ApiJson<MailTemplate>,
) -> ApiResult<Json<TemplateView>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(
        s.core
            .set_invitation_template(&actor, &tenant, Some(t))
            .await?,
    ))
}

/// Goes back to the built-in invitation template.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/mail-templates/invitation", tag = "invitations",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorEnvelope)))]
async fn reset_template(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<TemplateView>> {
    let tenant = s.core.tenant(&actor, &tenant).await?;
    Ok(Json(
        s.core
            .set_invitation_template(&actor, &tenant, None)
            .await?,
    ))
}
