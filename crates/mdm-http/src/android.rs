//! The Android agent API, `/android/<version>/…` (JSON over HTTPS). One
//! handler takes every path below `/android`: `mdm_android::route` names the
//! version and endpoint (an unknown version is refused with the supported
//! ones), the signature headers are parsed here, and the domain verifies
//! them and runs the one use case of the endpoint.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::pages::ClientAddr;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use mdm_android::{Endpoint, SignatureHeaders, TENANT_HEADER, route};
use mdm_core::android::agent::AgentCall;

pub fn router() -> Router<AppState> {
    Router::new().route("/android/{*rest}", any(agent))
}

async fn agent(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ClientAddr(addr): ClientAddr,
    body: Bytes,
) -> ApiResult<Response> {
    let path = uri.path();
    let (_version, endpoint) = route(method.as_str(), path)?;
    if endpoint == Endpoint::Register {
        let answer = s.core.android_register(&body, addr).await?;
        return Ok(match answer {
            Ok(r) => (StatusCode::CREATED, Json(r)).into_response(),
            Err(refusal) => ApiError::from(refusal).into_response(),
        });
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let call = AgentCall {
        method: method.as_str(),
        path,
        tenant: header(TENANT_HEADER),
        signature: SignatureHeaders::parse(header),
        body: &body,
    };
    let core = &s.core;
    let answer = match endpoint {
        Endpoint::Checkin => core
            .android_checkin(&call)
            .await?
            .map(|r| Json(r).into_response()),
        Endpoint::Commands => core
            .android_commands_fetch(&call)
            .await?
            .map(|r| Json(r).into_response()),
        Endpoint::CommandResult => core
            .android_command_result(&call)
            .await?
            .map(|recorded| Json(serde_json::json!({ "recorded": recorded })).into_response()),
        Endpoint::Events => core
            .android_events(&call)
            .await?
            .map(|()| StatusCode::NO_CONTENT.into_response()),
        Endpoint::Register | Endpoint::Policy => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_endpoint",
                "no policies are served yet",
            ));
        }
    };
    Ok(answer.unwrap_or_else(|refusal| ApiError::from(refusal).into_response()))
}
