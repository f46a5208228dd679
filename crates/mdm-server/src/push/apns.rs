//! The APNs HTTP/2 provider client for MDM pushes.
//!
//! One HTTP/2 connection per client, multiplexed (reqwest with prior
//! knowledge: ALPN offers only `h2`, and concurrent requests wait for the
//! one connection instead of opening more; a client's first request goes
//! alone, since requests that race on a client without a connection could
//! each open one); a semaphore bounds the requests in flight. The request
//! parts come from [`mdm_apple::push_request`] and the answer is read by
//! [`mdm_apple::classify_response`].
//!
//! Authentication is either the MDM push certificate (mutual TLS; what MDM
//! uses in practice, since the topic `com.apple.mgmt.…` belongs to that
//! certificate) or a provider token signed with a `.p8` key.

use super::apns_token::ProviderToken;
use super::certinfo::PushCertificate;
use super::delivery::{Attempt, Delivery, InFlight, each, retrying};
use anyhow::Context;
use mdm_android::RetryAfter;
use mdm_apple::{
    PushExpiry, PushOutcome as ApnsAnswer, PushRequest, alert_push_request, classify_response,
    push_request,
};
use mdm_core::push::{AppAlert, ApplePush, PushOutcome};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use time::OffsetDateTime;

/// Apple's production endpoint.
pub const APNS_ENDPOINT: &str = "https://api.push.apple.com";
/// How long APNs keeps a push for an offline device when the caller gave
/// no expiry (only the newest push per device is kept anyway).
pub const DEFAULT_EXPIRY: time::Duration = time::Duration::days(1);

/// How the client proves who it is.
pub enum ApnsAuth {
    /// The push certificate and its key (PEM), presented in the TLS handshake.
    Certificate { cert_pem: Vec<u8>, key_pem: Vec<u8> },
    /// A provider token (JWT) in every request's `authorization` header.
    Token(ProviderToken),
}

/// Everything the client needs.
pub struct ApnsSettings {
    /// Base URL, without a trailing slash (default [`APNS_ENDPOINT`]).
    pub endpoint: String,
    pub auth: ApnsAuth,
    /// Extra trust anchors (PEM) replacing the system roots: for a local
    /// test server. `None` trusts the system roots.
    pub ca_pem: Option<Vec<u8>>,
    pub delivery: Delivery,
}

/// The client; cheap to clone (the connection and the limits are shared).
#[derive(Clone)]
pub struct ApnsClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: String,
    token: Option<ProviderToken>,
    certificate: Option<PushCertificate>,
    in_flight: InFlight,
    delivery: Delivery,
    /// Set once a request has had an answer: the connection is open.
    connected: AtomicBool,
    /// Held by the one request that opens the connection (see `exchange`).
    connecting: tokio::sync::Mutex<()>,
}

/// One answer from APNs, or why there was none.
enum Exchange {
    Answer {
        status: u16,
        body: Vec<u8>,
        apns_id: Option<String>,
        retry_after: Option<String>,
    },
    Failed(String),
}

impl ApnsClient {
    pub fn new(settings: ApnsSettings) -> anyhow::Result<Self> {
        let d = &settings.delivery;
        let mut builder = reqwest::Client::builder()
            .http2_prior_knowledge()
            .connect_timeout(d.timeout)
            .timeout(d.timeout)
            .pool_idle_timeout(None)
            .http2_keep_alive_interval(std::time::Duration::from_secs(60))
            .http2_keep_alive_while_idle(true);
        if let Some(ca) = &settings.ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(ca)
                .context("the APNs CA file holds no PEM certificate")?;
            builder = builder.tls_certs_only(roots);
        }
        let (token, certificate) = match settings.auth {
            ApnsAuth::Certificate { cert_pem, key_pem } => {
                let info = PushCertificate::from_pem(&cert_pem)?;
                let mut both = cert_pem;
                both.push(b'\n');
                both.extend_from_slice(&key_pem);
                let identity = reqwest::Identity::from_pem(&both)
                    .context("the APNs push certificate or its key is not usable PEM")?;
                builder = builder.identity(identity);
                (None, Some(info))
            }
            ApnsAuth::Token(t) => (Some(t), None),
        };
        let http = builder.build().context("cannot build the APNs client")?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoint: settings.endpoint.trim_end_matches('/').to_owned(),
                token,
                certificate,
                in_flight: InFlight::new(settings.delivery.max_in_flight),
                delivery: settings.delivery,
                connected: AtomicBool::new(false),
                connecting: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The push certificate, when the client authenticates with one.
    pub fn certificate(&self) -> Option<&PushCertificate> {
        self.inner.certificate.as_ref()
    }

