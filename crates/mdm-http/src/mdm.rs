//! The Apple MDM endpoints of each tenant, where its profiles point:
//! `PUT /mdm/<slug>/checkin` (CheckInURL) and `PUT /mdm/<slug>/connect`
//! (ServerURL). The handler only collects the body and the presented
//! identity (TLS peer certificate, a trusted proxy's `Client-Cert`, or
//! `Mdm-Signature`) and hands them to the domain; statuses come from
//! `crate::error::device_error`.

use crate::AppState;
use crate::error::device_error;
use crate::tls::PeerCertificate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use mdm_core::checkin::CheckinReply;
use mdm_core::commands::ConnectReply;
use mdm_core::identity::{DeviceError, DeviceRequest, PresentedIdentity, Refusal};

/// Largest check-in or command report accepted (the plist decoder's own limit).
pub const MAX_MDM_BODY: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mdm/{slug}/checkin", put(checkin))
        .route("/mdm/{slug}/connect", put(connect))
        .layer(DefaultBodyLimit::max(MAX_MDM_BODY))
}

/// The identity a request presents, strongest first.
fn identity(
    s: &AppState,
    headers: &HeaderMap,
    peer: Option<&PeerCertificate>,
) -> PresentedIdentity {
    if let Some(PeerCertificate(der)) = peer {
        return PresentedIdentity::Tls(der.clone());
    }
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if s.trust_client_cert_header
        && let Some(v) = text("client-cert")
    {
        return PresentedIdentity::Forwarded(v);
    }
    match text("mdm-signature") {
        Some(v) => PresentedIdentity::Signature(v),
        None => PresentedIdentity::None,
    }
}

fn request(
    s: &AppState,
    slug: String,
    headers: &HeaderMap,
    peer: Option<&PeerCertificate>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<DeviceRequest, DeviceError> {
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(Refusal::TooLarge.into());
        }
        Err(r) => return Err(Refusal::Malformed(r.body_text()).into()),
    };
    Ok(DeviceRequest {
        slug,
        identity: identity(s, headers, peer),
        body: body.to_vec(),
    })
}

async fn checkin(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    peer: Option<axum::Extension<PeerCertificate>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let req = match request(&s, slug, &headers, peer.as_deref(), body) {
        Ok(r) => r,
        Err(e) => return device_error(e),
    };
    match s.core.apple_checkin(&req).await {
        Ok(CheckinReply::Empty) => StatusCode::OK.into_response(),
        Ok(CheckinReply::Plist(xml)) => plist(xml),
        Ok(CheckinReply::Declined) => StatusCode::GONE.into_response(),
        Err(e) => device_error(e),
    }
}

async fn connect(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    peer: Option<axum::Extension<PeerCertificate>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let req = match request(&s, slug, &headers, peer.as_deref(), body) {
        Ok(r) => r,
        Err(e) => return device_error(e),
    };
    match s.core.apple_connect(&req).await {
        Ok(ConnectReply::Empty) => StatusCode::OK.into_response(),
        Ok(ConnectReply::Command(xml)) => plist(xml),
        Err(e) => device_error(e),
    }
}

fn plist(xml: Vec<u8>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        xml,
    )
        .into_response()
}
