//! A small JSON client for the REST API.

use serde_json::Value;

pub struct Api {
    http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The error code of a JSON error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Api {
    pub fn new(base: &str, token: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_string(),
            token: token.map(str::to_string),
        }
    }

    pub fn with_token(&self, token: &str) -> Self {
        Self::new(&self.base, Some(token))
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Reply, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        reply(req).await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Reply, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        reply(req).await
    }

    pub async fn get(&self, path: &str) -> Result<Reply, String> {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Reply, String> {
        self.send("POST", path, Some(body)).await
    }
}

async fn reply(req: reqwest::RequestBuilder) -> Result<Reply, String> {
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let text = res.text().await.map_err(|e| e.to_string())?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Reply { status, body, text })
}

/// Fails unless the reply has `status`; returns its body.
pub fn expect(r: Reply, status: u16, what: &str) -> Result<Value, String> {
    if r.status == status {
        Ok(r.body)
    } else {
        Err(format!(
            "{what}: expected {status}, got {} {}",
            r.status, r.text
        ))
    }
}

/// How many `items` a page answer holds (0 when it holds none or is no page).
pub fn count(page: &Value) -> usize {
    page["items"].as_array().map_or(0, Vec::len)
}

/// POSTs a body the server refuses before reading all of it, on a
/// connection of its own: the server answers, reads and discards the rest of
/// the body so that the answer arrives (`mdm_server::linger`), then closes
/// the connection, and a pooled one would be reused by the next request.
pub async fn post_refused_body(
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Reply, String> {
    let once = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = once.post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req).await
}
