//! A local FCM HTTP v1 and OAuth2 token endpoint that answer as Google
//! documents: `POST /token` checks the RS256 service-account assertion with
//! the account's public key (`kid`, `iss`, `scope`, `aud`, `iat`/`exp`) and
//! issues an access token; `POST /v1/projects/{p}/messages:send` checks the
//! Bearer token, the project and the message, and answers with a message
//! name or Google's error JSON (`{"error": {"code", "status", "message",
//! "details": [{"@type": "…FcmError", "errorCode"}]}}`) as scripted per
//! registration token.

use crate::fake_tls::{HttpsServer, Received, TestPki, err, header, respond, serve};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mdm_pki::spki::SubjectPublicKeyInfoOwned;
use mdm_pki::{DigestAlg, RsaKey};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const PROJECT: &str = "mdm-test-project";
pub const CLIENT_EMAIL: &str = "mdm-push@mdm-test-project.iam.gserviceaccount.com";
const KEY_ID: &str = "0123456789abcdef0123456789abcdef01234567";

/// A scripted answer for one registration token.
#[derive(Clone, Copy, Debug)]
pub struct FcmReply {
    pub code: u16,
    pub status: &'static str,
    pub error_code: Option<&'static str>,
    pub retry_after: Option<&'static str>,
}

impl FcmReply {
    pub const fn new(code: u16, status: &'static str, error_code: Option<&'static str>) -> Self {
        Self {
            code,
            status,
            error_code,
            retry_after: None,
        }
    }
}

/// One `messages:send` as the fake saw it.
#[derive(Clone, Debug)]
pub struct ReceivedSend {
    pub token: String,
    pub message: serde_json::Value,
    pub status: u16,
}

#[derive(Default)]
struct State {
    issued: Mutex<HashSet<String>>,
    exchanges: AtomicUsize,
    scripts: Mutex<HashMap<String, VecDeque<FcmReply>>>,
    received: Mutex<Vec<ReceivedSend>>,
}

pub struct FakeFcm {
    pub url: String,
    pub ca_pem: String,
    /// The service-account key file pointing at this fake's token URI.
    pub service_account_file: PathBuf,
    state: Arc<State>,
    _server: HttpsServer,
}

struct Account {
    public: SubjectPublicKeyInfoOwned,
    token_uri: String,
}

impl FakeFcm {
    pub async fn start(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(err)?;
        let pki = TestPki::new("Fake Google CA")?;
        let key = RsaKey::generate(2048).map_err(err)?;
        let state = Arc::new(State::default());
        let account = Arc::new(Mutex::new(Account {
            public: key.public_key_spki().clone(),
            token_uri: String::new(),
        }));
        let (s, a) = (state.clone(), account.clone());
        let server = serve(pki.server_config(false)?, move |r| {
            let (state, account) = (s.clone(), a.clone());
            async move { answer(&state, &account, r) }
        })
        .await?;
        let token_uri = format!("{}/token", server.url);
        if let Ok(mut a) = account.lock() {
            a.token_uri = token_uri.clone();
        }
        let json = serde_json::json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": KEY_ID,
            "private_key": key.to_pkcs8_pem().map_err(err)?.as_str(),
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        });
        let service_account_file = dir.join("service-account.json");
        std::fs::write(&service_account_file, json.to_string()).map_err(err)?;
        Ok(Self {
            url: server.url.clone(),
            ca_pem: pki.ca_pem(),
            service_account_file,
            state,
            _server: server,
        })
    }

    /// `MDM_*` variables that point `mdm serve` at this fake.
    pub fn config_env(&self, dir: &Path) -> Result<Vec<(String, String)>, String> {
        let ca = dir.join("google-ca.pem");
        std::fs::write(&ca, &self.ca_pem).map_err(err)?;
        Ok(vec![
            (
                "MDM_FCM_SERVICE_ACCOUNT_FILE".into(),
                self.service_account_file.display().to_string(),
            ),
            ("MDM_FCM_ENDPOINT".into(), self.url.clone()),
            ("MDM_FCM_CA_FILE".into(), ca.display().to_string()),
        ])
    }

    pub fn script(&self, token: &str, replies: &[FcmReply]) {
        if let Ok(mut s) = self.state.scripts.lock() {
            s.insert(token.to_owned(), replies.iter().cloned().collect());
        }
    }

    /// Access tokens issued so far.
    pub fn exchanges(&self) -> usize {
        self.state.exchanges.load(Ordering::SeqCst)
    }

    /// Revokes every access token issued (the next send gets 401).
    pub fn revoke_all(&self) {
        if let Ok(mut i) = self.state.issued.lock() {
            i.clear();
        }
    }

    pub fn received_for(&self, token: &str) -> Vec<ReceivedSend> {
        self.state
            .received
            .lock()
            .map(|r| r.iter().filter(|s| s.token == token).cloned().collect())
            .unwrap_or_default()
    }
}

