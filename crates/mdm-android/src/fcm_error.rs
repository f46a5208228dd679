//! What to do after FCM answered `messages:send`, from Google's documented
//! error format: `{"error": {"code", "message", "status", "details": [{"@type":
//! "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode"}]}}`.

use std::fmt;

use serde::Deserialize;
use time::{Duration, OffsetDateTime};

/// FCM's `errorCode` (or the gRPC `status` when no code is given).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FcmErrorCode {
    /// 404: the token is no longer valid.
    Unregistered,
    /// 429: sending too fast (per project, device or topic).
    QuotaExceeded,
    /// 503: FCM overloaded.
    Unavailable,
    /// 500: FCM internal error.
    Internal,
    /// 400: bad request (token format, payload, TTL).
    InvalidArgument,
    /// 403: the token belongs to another Firebase project.
    SenderIdMismatch,
    /// 401: APNs or web-push credentials of the project are wrong.
    ThirdPartyAuthError,
    /// No more information.
    UnspecifiedError,
    /// Anything else, as sent (at most 64 characters kept).
    Other(String),
}

impl FcmErrorCode {
    /// Reads an `errorCode` or `status` string.
    pub fn parse(code: &str) -> Self {
        match code {
            "UNREGISTERED" => Self::Unregistered,
            "QUOTA_EXCEEDED" | "RESOURCE_EXHAUSTED" => Self::QuotaExceeded,
            "UNAVAILABLE" => Self::Unavailable,
            "INTERNAL" => Self::Internal,
            "INVALID_ARGUMENT" => Self::InvalidArgument,
            "SENDER_ID_MISMATCH" => Self::SenderIdMismatch,
            "THIRD_PARTY_AUTH_ERROR" => Self::ThirdPartyAuthError,
            "UNSPECIFIED_ERROR" => Self::UnspecifiedError,
            other => Self::Other(other.chars().take(64).collect()),
        }
    }
}

impl fmt::Display for FcmErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unregistered => "UNREGISTERED",
            Self::QuotaExceeded => "QUOTA_EXCEEDED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::SenderIdMismatch => "SENDER_ID_MISMATCH",
            Self::ThirdPartyAuthError => "THIRD_PARTY_AUTH_ERROR",
            Self::UnspecifiedError => "UNSPECIFIED_ERROR",
            Self::Other(s) => s,
        })
    }
}

/// A `Retry-After` header value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// Delay-seconds.
    Delay(Duration),
    /// An HTTP-date.
    At(OffsetDateTime),
}

impl RetryAfter {
    /// Parses delay-seconds or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit()) {
            return value
                .parse::<i64>()
                .ok()
                .map(|s| Self::Delay(Duration::seconds(s)));
        }
        let format = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        time::PrimitiveDateTime::parse(value, &format)
            .ok()
            .map(|t| Self::At(t.assume_utc()))
    }

    /// The delay from `now` (zero when the date has passed).
    pub fn delay_from(self, now: OffsetDateTime) -> Duration {
        match self {
            Self::Delay(d) => d.max(Duration::ZERO),
            Self::At(t) => (t - now).max(Duration::ZERO),
        }
    }
}

/// What the sender should do after FCM answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FcmOutcome {
    /// 200: accepted; `name` is `projects/*/messages/*`.
    Sent {
        /// The message name, when the body had one.
        name: Option<String>,
    },
    /// `UNREGISTERED`: delete the token, mark the device push-unreachable
    /// until it reports a new one, fall back to periodic check-in.
    TokenDead,
    /// Transient (`QUOTA_EXCEEDED`, `UNAVAILABLE`, `INTERNAL`, other 5xx and
    /// 429): retry after [`FcmOutcome::retry_delay`], with jitter.
    Retry {
        /// The code, when FCM gave one.
        code: Option<FcmErrorCode>,
        /// HTTP status.
        http_status: u16,
        /// The `Retry-After` header, when present and readable.
        retry_after: Option<RetryAfter>,
    },
    /// 401 without `THIRD_PARTY_AUTH_ERROR`: our access token expired or was
    /// revoked; fetch a new one and retry once.
    RefreshAuth,
    /// Our request or configuration is wrong (`INVALID_ARGUMENT`,
    /// `SENDER_ID_MISMATCH`, `THIRD_PARTY_AUTH_ERROR`, a bare 404, other
    /// 4xx): retrying will not help; alert the operator. Not a reason to
    /// delete the token.
    Fatal {
        /// The code, when FCM gave one.
        code: Option<FcmErrorCode>,
        /// HTTP status.
        http_status: u16,
        /// FCM's message (at most 256 characters kept).
        message: Option<String>,
    },
}

