//! The public enrollment URL `/enroll/<slug>/v<version>-<secret>` (R13).
//! A retired version answers 410 with a clear "out of date" page; a URL that
//! never existed answers 404. The pages behind it (`/go`) build on this check.

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use mdm_core::CoreError;

pub fn router() -> Router<AppState> {
    Router::new().route("/enroll/{slug}/{key}", get(entry))
}

async fn entry(
    State(s): State<AppState>,
    Path((slug, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    match s.core.resolve_enrollment_key(&slug, &key).await {
        Ok(tenant) if wants_json => {
            axum::Json(serde_json::json!({ "tenant": tenant.name, "valid": true })).into_response()
        }
        Ok(tenant) => page(
            StatusCode::OK,
            &format!("Register a device with {}", tenant.name),
            "Open this link on the phone, tablet or Mac you want to register.",
        ),
        Err(e) if wants_json => ApiError::from(e).into_response(),
        Err(CoreError::Gone { message, .. }) => {
            page(StatusCode::GONE, "This link is out of date", &message)
        }
        Err(CoreError::NotFound(_)) => page(
            StatusCode::NOT_FOUND,
            "Unknown enrollment link",
            "Check the link in your invitation, or ask your administrator for a new one.",
        ),
        Err(e) => {
            tracing::error!(error = %e, "enrollment URL check failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again later",
                "The server could not check this link right now.",
            )
        }
    }
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let (title, text) = (escape(title), escape(text));
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title></head><body><main><h1>{title}</h1><p>{text}</p></main></body></html>"
    );
    (status, Html(body)).into_response()
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
