//! Where a device's profile comes from: the admin API of the server
//! (`POST /api/v1/tenants/{t}/enrollment-profiles`), or any URL with an
//! optional bearer token, as a browser or the client app would fetch it.

use serde_json::json;

use crate::error::SimError;
use crate::facts::Platform;

/// A downloaded profile.
#[derive(Clone, Debug)]
pub struct Downloaded {
    /// The registration it belongs to (`X-Registration`), when the server says.
    pub registration: Option<String>,
    /// The signed `.mobileconfig`.
    pub signed: Vec<u8>,
}

/// The admin API of a server: base URL, tenant and bearer token.
#[derive(Clone, Debug)]
pub struct AdminApi {
    /// `http://127.0.0.1:8080`.
    pub base: String,
    /// Tenant id or slug.
    pub tenant: String,
    /// API token.
    pub token: String,
}

impl AdminApi {
    /// An API at `base` for `tenant`.
    pub fn new(base: &str, tenant: &str, token: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            tenant: tenant.to_owned(),
            token: token.to_owned(),
        }
    }

    /// `{base}/api/v1/tenants/{tenant}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1/tenants/{}{path}", self.base, self.tenant)
    }

    /// Issues a fresh profile for `platform`, optionally for a user.
    pub async fn issue_profile(
        &self,
        http: &reqwest::Client,
        platform: Platform,
        user_id: Option<&str>,
    ) -> Result<Downloaded, SimError> {
        let platform = match platform {
            Platform::Iphone => "ios",
            Platform::Mac => "macos",
        };
        let mut body = json!({ "platform": platform });
        if let Some(u) = user_id {
            body["user_id"] = json!(u);
        }
        let req = http
            .post(self.url("/enrollment-profiles"))
            .bearer_auth(&self.token)
            .json(&body);
        download(req, "enrollment profile", 201).await
    }

    /// POSTs JSON and returns the JSON answer (201 or 200 expected).
    pub async fn post_json(
        &self,
        http: &reqwest::Client,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, SimError> {
        let res = http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| SimError::transport(path, e))?;
        json_answer(path, res).await
    }

    /// GETs JSON.
    pub async fn get_json(
        &self,
        http: &reqwest::Client,
        path: &str,
    ) -> Result<serde_json::Value, SimError> {
        let res = http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| SimError::transport(path, e))?;
        json_answer(path, res).await
    }
}

async fn json_answer(step: &str, res: reqwest::Response) -> Result<serde_json::Value, SimError> {
    let status = res.status().as_u16();
    let text = res.text().await.map_err(|e| SimError::transport(step, e))?;
    if !(200..300).contains(&status) {
        return Err(SimError::Http {
            step: step.to_owned(),
            status,
            body: text.chars().take(300).collect(),
        });
    }
    serde_json::from_str(&text).map_err(|e| SimError::Local(format!("{step}: {e}")))
}

/// Fetches a profile from any URL (GET), with a bearer token when given.
pub async fn fetch_profile(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> Result<Downloaded, SimError> {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    download(req, "profile download", 200).await
}

async fn download(
    req: reqwest::RequestBuilder,
    step: &str,
    expected: u16,
) -> Result<Downloaded, SimError> {
    let res = req.send().await.map_err(|e| SimError::transport(step, e))?;
    let status = res.status().as_u16();
    let registration = res
        .headers()
        .get("x-registration")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res
        .bytes()
        .await
        .map_err(|e| SimError::transport(step, e))?;
    if status != expected && status != 200 {
        return Err(SimError::Http {
            step: step.to_owned(),
            status,
            body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        });
    }
    Ok(Downloaded {
        registration,
        signed: body.to_vec(),
    })
}
