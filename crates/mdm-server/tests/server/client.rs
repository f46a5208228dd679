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

/// POSTs a body the server refuses before reading all of it, and reads the
/// answer anyway. The server answers, then closes a connection that still
/// holds unread bytes, which resets it; an HTTP client whose write fails
/// reports that and never reads the answer already in its socket. Here the
/// body is written beside the read, and write errors are ignored.
pub async fn post_refused_body(
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Reply, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").ok_or("not an http:// URL")?;
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| format!("connect {host}: {e}"))?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        if wr.write_all(head.as_bytes()).await.is_ok() {
            let _ = wr.write_all(&body).await;
        }
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                // The reset that follows the answer.
                Err(_) if !answer.is_empty() => return Ok(()),
                Err(e) => return Err(format!("reading the answer: {e}")),
            }
        }
    })
    .await;
    writer.abort();
    read.map_err(|_| "no answer in 30 s".to_string())??;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or(format!("no header end: {text}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(format!("no status line: {head}"))?;
    Ok(Reply {
        status,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
        text: body.to_string(),
    })
}