type Res = hyper::Response<http_body_util::Full<hyper::body::Bytes>>;

fn answer(state: &State, account: &Mutex<Account>, r: Received) -> Res {
    if r.method == "POST" && r.path == "/token" {
        return token(state, account, &r);
    }
    let Some(project) = r
        .path
        .strip_prefix("/v1/projects/")
        .and_then(|p| p.strip_suffix("/messages:send"))
    else {
        return google_error(&FcmReply::new(404, "NOT_FOUND", None), "no such method");
    };
    let bearer = header(&r.headers, "authorization")
        .and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned));
    let known = bearer.is_some_and(|b| state.issued.lock().is_ok_and(|i| i.contains(&b)));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let message = body["message"].clone();
    let token = message["token"].as_str().unwrap_or_default().to_owned();
    let well_formed = !token.is_empty()
        && message["data"]["type"] == "wake"
        && message["data"]
            .as_object()
            .is_some_and(|d| d.values().all(|v| v.is_string()))
        && message["android"]["priority"] == "high"
        && message.get("notification").is_none();
    let reply = if !known {
        Some(FcmReply::new(401, "UNAUTHENTICATED", None))
    } else if project != PROJECT {
        Some(FcmReply::new(403, "PERMISSION_DENIED", None))
    } else if !well_formed {
        Some(FcmReply::new(
            400,
            "INVALID_ARGUMENT",
            Some("INVALID_ARGUMENT"),
        ))
    } else {
        state
            .scripts
            .lock()
            .ok()
            .and_then(|mut s| s.get_mut(&token).and_then(VecDeque::pop_front))
    };
    let status = reply.as_ref().map_or(200, |r| r.code);
    if let Ok(mut received) = state.received.lock() {
        received.push(ReceivedSend {
            token,
            message,
            status,
        });
    }
    match reply {
        None => {
            let n = state.received.lock().map(|r| r.len()).unwrap_or(0);
            let name = format!("projects/{PROJECT}/messages/0:{n}");
            respond(
                200,
                &[("content-type", "application/json".into())],
                serde_json::json!({"name": name}).to_string(),
            )
        }
        Some(reply) => google_error(&reply, "scripted"),
    }
}

fn google_error(reply: &FcmReply, message: &str) -> Res {
    let details: Vec<serde_json::Value> = reply
        .error_code
        .map(|c| serde_json::json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": c}))
        .into_iter()
        .collect();
    let body = serde_json::json!({"error": {"code": reply.code, "message": message, "status": reply.status, "details": details}});
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(ra) = reply.retry_after {
        headers.push(("retry-after", ra.to_string()));
    }
    respond(reply.code, &headers, body.to_string())
}

/// The JWT-bearer grant: RFC 7523 as Google implements it.
fn token(state: &State, account: &Mutex<Account>, r: &Received) -> Res {
    let refuse = |why: &str| {
        respond(
            400,
            &[("content-type", "application/json".into())],
            serde_json::json!({"error": "invalid_grant", "error_description": why}).to_string(),
        )
    };
    let form = String::from_utf8_lossy(&r.body).to_string();
    let fields: HashMap<&str, &str> = form
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    if fields
        .get("grant_type")
        .map(|g| g.replace("%3A", ":"))
        .as_deref()
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return refuse("grant_type");
    }
    let Some(assertion) = fields.get("assertion") else {
        return refuse("no assertion");
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return refuse("not a JWT");
    };
    let json = |p: &str| {
        URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    };
    let (Some(head), Some(claims), Ok(sig)) = (json(h), json(c), URL_SAFE_NO_PAD.decode(s)) else {
        return refuse("undecodable JWT");
    };
    let Ok(account) = account.lock() else {
        return refuse("state");
    };
    let signed = format!("{h}.{c}");
    if mdm_pki::verify_rsa(&account.public, DigestAlg::Sha256, signed.as_bytes(), &sig).is_err() {
        return refuse("Invalid JWT Signature.");
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    let ok = head["alg"] == "RS256"
        && head["kid"] == KEY_ID
        && claims["iss"] == CLIENT_EMAIL
        && claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
        && claims["aud"] == account.token_uri.as_str()
        && (now - 60..=now + 60).contains(&iat)
        && exp > iat
        && exp - iat <= 3600;
    if !ok {
        return refuse("Invalid JWT: claims");
    }
    let n = state.exchanges.fetch_add(1, Ordering::SeqCst) + 1;
    let access = format!("ya29.fake-{n}-{}", uuid::Uuid::new_v4().simple());
    if let Ok(mut issued) = state.issued.lock() {
        issued.insert(access.clone());
    }
    respond(
        200,
        &[("content-type", "application/json".into())],
        serde_json::json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer"})
            .to_string(),
    )
}
