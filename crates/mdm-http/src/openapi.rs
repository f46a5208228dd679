//! The OpenAPI 3 document, generated from the handlers' annotations.

use crate::AppState;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "MDM registration server API", description = "REST admin API: tenants, users, settings, enrollment URL, tokens, audit trail, certificates, registrations, devices and their MDM commands, directory (LDAP) connector."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "tenants"), (name = "settings"), (name = "enrollment"),
        (name = "users"), (name = "tokens"), (name = "audit"), (name = "certificates"), (name = "invitations"),
        (name = "users"), (name = "tokens"), (name = "audit"), (name = "certificates"),
        (name = "users"), (name = "tokens"), (name = "audit"), (name = "certificates"),
        (name = "registrations"), (name = "devices"), (name = "directory"), (name = "android"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut Document) {
        let scheme = SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("mdm_…")
                .build(),
        );
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", scheme);
    }
}

/// The API router and its document.
pub fn split() -> (axum::Router<AppState>, Document) {
    utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::api::router())
        .split_for_parts()
}

/// The document as pretty JSON, as served at `/api/openapi.json`.
pub fn document_json() -> String {
    split()
        .1
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