/// Longest back-off [`FcmOutcome::retry_delay`] proposes.
pub const MAX_FCM_BACKOFF: Duration = Duration::minutes(30);

impl FcmOutcome {
    /// For [`FcmOutcome::Retry`]: how long to wait before retry number
    /// `attempt` (0 for the first retry). Exponential from 60 s for
    /// `QUOTA_EXCEEDED` (Google asks for at least a minute) and from 10 s
    /// otherwise, capped at [`MAX_FCM_BACKOFF`], and never shorter than
    /// `Retry-After`. `None` for other outcomes.
    pub fn retry_delay(&self, attempt: u32, now: OffsetDateTime) -> Option<Duration> {
        let Self::Retry {
            code, retry_after, ..
        } = self
        else {
            return None;
        };
        let base = match code {
            Some(FcmErrorCode::QuotaExceeded) => Duration::seconds(60),
            _ => Duration::seconds(10),
        };
        let factor = 2i32.saturating_pow(attempt.min(16));
        let exponential = base.saturating_mul(factor).min(MAX_FCM_BACKOFF);
        let asked = retry_after.map_or(Duration::ZERO, |r| r.delay_from(now));
        Some(exponential.max(asked))
    }
}

#[derive(Deserialize)]
struct Body {
    name: Option<String>,
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    message: Option<String>,
    status: Option<String>,
    #[serde(default)]
    details: Vec<Detail>,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
}

/// Classifies FCM's answer from its HTTP status, body and `Retry-After`
/// header. The FCM `errorCode` in `details` wins over the gRPC `status`,
/// which wins over the HTTP status. A token is declared dead only on an
/// explicit `UNREGISTERED`: a bare 404 (a wrong project id, a proxy) must
/// never wipe every device's token.
pub fn classify_fcm_response(
    http_status: u16,
    body: &[u8],
    retry_after: Option<&str>,
) -> FcmOutcome {
    let parsed: Option<Body> = serde_json::from_slice(body).ok();
    if (200..300).contains(&http_status) {
        return FcmOutcome::Sent {
            name: parsed.and_then(|b| b.name),
        };
    }
    let error = parsed.and_then(|b| b.error);
    let detail_code = error
        .as_ref()
        .and_then(|e| e.details.iter().find_map(|d| d.error_code.as_deref()));
    let status = error.as_ref().and_then(|e| e.status.as_deref());
    let code = detail_code.or(status).map(FcmErrorCode::parse);
    let message = error
        .and_then(|e| e.message)
        .map(|m| m.chars().take(256).collect());
    let retry = |code| FcmOutcome::Retry {
        code,
        http_status,
        retry_after: retry_after.and_then(RetryAfter::parse),
    };
    let fatal = |code, message| FcmOutcome::Fatal {
        code,
        http_status,
        message,
    };
    match code {
        Some(FcmErrorCode::Unregistered) => FcmOutcome::TokenDead,
        Some(
            c @ (FcmErrorCode::QuotaExceeded | FcmErrorCode::Unavailable | FcmErrorCode::Internal),
        ) => retry(Some(c)),
        Some(
            c @ (FcmErrorCode::InvalidArgument
            | FcmErrorCode::SenderIdMismatch
            | FcmErrorCode::ThirdPartyAuthError),
        ) => fatal(Some(c), message),
        other => match http_status {
            401 => FcmOutcome::RefreshAuth,
            429 | 500..=599 => retry(other),
            _ => fatal(other, message),
        },
    }
}