    /// Sends every push (at most `max_in_flight` at once), one outcome each,
    /// in order.
    pub async fn push(&self, pushes: &[ApplePush]) -> Vec<PushOutcome> {
        each(pushes, |p| {
            let client = self.clone();
            async move { client.push_one(&p).await }
        })
        .await
    }

    /// Sends one push, retrying transient failures in process.
    pub async fn push_one(&self, p: &ApplePush) -> PushOutcome {
        let expiry = PushExpiry::At(
            p.expires_at
                .unwrap_or_else(|| OffsetDateTime::now_utc() + DEFAULT_EXPIRY),
        );
        let request = match push_request(&p.token, &p.push_magic, &p.topic, expiry) {
            Ok(r) => r,
            Err(e) => {
                return PushOutcome::Rejected {
                    reason: e.to_string(),
                };
            }
        };
        let url = format!("{}{}", self.inner.endpoint, request.path);
        let refreshed = AtomicBool::new(false);
        let outcome = retrying(&self.inner.delivery, || async {
            let exchange = self.exchange(&url, &request).await;
            self.judge(exchange, &refreshed)
        })
        .await;
        log_outcome(p, &outcome);
        outcome
    }

    /// Sends alerts to the client app (registration reminders), one outcome
    /// each, in order.
    pub async fn push_alerts(&self, alerts: &[AppAlert]) -> Vec<PushOutcome> {
        each(alerts, |a| {
            let client = self.clone();
            async move { client.push_alert(&a).await }
        })
        .await
    }

    /// Sends one alert, retrying transient failures in process.
    pub async fn push_alert(&self, a: &AppAlert) -> PushOutcome {
        let expiry = PushExpiry::At(OffsetDateTime::now_utc() + DEFAULT_EXPIRY);
        let request = match alert_push_request(&a.token, &a.topic, &a.title, &a.body, expiry) {
            Ok(r) => r,
            Err(e) => {
                return PushOutcome::Rejected {
                    reason: e.to_string(),
                };
            }
        };
        let url = format!("{}{}", self.inner.endpoint, request.path);
        let refreshed = AtomicBool::new(false);
        let outcome = retrying(&self.inner.delivery, || async {
            let exchange = self.exchange(&url, &request).await;
            self.judge(exchange, &refreshed)
        })
        .await;
        tracing::info!(tenant = %a.tenant_id, registration = %a.registration_id, outcome = ?outcome, "APNs app alert");
        outcome
    }

