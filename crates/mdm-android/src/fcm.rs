//! FCM HTTP v1: the body of a data-only wake-up and the service-account
//! JWT that buys the OAuth2 access token. The push only wakes the agent;
//! it never carries a command. The HTTP client, the RS256 signature and
//! the token cache live in the server; the answer is classified by
//! [`crate::classify_fcm_response`].

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::error::ValidationError;
use crate::register::fcm_token;

/// The FCM API origin; tests point the server at a local fake instead.
pub const FCM_BASE_URL: &str = "https://fcm.googleapis.com";
/// The OAuth2 scope for sending.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Google's token endpoint (the service-account file's `token_uri`).
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The grant type of the JWT-bearer token exchange.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Longest assertion lifetime Google accepts.
pub const MAX_JWT_LIFETIME: Duration = Duration::hours(1);
/// Longest message TTL FCM accepts (28 days).
pub const MAX_FCM_TTL: Duration = Duration::days(28);
/// The `data.type` of a wake-up.
pub const WAKE_TYPE: &str = "wake";
/// The collapse key of wake-ups: an offline device gets only the last one.
pub const WAKE_COLLAPSE_KEY: &str = "mdm-wake";

/// `/v1/projects/{project_id}/messages:send`. Project ids are 6–30
/// characters of `a-z`, `0-9` and `-`.
pub fn send_path(project_id: &str) -> Result<String, ValidationError> {
    let ok = (6..=30).contains(&project_id.len())
        && project_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(ValidationError::BadFormat {
            field: "project_id",
            reason: "6-30 characters of a-z, 0-9 and '-'",
        });
    }
    Ok(format!("/v1/projects/{project_id}/messages:send"))
}

/// How urgently FCM delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FcmPriority {
    /// Waits out Doze. Enough for routine wake-ups.
    Normal,
    /// Wakes a dozing device. FCM deprioritizes apps whose high-priority
    /// messages show nothing to the user, so keep it for lock and wipe.
    High,
}

/// The `messages:send` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRequest {
    /// Validate without delivering.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub validate_only: bool,
    /// The message.
    pub message: FcmMessage,
}

/// A message to one registration token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FcmMessage {
    /// The device's registration token.
    pub token: String,
    /// String-to-string data; `{"type": "wake"}` for a wake-up.
    pub data: BTreeMap<String, String>,
    /// Android delivery options.
    pub android: AndroidConfig,
}

/// Android delivery options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AndroidConfig {
    /// `normal` or `high`.
    pub priority: FcmPriority,
    /// How long FCM keeps the message for an offline device: `"<secs>s"`.
    pub ttl: String,
    /// Messages with the same key replace each other while undelivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse_key: Option<String>,
}

/// A data-only wake-up for `token`: `{"message": {"token": …, "data":
/// {"type": "wake"}, "android": {"priority": …, "ttl": "<secs>s",
/// "collapse_key": "mdm-wake"}}}`. `ttl` is 0 to 28 days (whole seconds).
pub fn wake_message(
    token: &str,
    priority: FcmPriority,
    ttl: Duration,
) -> Result<SendRequest, ValidationError> {
    fcm_token("token", token)?;
    if ttl.is_negative() || ttl > MAX_FCM_TTL {
        return Err(ValidationError::OutOfRange {
            field: "ttl",
            value: ttl.whole_seconds(),
            min: 0,
            max: MAX_FCM_TTL.whole_seconds(),
        });
    }
    Ok(SendRequest {
        validate_only: false,
        message: FcmMessage {
            token: token.to_owned(),
            data: BTreeMap::from([("type".to_owned(), WAKE_TYPE.to_owned())]),
            android: AndroidConfig {
                priority,
                ttl: format!("{}s", ttl.whole_seconds()),
                collapse_key: Some(WAKE_COLLAPSE_KEY.to_owned()),
            },
        },
    })
}

/// The claims of the service-account assertion (RS256, signed by the
/// server with the account's private key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountClaims {
    /// The account's `client_email`.
    pub iss: String,
    /// [`FCM_SCOPE`].
    pub scope: String,
    /// The account's `token_uri`.
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds), at most an hour after `iat`.
    pub exp: i64,
}

impl ServiceAccountClaims {
    /// Claims issued at `now`, valid for `lifetime` (1 s to 1 h). The token
    /// URI must be HTTPS (plain HTTP only to a loopback host, for tests).
    pub fn new(
        client_email: &str,
        token_uri: &str,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<Self, ValidationError> {
        crate::validate::text("client_email", client_email, 254)?;
        crate::validate::url("token_uri", token_uri)?;
        if lifetime <= Duration::ZERO || lifetime > MAX_JWT_LIFETIME {
            return Err(ValidationError::OutOfRange {
                field: "lifetime",
                value: lifetime.whole_seconds(),
                min: 1,
                max: MAX_JWT_LIFETIME.whole_seconds(),
            });
        }
        let iat = now.unix_timestamp();
        Ok(Self {
            iss: client_email.to_owned(),
            scope: FCM_SCOPE.to_owned(),
            aud: token_uri.to_owned(),
            iat,
            exp: iat + lifetime.whole_seconds(),
        })
    }

    /// The JWS signing input `base64url(header).base64url(claims)` with
    /// header `{"alg":"RS256","typ":"JWT"}` (plus `kid`, the account's
    /// `private_key_id`, when given). Sign it with RSA-SHA256.
    pub fn signing_input(&self, key_id: Option<&str>) -> String {
        let mut header = serde_json::Map::new();
        header.insert("alg".into(), "RS256".into());
        header.insert("typ".into(), "JWT".into());
        if let Some(kid) = key_id {
            header.insert("kid".into(), kid.into());
        }
        let claims = serde_json::json!({
            "iss": self.iss, "scope": self.scope, "aud": self.aud,
            "iat": self.iat, "exp": self.exp,
        });
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }
}

/// The compact JWT: the signing input, a dot, the base64url signature.
pub fn jwt_assertion(signing_input: &str, signature: &[u8]) -> String {
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The form body to POST to the token URI
/// (`application/x-www-form-urlencoded`). A JWT needs no escaping.
pub fn token_request_body(assertion: &str) -> String {
    format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    )
}
