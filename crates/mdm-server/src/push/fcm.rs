//! The FCM HTTP v1 client: wake-ups for the Android agent.
//!
//! A service-account key signs an RS256 assertion, exchanged at the
//! account's `token_uri` for an OAuth2 access token that is cached until
//! five minutes before it expires. Each wake-up is one `messages:send`
//! carrying only data (`type: wake`); the agent then fetches its commands
//! over the authenticated agent API. Answers are read by
//! [`mdm_android::classify_fcm_response`].

use super::apns::describe_error;
use super::delivery::{Attempt, Delivery, InFlight, each, retrying};
use anyhow::Context;
use mdm_android::{
    FcmErrorCode, FcmOutcome, FcmPriority, ServiceAccountClaims, classify_fcm_response,
    jwt_assertion, send_path, token_request_body, wake_message,
};
use mdm_core::push::{AndroidPush, PushOutcome};
use mdm_pki::{DigestAlg, RsaKey};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Mutex;

/// How long FCM keeps a wake-up for an offline device.
pub const WAKE_TTL: time::Duration = time::Duration::days(1);
/// An access token is replaced this long before it expires.
pub const TOKEN_MARGIN: time::Duration = time::Duration::minutes(5);
/// Google asks senders hitting `QUOTA_EXCEEDED` to wait at least a minute.
const QUOTA_WAIT: Duration = Duration::from_secs(60);

/// The fields of a service-account key file the client uses.
#[derive(Deserialize)]
struct ServiceAccountFile {
    project_id: String,
    private_key_id: Option<String>,
    private_key: String,
    client_email: String,
    token_uri: String,
}

/// Everything the client needs.
pub struct FcmSettings {
    /// The service-account key file's JSON.
    pub service_account_json: Vec<u8>,
    /// API origin (default [`mdm_android::FCM_BASE_URL`]).
    pub endpoint: String,
    /// Replaces the file's `token_uri` (tests).
    pub token_uri: Option<String>,
    /// Trust anchors (PEM) replacing the system roots, for a local test server.
    pub ca_pem: Option<Vec<u8>>,
    pub delivery: Delivery,
}

/// The client; cheap to clone.
#[derive(Clone)]
pub struct FcmClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    send_url: String,
    token_uri: String,
    project_id: String,
    client_email: String,
    key_id: Option<String>,
    key: RsaKey,
    access: Mutex<Option<(String, OffsetDateTime)>>,
    in_flight: InFlight,
    delivery: Delivery,
}

/// Why no access token could be had.
enum TokenError {
    /// The credentials are refused: no retry helps.
    Refused(String),
    /// The token endpoint is unreachable or failing.
    Unavailable(String),
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
}

