//! A local APNs provider API that answers as Apple documents
//! ("Sending notification requests to APNs", "Handling notification
//! responses from APNs"): HTTP/2 over TLS, `POST /3/device/<hex token>`,
//! MDM pushes, and alerts to the client app's topic [`APP_TOPIC`] with
//! provider tokens (what a push certificate cannot reach). It checks the
//! path, `apns-topic`, `apns-push-type: mdm` (or `alert` with an
//! `aps.alert`),
//! `apns-priority`, `apns-expiration`, the body `{"mdm": "<PushMagic>"}` and
//! the credentials — a provider token (ES256, verified with the key's public
//! half, `kid`, `iss`, `iat` no older than an hour) or a client certificate
//! from its CA whose UID is the topic — and answers 200 with an `apns-id`,
//! or what a per-token script says.
//!
//! Reusable: `mdm serve` reaches it through [`FakeApns::config_env`], and
//! [`FakeApns::received`] tells a test which devices were woken.

use crate::fake_tls::{HttpsServer, Received, TestPki, err, header, respond, serve};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The push topic the fake accepts.
pub const TOPIC: &str = "com.apple.mgmt.External.7b0f1a52-3c1d-4f6e-9d2a-5e8b1c0d4f3a";

/// The client app's bundle identifier: the topic of its alerts.
pub const APP_TOPIC: &str = "com.example.mdm.client";

/// How the fake expects providers to authenticate.
pub enum FakeAuth {
    /// Provider tokens signed with a `.p8` key it generated.
    Token,
    /// A push certificate it issued (mutual TLS).
    Certificate,
}

