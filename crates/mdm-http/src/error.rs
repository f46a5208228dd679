//! JSON errors with stable machine-readable codes. This is the one place
//! where a domain error becomes an HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mdm_core::CoreError;
use mdm_core::registration::Refusal;
use mdm_core::users::ImportRowError;
use serde::Serialize;

/// An error answer: `{"error": {"code", "message", "field"?, "rows"?}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

/// The JSON body of an error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// What went wrong, in a stable code and a human message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_field`, `not_found`, `user_email_taken`.
    pub code: String,
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Per-row errors of a CSV import.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<ImportRowError>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
                field: None,
                rows: None,
            },
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// A CSV import whose rows failed validation; nothing was written.
    pub fn csv_rows(rows: Vec<ImportRowError>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "csv_invalid",
            format!(
                "{} row(s) of the CSV are invalid; no user was imported",
                rows.len()
            ),
        );
        e.body.rows = Some(rows);
        e
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid { field, message } => {
                let mut err = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_field",
                    format!("{field}: {message}"),
                );
                err.body.field = Some(field);
                err
            }
            CoreError::NotFound(what) => Self::not_found(what),
            CoreError::Conflict { code, message } => Self::new(StatusCode::CONFLICT, code, message),
            CoreError::Gone { code, message } => Self::new(StatusCode::GONE, code, message),
            CoreError::Unauthenticated => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "a valid API token is required (Authorization: Bearer mdm_…)",
            ),
            CoreError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "forbidden", m),
            CoreError::Upstream { code, message } => {
                Self::new(StatusCode::BAD_GATEWAY, code, message)
            }
            CoreError::Store(m) => {
                tracing::error!(error = %m, "storage failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the server failed; the request changed nothing",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthenticated = self.status == StatusCode::UNAUTHORIZED;
        let mut res = (self.status, axum::Json(ErrorEnvelope { error: self.body })).into_response();
        if unauthenticated {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// The status of a browser page that shows a domain error.
pub fn page_status(e: &CoreError) -> StatusCode {
    ApiError::from_ref(e)
}

impl ApiError {
    fn from_ref(e: &CoreError) -> StatusCode {
        match e {
            CoreError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            CoreError::NotFound(_) => StatusCode::NOT_FOUND,
            CoreError::Conflict { .. } => StatusCode::CONFLICT,
            CoreError::Gone { .. } => StatusCode::GONE,
            CoreError::Unauthenticated => StatusCode::UNAUTHORIZED,
            CoreError::Forbidden(_) => StatusCode::FORBIDDEN,
            CoreError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            CoreError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The status of a refused sign-in or registration.
pub fn sign_in_refusal_status(r: &Refusal) -> StatusCode {
    match r {
        Refusal::Invalid => StatusCode::UNAUTHORIZED,
        Refusal::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
        Refusal::PinExpired | Refusal::QrExpired | Refusal::PinUsed | Refusal::QrUsed => {
            StatusCode::GONE
        }
        Refusal::PinRequired => StatusCode::UNAUTHORIZED,
        Refusal::DirectoryUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::QrDisabled => StatusCode::FORBIDDEN,
        Refusal::QrUnsupported { .. } | Refusal::BadRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        Self::new(sign_in_refusal_status(&r), r.code(), r.message())
    }
}

/// A session expired or a form without its token: sign in again.
pub const SESSION_GONE: StatusCode = StatusCode::FORBIDDEN;
/// A form re-shown with errors next to its fields.
pub const FORM_INVALID: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
/// The status of a refused Apple device request. None of these makes a
/// device unenroll: 401, and 403 with `com.apple.unrecognized.device`, are
/// never used (Apple devices remove their MDM profile on those).
pub fn refusal_status(r: &mdm_core::identity::Refusal) -> StatusCode {
    use mdm_core::identity::Refusal;
    match r {
        Refusal::Malformed(_) | Refusal::Unsupported(_) => StatusCode::BAD_REQUEST,
        Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::Identity(_) => StatusCode::PRECONDITION_FAILED,
        Refusal::Mismatch(_) => StatusCode::CONFLICT,
        Refusal::Registration(_) | Refusal::UserRefused(_) => StatusCode::GONE,
        Refusal::NotEnrolled(_) => StatusCode::NOT_FOUND,
    }
}

/// A device-facing answer for a failed Apple check-in or command request:
/// a plain-text reason and a status from [`refusal_status`]; an unknown
/// tenant is 404, a server failure 503 (the device retries later).
pub fn device_error(e: mdm_core::identity::DeviceError) -> Response {
    use mdm_core::identity::DeviceError;
    let (status, text) = match e {
        DeviceError::Refused(r) => {
            tracing::info!(refusal = %r, "Apple device request refused");
            (refusal_status(&r), r.to_string())
        }
        DeviceError::Core(CoreError::NotFound(_)) => {
            (StatusCode::NOT_FOUND, "no MDM endpoint here".to_string())
        }
        DeviceError::Core(other) => {
            tracing::error!(error = %other, "Apple device request failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the MDM service is temporarily unavailable".to_string(),
            )
        }
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

/// The status of a refused Android agent request (the agent has no
/// unenrol-on-401 rule, so a bad signature is a plain 401).
pub fn agent_refusal_status(r: &mdm_core::android::agent::AgentRefusal) -> StatusCode {
    use mdm_core::android::agent::AgentRefusal as R;
    match r {
        R::Malformed(_) => StatusCode::BAD_REQUEST,
        R::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        R::UnknownTenant | R::UnknownDevice => StatusCode::NOT_FOUND,
        R::Signature(_) | R::TokenInvalid => StatusCode::UNAUTHORIZED,
        R::Replayed | R::TokenMode { .. } | R::AttemptUsed => StatusCode::CONFLICT,
        R::Disabled | R::TokenExpired | R::TokenUsed => StatusCode::GONE,
        R::SignIn(s) => sign_in_refusal_status(s),
        R::TokenUnsupportedOs => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<mdm_core::android::agent::AgentRefusal> for ApiError {
    fn from(r: mdm_core::android::agent::AgentRefusal) -> Self {
        Self::new(agent_refusal_status(&r), r.code(), r.message())
    }
}

/// A path under `/android` that names no agent endpoint.
impl From<mdm_android::RouteError> for ApiError {
    fn from(e: mdm_android::RouteError) -> Self {
        use mdm_android::RouteError as E;
        let (status, code) = match &e {
            E::UnknownVersion(_) => (StatusCode::NOT_FOUND, "unknown_api_version"),
            E::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            _ => (StatusCode::NOT_FOUND, "unknown_endpoint"),
        };
        Self::new(status, code, e.to_string())
    }
}