    async fn exchange(&self, url: &str, request: &PushRequest) -> Exchange {
        let Some(_permit) = self.inner.in_flight.acquire().await else {
            return Exchange::Failed("the APNs client is shut down".into());
        };
        let mut builder = self
            .inner
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(token) = &self.inner.token {
            match token.bearer(OffsetDateTime::now_utc().unix_timestamp()) {
                Ok(jwt) => {
                    builder =
                        builder.header(reqwest::header::AUTHORIZATION, format!("bearer {jwt}"))
                }
                Err(e) => return Exchange::Failed(format!("{e:#}")),
            }
        }
        // Until a first answer, requests go one at a time: concurrent
        // requests on a client without a connection can each open one (the
        // pool learns of an HTTP/2 connection only once its handshake is
        // done), and APNs wants one connection, reused.
        let opening = if self.inner.connected.load(Ordering::Acquire) {
            None
        } else {
            let turn = self.inner.connecting.lock().await;
            // Those that waited go on together once the connection is open.
            (!self.inner.connected.load(Ordering::Acquire)).then_some(turn)
        };
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return Exchange::Failed(describe_error(&e)),
        };
        self.inner.connected.store(true, Ordering::Release);
        drop(opening);
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (apns_id, retry_after) = (header("apns-id"), header("retry-after"));
        match response.bytes().await {
            Ok(body) => Exchange::Answer {
                status,
                body: body.to_vec(),
                apns_id,
                retry_after,
            },
            Err(e) => Exchange::Failed(describe_error(&e)),
        }
    }

    /// What an exchange means for the push.
    fn judge(&self, exchange: Exchange, refreshed: &AtomicBool) -> Attempt {
        let (status, body, apns_id, retry_after) = match exchange {
            Exchange::Failed(reason) => {
                return Attempt::Transient {
                    reason,
                    wait_at_least: None,
                    in_process: true,
                };
            }
            Exchange::Answer {
                status,
                body,
                apns_id,
                retry_after,
            } => (status, body, apns_id, retry_after),
        };
        match classify_response(status, &body) {
            ApnsAnswer::Delivered => Attempt::Done(PushOutcome::Sent { id: apns_id }),
            ApnsAnswer::TokenGone { .. } => Attempt::Done(PushOutcome::TokenGone {
                since: gone_since(&body),
            }),
            ApnsAnswer::Retry { status, reason } => Attempt::Transient {
                reason: describe(status, reason.as_deref()),
                wait_at_least: retry_after
                    .as_deref()
                    .and_then(RetryAfter::parse)
                    .map(|r| r.delay_from(OffsetDateTime::now_utc()).unsigned_abs()),
                in_process: true,
            },
            ApnsAnswer::Fatal { status, reason } => {
                let expired = status == 403 && reason.as_deref() == Some("ExpiredProviderToken");
                if expired && self.renew_token(refreshed) {
                    return Attempt::Transient {
                        reason: describe(status, reason.as_deref()),
                        wait_at_least: None,
                        in_process: true,
                    };
                }
                Attempt::Done(PushOutcome::Rejected {
                    reason: describe(status, reason.as_deref()),
                })
            }
        }
    }

    /// Replaces an expired provider token once per push, when Apple's
    /// 20-minute rule allows it.
    fn renew_token(&self, refreshed: &AtomicBool) -> bool {
        let Some(token) = &self.inner.token else {
            return false;
        };
        !refreshed.swap(true, Ordering::Relaxed)
            && token.expire(OffsetDateTime::now_utc().unix_timestamp())
    }
}

/// `410 {"reason":"Unregistered","timestamp":<ms>}`: since when the token
/// is gone.
fn gone_since(body: &[u8]) -> Option<OffsetDateTime> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let ms = v.get("timestamp")?.as_i64()?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn describe(status: u16, reason: Option<&str>) -> String {
    match reason {
        Some(r) => format!("APNs {status} {r}"),
        None => format!("APNs {status}"),
    }
}

/// A transport error with its causes (reqwest's own message is terse).
pub(crate) fn describe_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn log_outcome(p: &ApplePush, outcome: &PushOutcome) {
    match outcome {
        PushOutcome::Sent { id } => tracing::debug!(
            tenant = %p.tenant_id, enrollment = %p.enrollment_id, apns_id = ?id, "APNs push sent"
        ),
        PushOutcome::Recorded => {}
        PushOutcome::TokenGone { since } => tracing::info!(
            tenant = %p.tenant_id, enrollment = %p.enrollment_id, since = ?since, "APNs token gone"
        ),
        PushOutcome::Retry { reason, .. } => tracing::warn!(
            tenant = %p.tenant_id, enrollment = %p.enrollment_id, %reason, "APNs push deferred"
        ),
        PushOutcome::Rejected { reason } => tracing::warn!(
            tenant = %p.tenant_id, enrollment = %p.enrollment_id, %reason, "APNs push rejected"
        ),
    }
}