/// A scripted answer for one device token.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// 410 `Unregistered` with this timestamp (ms since the epoch).
    Gone(i64),
    /// Any status with Apple's `reason`.
    Status(u16, &'static str),
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct ReceivedPush {
    pub token_hex: String,
    pub topic: Option<String>,
    pub push_type: Option<String>,
    pub priority: Option<String>,
    pub expiration: Option<String>,
    pub push_magic: Option<String>,
    /// The `aps.alert.title` of an alert push.
    pub alert_title: Option<String>,
    pub jwt: Option<String>,
    pub connection: usize,
    pub status: u16,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    received: Mutex<Vec<ReceivedPush>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    delay: Mutex<Duration>,
    ids: AtomicUsize,
}

/// The credentials a provider needs, written to files in the fake's directory.
pub struct Credentials {
    /// `.p8` (token auth) or the push certificate (certificate auth).
    pub key_file: PathBuf,
    pub cert_file: Option<PathBuf>,
    pub key_id: String,
    pub team_id: String,
}

/// A running fake APNs.
pub struct FakeApns {
    pub url: String,
    /// The CA the fake's TLS certificate chains to (and, with certificate
    /// auth, the push certificate's issuer).
    pub ca_file: PathBuf,
    pub ca_pem: String,
    pub credentials: Credentials,
    state: Arc<State>,
    server: HttpsServer,
}

const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "TEAM456XYZ";

impl FakeApns {
    /// Starts on a free loopback port, writing its files into `dir`.
    pub async fn start(auth: FakeAuth, dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(err)?;
        let pki = TestPki::new("Fake APNs CA")?;
        let ca_file = dir.join("apns-ca.pem");
        std::fs::write(&ca_file, pki.ca_pem()).map_err(err)?;
        let state = Arc::new(State::default());
        let (credentials, check, config) = match auth {
            FakeAuth::Token => {
                let key =
                    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
                let key_file = dir.join(format!("AuthKey_{KEY_ID}.p8"));
                std::fs::write(&key_file, key.serialize_pem()).map_err(err)?;
                let check = Check::Token(key.public_key_raw().to_vec());
                let creds = Credentials {
                    key_file,
                    cert_file: None,
                    key_id: KEY_ID.into(),
                    team_id: TEAM_ID.into(),
                };
                (creds, check, pki.server_config(false)?)
            }
            FakeAuth::Certificate => {
                let push = pki.client_cert("APSP:7b0f1a52", Some(TOPIC))?;
                let cert_file = dir.join("push-cert.pem");
                let key_file = dir.join("push-key.pem");
                std::fs::write(&cert_file, &push.cert_pem).map_err(err)?;
                std::fs::write(&key_file, &push.key_pem).map_err(err)?;
                let creds = Credentials {
                    key_file,
                    cert_file: Some(cert_file),
                    key_id: String::new(),
                    team_id: String::new(),
                };
                (creds, Check::Certificate, pki.server_config(true)?)
            }
        };
        let check = Arc::new(check);
        let handler_state = state.clone();
        let server = serve(config, move |r| {
            let (state, check) = (handler_state.clone(), check.clone());
            async move { answer(&state, &check, r).await }
        })
        .await?;
        Ok(Self {
            url: server.url.clone(),
            ca_pem: pki.ca_pem(),
            ca_file,
            credentials,
            state,
            server,
        })
    }

    /// Answers for `token_hex`, in order; afterwards 200 again.
    pub fn script(&self, token_hex: &str, replies: &[Reply]) {
        if let Ok(mut s) = self.state.scripts.lock() {
            s.insert(token_hex.to_owned(), replies.iter().cloned().collect());
        }
    }

    /// Holds every answer back this long (to see concurrency).
    pub fn set_delay(&self, delay: Duration) {
        if let Ok(mut d) = self.state.delay.lock() {
            *d = delay;
        }
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<ReceivedPush> {
        self.state
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Requests for one token.
    pub fn received_for(&self, token_hex: &str) -> Vec<ReceivedPush> {
        self.received()
            .into_iter()
            .filter(|p| p.token_hex == token_hex)
            .collect()
    }

    /// Waits until a push for `token_hex` arrives (for end-to-end tests
    /// where the server pushes on its own), up to `timeout`.
    pub async fn wait_for_push(&self, token_hex: &str, timeout: Duration) -> Option<ReceivedPush> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = self.received_for(token_hex).pop() {
                return Some(p);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Distinct provider tokens seen.
    pub fn distinct_jwts(&self) -> usize {
        self.received()
            .iter()
            .filter_map(|p| p.jwt.clone())
            .collect::<HashSet<_>>()
            .len()
    }

    /// TLS connections accepted.
    pub fn connections(&self) -> usize {
        self.server.connections.load(Ordering::SeqCst)
    }

    /// Most requests the fake was answering at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Forgets what was received.
    pub fn reset(&self) {
        if let Ok(mut r) = self.state.received.lock() {
            r.clear();
        }
        self.state.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// `MDM_*` variables that point `mdm serve` at this fake.
    pub fn config_env(&self) -> Vec<(String, String)> {
        let path = |p: &Path| p.display().to_string();
        let mut env = vec![
            ("MDM_APNS_ENDPOINT".to_string(), self.url.clone()),
            ("MDM_APNS_CA_FILE".to_string(), path(&self.ca_file)),
            ("MDM_MDM_TOPIC".to_string(), TOPIC.to_string()),
        ];
        let c = &self.credentials;
        match &c.cert_file {
            Some(cert) => {
                env.push(("MDM_APNS_CERT_FILE".into(), path(cert)));
                env.push(("MDM_APNS_CERT_KEY_FILE".into(), path(&c.key_file)));
            }
            None => {
                env.push(("MDM_APNS_KEY_FILE".into(), path(&c.key_file)));
                env.push(("MDM_APNS_KEY_ID".into(), c.key_id.clone()));
                env.push(("MDM_APNS_TEAM_ID".into(), c.team_id.clone()));
            }
        }
        env
    }
}

enum Check {
    /// The public key (uncompressed point) provider tokens must verify with.
    Token(Vec<u8>),
    /// The connection presented a certificate (the TLS layer checked its
    /// issuer); its UID must be the topic.
    Certificate,
}

async fn answer(
    state: &State,
    check: &Check,
    r: Received,
) -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = state.delay.lock().map(|d| *d).unwrap_or_default();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let token_hex = r
        .path
        .strip_prefix("/3/device/")
        .unwrap_or_default()
        .to_owned();
    let body_json = serde_json::from_slice::<serde_json::Value>(&r.body).ok();
    let push_magic = body_json
        .as_ref()
        .and_then(|v| v.get("mdm").and_then(|m| m.as_str()).map(str::to_owned));
    let alert_title = body_json
        .as_ref()
        .and_then(|v| v["aps"]["alert"]["title"].as_str().map(str::to_owned));
    let jwt = header(&r.headers, "authorization")
        .and_then(|a| a.strip_prefix("bearer ").map(str::to_owned));
    let verdict = validate(check, &r, &token_hex, push_magic.as_deref(), jwt.as_deref())
        .or_else(|| scripted(state, &token_hex));
    let (status, reason) = match &verdict {
        None => (200, None),
        Some(Reply::Gone(_)) => (410, Some("Unregistered")),
        Some(Reply::Status(s, reason)) => (*s, Some(*reason)),
    };
    let record = ReceivedPush {
        token_hex,
        topic: header(&r.headers, "apns-topic"),
        push_type: header(&r.headers, "apns-push-type"),
        priority: header(&r.headers, "apns-priority"),
        expiration: header(&r.headers, "apns-expiration"),
        push_magic,
        alert_title,
        jwt,
        connection: r.conn.number,
        status,
        at: Instant::now(),
    };
    if let Ok(mut received) = state.received.lock() {
        received.push(record);
    }
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let id = format!(
        "00000000-0000-4000-8000-{:012x}",
        state.ids.fetch_add(1, Ordering::SeqCst)
    );
    let body = match &verdict {
        None => String::new(),
        Some(Reply::Gone(ts)) => serde_json::json!({"reason": reason, "timestamp": ts}).to_string(),
        Some(Reply::Status(..)) => serde_json::json!({"reason": reason}).to_string(),
    };
    respond(status, &[("apns-id", id)], body)
}

fn scripted(state: &State, token_hex: &str) -> Option<Reply> {
    state
        .scripts
        .lock()
        .ok()
        .and_then(|mut s| s.get_mut(token_hex).and_then(VecDeque::pop_front))
}

/// What Apple would refuse before looking at the device token's state.
fn validate(
    check: &Check,
    r: &Received,
    token_hex: &str,
    push_magic: Option<&str>,
    jwt: Option<&str>,
) -> Option<Reply> {
    let h = |n| header(&r.headers, n);
    if r.method != "POST" {
        return Some(Reply::Status(405, "MethodNotAllowed"));
    }
    if !r.path.starts_with("/3/device/") {
        return Some(Reply::Status(404, "BadPath"));
    }
    if token_hex.len() < 64 || !token_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(Reply::Status(400, "BadDeviceToken"));
    }
    match check {
        Check::Token(public) => {
            let Some(jwt) = jwt else {
                return Some(Reply::Status(403, "MissingProviderToken"));
            };
            if let Some(refusal) = check_jwt(public, jwt) {
                return Some(refusal);
            }
        }
        Check::Certificate => {
            let uid = r.conn.peer_certs.first().and_then(|der| cert_uid(der));
            match uid {
                None => return Some(Reply::Status(403, "BadCertificate")),
                Some(uid) if uid != TOPIC => return Some(Reply::Status(400, "TopicDisallowed")),
                Some(_) => {}
            }
        }
    }
    if h("apns-push-type").as_deref() == Some("alert") {
        return validate_alert(check, r);
    }
    match h("apns-topic") {
        None => return Some(Reply::Status(400, "MissingTopic")),
        Some(t) if t != TOPIC => return Some(Reply::Status(400, "DeviceTokenNotForTopic")),
        Some(_) => {}
    }
    if h("apns-push-type").as_deref() != Some("mdm") {
        return Some(Reply::Status(400, "InvalidPushType"));
    }
    if !matches!(h("apns-priority").as_deref(), None | Some("5" | "10")) {
        return Some(Reply::Status(400, "BadPriority"));
    }
    if h("apns-expiration").is_some_and(|e| e.parse::<i64>().is_err()) {
        return Some(Reply::Status(400, "BadExpirationDate"));
    }
    let body: Option<serde_json::Value> = serde_json::from_slice(&r.body).ok();
    let only_mdm = body
        .as_ref()
        .and_then(|b| b.as_object())
        .is_some_and(|o| o.len() == 1 && push_magic.is_some_and(|m| !m.is_empty()));
    if !only_mdm {
        return Some(Reply::Status(400, "PayloadEmpty"));
    }
    None
}

/// An alert to the client app: only with a provider token (a push
/// certificate is for its own MDM topic), to [`APP_TOPIC`], with an
/// `aps.alert` holding a title and body.
fn validate_alert(check: &Check, r: &Received) -> Option<Reply> {
    if matches!(check, Check::Certificate) {
        return Some(Reply::Status(400, "TopicDisallowed"));
    }
    if header(&r.headers, "apns-topic").as_deref() != Some(APP_TOPIC) {
        return Some(Reply::Status(400, "DeviceTokenNotForTopic"));
    }
    let body: Option<serde_json::Value> = serde_json::from_slice(&r.body).ok();
    let alert = body.as_ref().map(|b| &b["aps"]["alert"]);
    if !alert.is_some_and(|a| a["title"].is_string() && a["body"].is_string()) {
        return Some(Reply::Status(400, "PayloadEmpty"));
    }
    None
}

fn check_jwt(public: &[u8], jwt: &str) -> Option<Reply> {
    let invalid = Some(Reply::Status(403, "InvalidProviderToken"));
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return invalid;
    };
    let json = |p: &str| {
        URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    };
    let (Some(header), Some(claims), Ok(sig)) = (json(h), json(c), URL_SAFE_NO_PAD.decode(s))
    else {
        return invalid;
    };
    let signed = format!("{h}.{c}");
    let verified = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
        .verify(signed.as_bytes(), &sig)
        .is_ok();
    if !verified || header["alg"] != "ES256" || header["kid"] != KEY_ID || claims["iss"] != TEAM_ID
    {
        return invalid;
    }
    let iat = claims["iat"].as_i64().unwrap_or(0);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if now - iat > 3600 || iat > now + 60 {
        return Some(Reply::Status(403, "ExpiredProviderToken"));
    }
    None
}

/// The subject's userId (0.9.2342.19200300.100.1.1), read with x509-cert.
fn cert_uid(der: &[u8]) -> Option<String> {
    let uid = mdm_pki::const_oid::ObjectIdentifier::new("0.9.2342.19200300.100.1.1").ok()?;
    let cert = mdm_pki::cert_from_der(der).ok()?;
    let value = cert
        .tbs_certificate()
        .subject()
        .iter()
        .find(|atv| atv.oid == uid)?
        .value
        .decode_as::<String>()
        .ok()?;
    Some(value)
}