impl FcmClient {
    pub fn new(settings: FcmSettings) -> anyhow::Result<Self> {
        let account: ServiceAccountFile = serde_json::from_slice(&settings.service_account_json)
            .context("the FCM service-account file is not a service-account key (JSON with project_id, private_key, client_email, token_uri)")?;
        let key = RsaKey::from_pem(&account.private_key)
            .map_err(|e| anyhow::anyhow!("the service account's private_key is unusable: {e}"))?;
        let send = send_path(&account.project_id)
            .map_err(|e| anyhow::anyhow!("the service account's project_id: {e}"))?;
        let d = &settings.delivery;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(d.timeout)
            .timeout(d.timeout)
            .pool_idle_timeout(Duration::from_secs(300));
        if let Some(ca) = &settings.ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(ca)
                .context("the FCM CA file holds no PEM certificate")?;
            builder = builder.tls_certs_only(roots);
        }
        let http = builder.build().context("cannot build the FCM client")?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                send_url: format!("{}{send}", settings.endpoint.trim_end_matches('/')),
                token_uri: settings.token_uri.unwrap_or(account.token_uri),
                project_id: account.project_id,
                client_email: account.client_email,
                key_id: account.private_key_id,
                key,
                access: Mutex::new(None),
                in_flight: InFlight::new(settings.delivery.max_in_flight),
                delivery: settings.delivery,
            }),
        })
    }

    /// The Firebase project pushes go to.
    pub fn project_id(&self) -> &str {
        &self.inner.project_id
    }

    /// Sends every wake-up (at most `max_in_flight` at once), in order.
    pub async fn push(&self, pushes: &[AndroidPush]) -> Vec<PushOutcome> {
        each(pushes, |p| {
            let client = self.clone();
            async move { client.push_one(&p).await }
        })
        .await
    }

    /// Sends one wake-up, retrying transient failures in process.
    pub async fn push_one(&self, p: &AndroidPush) -> PushOutcome {
        let mut body = match wake_message(&p.token, FcmPriority::High, WAKE_TTL) {
            Ok(b) => b,
            Err(e) => {
                return PushOutcome::Rejected {
                    reason: format!("FCM message: {e}"),
                };
            }
        };
        for (k, v) in &p.data {
            body.message
                .data
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        let refreshed = AtomicBool::new(false);
        let outcome = retrying(&self.inner.delivery, || async {
            self.attempt(&body, &refreshed).await
        })
        .await;
        match &outcome {
            PushOutcome::Sent { .. } | PushOutcome::Recorded => {
                tracing::debug!(tenant = %p.tenant_id, device = %p.device_id, "FCM push sent")
            }
            other => {
                tracing::info!(tenant = %p.tenant_id, device = %p.device_id, outcome = ?other, "FCM push not sent")
            }
        }
        outcome
    }

    async fn attempt(&self, body: &mdm_android::SendRequest, refreshed: &AtomicBool) -> Attempt {
        let access = match self.access_token().await {
            Ok(t) => t,
            Err(TokenError::Refused(reason)) => {
                return Attempt::Done(PushOutcome::Rejected { reason });
            }
            Err(TokenError::Unavailable(reason)) => return transient(reason, None),
        };
        let Some(_permit) = self.inner.in_flight.acquire().await else {
            return transient("the FCM client is shut down".into(), None);
        };
        let sent = self
            .inner
            .http
            .post(&self.inner.send_url)
            .bearer_auth(&access)
            .json(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return transient(describe_error(&e), None),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return transient(describe_error(&e), None),
        };
        let outcome = classify_fcm_response(status, &bytes, retry_after.as_deref());
        self.judge(outcome, refreshed).await
    }

    async fn judge(&self, outcome: FcmOutcome, refreshed: &AtomicBool) -> Attempt {
        let now = OffsetDateTime::now_utc();
        match outcome {
            FcmOutcome::Sent { name } => Attempt::Done(PushOutcome::Sent { id: name }),
            FcmOutcome::TokenDead => Attempt::Done(PushOutcome::TokenGone { since: None }),
            FcmOutcome::Retry {
                code,
                http_status,
                retry_after,
            } => {
                let asked = retry_after.map(|r| r.delay_from(now).unsigned_abs());
                let reason = format!("FCM {http_status} {}", code_text(code.as_ref()));
                if code == Some(FcmErrorCode::QuotaExceeded) {
                    return Attempt::Transient {
                        reason,
                        wait_at_least: Some(asked.unwrap_or(QUOTA_WAIT).max(QUOTA_WAIT)),
                        in_process: false,
                    };
                }
                transient(reason, asked)
            }
            FcmOutcome::RefreshAuth => {
                *self.inner.access.lock().await = None;
                if refreshed.swap(true, Ordering::Relaxed) {
                    Attempt::Done(PushOutcome::Rejected {
                        reason: "FCM 401: a fresh access token was refused too".into(),
                    })
                } else {
                    transient("FCM 401: access token refused".into(), Some(Duration::ZERO))
                }
            }
            FcmOutcome::Fatal {
                code,
                http_status,
                message,
            } => Attempt::Done(PushOutcome::Rejected {
                reason: format!(
                    "FCM {http_status} {}: {}",
                    code_text(code.as_ref()),
                    message.unwrap_or_default()
                ),
            }),
        }
    }

    /// The cached access token, or a new one from the token endpoint.
    /// Concurrent callers wait for the one exchange in progress.
    async fn access_token(&self) -> Result<String, TokenError> {
        let mut access = self.inner.access.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some((token, expires)) = access.as_ref()
            && now + TOKEN_MARGIN < *expires
        {
            return Ok(token.clone());
        }
        let (token, expires) = self.exchange_assertion(now).await?;
        *access = Some((token.clone(), expires));
        Ok(token)
    }

    async fn exchange_assertion(
        &self,
        now: OffsetDateTime,
    ) -> Result<(String, OffsetDateTime), TokenError> {
        let i = &self.inner;
        let claims =
            ServiceAccountClaims::new(&i.client_email, &i.token_uri, now, time::Duration::hours(1))
                .map_err(|e| TokenError::Refused(format!("FCM assertion: {e}")))?;
        let input = claims.signing_input(i.key_id.as_deref());
        let signature = i
            .key
            .sign(DigestAlg::Sha256, input.as_bytes())
            .map_err(|e| TokenError::Refused(format!("FCM assertion: {e}")))?;
        let response = i
            .http
            .post(&i.token_uri)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(token_request_body(&jwt_assertion(&input, &signature)))
            .send()
            .await
            .map_err(|e| {
                TokenError::Unavailable(format!("FCM token endpoint: {}", describe_error(&e)))
            })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            TokenError::Unavailable(format!("FCM token endpoint: {}", describe_error(&e)))
        })?;
        if !status.is_success() {
            let text: String = String::from_utf8_lossy(&bytes).chars().take(256).collect();
            let reason = format!("FCM token endpoint {}: {text}", status.as_u16());
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                TokenError::Unavailable(reason)
            } else {
                TokenError::Refused(reason)
            });
        }
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|e| {
            TokenError::Unavailable(format!("FCM token endpoint answered no token: {e}"))
        })?;
        Ok((
            answer.access_token,
            now + time::Duration::seconds(answer.expires_in),
        ))
    }
}

fn transient(reason: String, wait_at_least: Option<Duration>) -> Attempt {
    Attempt::Transient {
        reason,
        wait_at_least,
        in_process: true,
    }
}

fn code_text(code: Option<&FcmErrorCode>) -> String {
    code.map_or_else(String::new, ToString::to_string)
}
