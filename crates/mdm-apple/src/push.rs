//! APNs for MDM: the parts of the HTTP/2 request that wakes a device, and the
//! classification of APNs' answer. The HTTP client (mTLS with the tenant's
//! push certificate, connection reuse) lives in the server.

use serde::Deserialize;
use time::OffsetDateTime;

/// Production APNs host (port 443, or 2197).
pub const APNS_HOST: &str = "api.push.apple.com";

/// When APNs may drop an undelivered push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushExpiry {
    /// Keep it (only the newest per device) until this time.
    At(OffsetDateTime),
    /// Deliver now or never (`apns-expiration: 0`).
    Immediately,
}

/// An MDM push, ready for any HTTP/2 client: `POST https://{APNS_HOST}{path}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushRequest {
    /// `/3/device/<hex token>`.
    pub path: String,
    /// `{"mdm":"<PushMagic>"}`: no `aps` key.
    pub body: String,
    /// `apns-topic`, `apns-push-type`, `apns-priority`, `apns-expiration`.
    pub headers: Vec<(&'static str, String)>,
}

/// Why a push could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The device token is empty.
    #[error("empty device token")]
    EmptyToken,
    /// The PushMagic is empty.
    #[error("empty PushMagic")]
    EmptyPushMagic,
    /// The topic is not an MDM topic (or, for an app alert, is one).
    #[error("topic {0:?} is not usable for this push")]
    BadTopic(String),
}

/// Builds the push for a channel from its TokenUpdate values (`Token`,
/// `PushMagic`) and the push certificate's topic.
pub fn push_request(
    token: &[u8],
    push_magic: &str,
    topic: &str,
    expiry: PushExpiry,
) -> Result<PushRequest, PushError> {
    if token.is_empty() {
        return Err(PushError::EmptyToken);
    }
    if push_magic.is_empty() {
        return Err(PushError::EmptyPushMagic);
    }
    if !topic.starts_with("com.apple.mgmt.") {
        return Err(PushError::BadTopic(topic.to_owned()));
    }
    let body = serde_json::json!({ "mdm": push_magic }).to_string();
    let expiration = match expiry {
        PushExpiry::At(t) => t.unix_timestamp().max(1).to_string(),
        PushExpiry::Immediately => "0".to_owned(),
    };
    Ok(PushRequest {
        path: format!("/3/device/{}", hex::encode(token)),
        body,
        headers: vec![
            ("apns-topic", topic.to_owned()),
            ("apns-push-type", "mdm".to_owned()),
            ("apns-priority", "10".to_owned()),
            ("apns-expiration", expiration),
        ],
    })
}

/// Builds a visible alert for an app (not MDM): `{"aps": {"alert": {"title",
/// "body"}}}` to the app's bundle identifier, push type `alert`. Used for the
/// client app's registration reminders; provider-token authentication can
/// reach any app of the team, a push certificate only its own topic.
pub fn alert_push_request(
    token: &[u8],
    topic: &str,
    title: &str,
    body: &str,
    expiry: PushExpiry,
) -> Result<PushRequest, PushError> {
    if token.is_empty() {
        return Err(PushError::EmptyToken);
    }
    if topic.is_empty() || topic.starts_with("com.apple.mgmt.") {
        return Err(PushError::BadTopic(topic.to_owned()));
    }
    let payload = serde_json::json!({ "aps": { "alert": { "title": title, "body": body }, "sound": "default" } });
    let expiration = match expiry {
        PushExpiry::At(t) => t.unix_timestamp().max(1).to_string(),
        PushExpiry::Immediately => "0".to_owned(),
    };
    Ok(PushRequest {
        path: format!("/3/device/{}", hex::encode(token)),
        body: payload.to_string(),
        headers: vec![
            ("apns-topic", topic.to_owned()),
            ("apns-push-type", "alert".to_owned()),
            ("apns-priority", "10".to_owned()),
            ("apns-expiration", expiration),
        ],
    })
}

/// What to do after APNs answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// 200: accepted (delivery itself is not confirmed).
    Delivered,
    /// The token is dead (410 `Unregistered`/`ExpiredToken`, 400
    /// `BadDeviceToken`): stop pushing to it until a new TokenUpdate.
    TokenGone {
        /// APNs' reason.
        reason: String,
    },
    /// Transient (429 `TooManyRequests`, 500, 503, other 5xx): retry later,
    /// with backoff; 429 means this very token is pushed too often.
    Retry {
        /// HTTP status.
        status: u16,
        /// APNs' reason, when given.
        reason: Option<String>,
    },
    /// Our request or credentials are wrong (`BadTopic`, `TopicDisallowed`,
    /// `BadCertificate`, `DeviceTokenNotForTopic`, 413 …): retrying will not
    /// help; alert the operator. Not a reason to forget the token.
    Fatal {
        /// HTTP status.
        status: u16,
        /// APNs' reason, when given.
        reason: Option<String>,
    },
}

#[derive(Deserialize)]
struct ApnsErrorBody {
    reason: Option<String>,
}

/// Classifies an APNs answer from its status and JSON body
/// (`{"reason": …, "timestamp": …}`; the body may be empty or unreadable).
pub fn classify_response(status: u16, body: &[u8]) -> PushOutcome {
    if status == 200 {
        return PushOutcome::Delivered;
    }
    let reason = serde_json::from_slice::<ApnsErrorBody>(body)
        .ok()
        .and_then(|b| b.reason)
        .filter(|r| !r.is_empty());
    match (status, reason.as_deref()) {
        (410, _) | (400, Some("BadDeviceToken")) => PushOutcome::TokenGone {
            reason: reason.unwrap_or_else(|| "Unregistered".to_owned()),
        },
        (429 | 500..=599, _) => PushOutcome::Retry { status, reason },
        _ => PushOutcome::Fatal { status, reason },
    }
}
