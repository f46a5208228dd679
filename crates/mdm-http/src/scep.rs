//! The SCEP endpoint (RFC 8894) of each tenant: `/scep/<slug>`, with the
//! operation in the query string devices append. Refusals the requester can
//! be told about are signed FAILURE CertReps (HTTP 200), never HTML or a 500;
//! a message too broken to answer gets a plain 400.

use crate::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mdm_core::CoreError;
use mdm_core::scep::ScepAnswer;
use mdm_scep::Operation;
use serde::Deserialize;

/// Largest SCEP request accepted (a PKCSReq is a few kilobytes).
pub const MAX_SCEP_BODY: usize = 256 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/scep/{slug}", get(scep_get).post(scep_post))
        .layer(DefaultBodyLimit::max(MAX_SCEP_BODY))
}

#[derive(Deserialize)]
struct ScepQuery {
    operation: Option<String>,
    message: Option<String>,
}

async fn scep_get(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<ScepQuery>,
) -> Response {
    let message = match (&q.operation, &q.message) {
        (Some(op), Some(m)) if op.eq_ignore_ascii_case("PKIOperation") => {
            match mdm_scep::decode_get_message(m) {
                Ok(bytes) => Some(bytes),
                Err(e) => return bad_request(&format!("message: {e}")),
            }
        }
        _ => None,
    };
    answer(&s, &slug, q.operation.as_deref(), message).await
}

async fn scep_post(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<ScepQuery>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    match body {
        Ok(b) => answer(&s, &slug, q.operation.as_deref(), Some(b.to_vec())).await,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            text(StatusCode::PAYLOAD_TOO_LARGE, "SCEP message too large")
        }
        Err(r) => bad_request(&r.body_text()),
    }
}

async fn answer(
    s: &AppState,
    slug: &str,
    operation: Option<&str>,
    message: Option<Vec<u8>>,
) -> Response {
    let Some(op) = operation.and_then(Operation::parse) else {
        return bad_request("unknown or missing operation (GetCACaps, GetCACert, PKIOperation)");
    };
    let tenant = match s.core.scep_tenant(slug).await {
        Ok(t) => t,
        Err(e) => return core_error(e),
    };
    match op {
        Operation::GetCaCaps => (
            [(header::CONTENT_TYPE, mdm_scep::CA_CAPS_CONTENT_TYPE)],
            mdm_scep::CA_CAPS,
        )
            .into_response(),
        Operation::GetCaCert => match s.core.scep_ca_cert(&tenant).await {
            Ok(der) => (
                [(header::CONTENT_TYPE, mdm_scep::CA_CERT_CONTENT_TYPE)],
                der,
            )
                .into_response(),
            Err(e) => core_error(e),
        },
        Operation::PkiOperation => {
            let Some(message) = message.filter(|m| !m.is_empty()) else {
                return bad_request("PKIOperation needs a message");
            };
            match s.core.scep_pki_operation(&tenant, &message).await {
                Ok(ScepAnswer::CertRep(rep)) => (
                    [(header::CONTENT_TYPE, mdm_scep::PKI_MESSAGE_CONTENT_TYPE)],
                    rep,
                )
                    .into_response(),
                Ok(ScepAnswer::BadMessage(reason)) => bad_request(&reason),
                Err(e) => core_error(e),
            }
        }
        _ => bad_request("operation not supported"),
    }
}

fn text(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

fn bad_request(reason: &str) -> Response {
    text(
        StatusCode::BAD_REQUEST,
        &format!("bad SCEP request: {reason}"),
    )
}

fn core_error(e: CoreError) -> Response {
    match e {
        CoreError::NotFound(_) => text(StatusCode::NOT_FOUND, "no SCEP endpoint here"),
        other => {
            tracing::error!(error = %other, "SCEP request failed");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the SCEP service is temporarily unavailable",
            )
        }
    }
}
