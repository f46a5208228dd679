//! The HTTP edge: axum routers for the REST admin API (`/api/v1`), health and
//! metrics, and the public enrollment URL. Handlers decode, call one use case
//! on [`mdm_core::Core`], and encode; statuses are chosen here only.

pub mod admin;
pub mod android;
pub mod api;
pub mod app;
pub mod enroll;
pub mod error;
pub mod extract;
pub mod go;
pub mod health;
pub mod mdm;
pub mod my_devices;
pub mod openapi;
pub mod pages;
pub mod portal;
pub mod scep;
pub mod tls;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use mdm_core::Core;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    /// Renders `/metrics`; absent when no recorder is installed.
    pub metrics: Option<PrometheusHandle>,
    /// The OpenAPI document, built once.
    pub openapi: Arc<String>,
    /// Read the device certificate from a proxy's RFC 9440 `Client-Cert`.
    pub trust_client_cert_header: bool,
}

/// Limits the edge enforces.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// Largest API request body (JSON or CSV), in bytes.
    pub max_body_bytes: usize,
    /// A TLS-terminating proxy in front of the server sets RFC 9440
    /// `Client-Cert` (and strips it from client requests): read the Apple
    /// device certificate from it. Off by default.
    pub trust_client_cert_header: bool,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            trust_client_cert_header: false,
        }
    }
}

/// The whole application router.
pub fn router(core: Core, metrics: Option<PrometheusHandle>, limits: &HttpLimits) -> Router {
    let (api, doc) = openapi::split();
    let openapi = Arc::new(doc.to_pretty_json().unwrap_or_else(|_| "{}".into()));
    let state = AppState {
        core,
        metrics,
        openapi,
        trust_client_cert_header: limits.trust_client_cert_header,
    };
    Router::new()
        .merge(api)
        .merge(health::router())
        .merge(enroll::router())
        .merge(go::router())
        .merge(portal::router())
        .merge(app::router())
        .merge(scep::router())
        .merge(mdm::router())
        .merge(admin::router())
        .merge(android::router())
        .fallback(health::not_found)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn(health::track))
        .with_state(state)
}
