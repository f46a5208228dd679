//! The REST admin API under `/api/v1`. Each handler decodes, calls one use
//! case, and encodes; errors become JSON at the edge (`crate::error`).

pub mod android;
pub mod audit;
pub mod devices;
pub mod directory;
pub mod invitations;
pub mod pki;
pub mod profiles;
pub mod registrations;
pub mod tenants;
pub mod tokens;
pub mod users;

use crate::AppState;
use utoipa_axum::router::OpenApiRouter;

/// Every `/api/v1` route with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(tenants::router())
        .merge(users::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(pki::router())
        .merge(profiles::router())
        .merge(invitations::router())
        .merge(directory::router())
        .merge(registrations::router())
        .merge(devices::router())
        .merge(android::router())
}
