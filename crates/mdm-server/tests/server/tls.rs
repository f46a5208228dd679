//! The HTTPS listener: a client certificate is requested, not required,
//! any certificate is accepted at the TLS layer and its leaf reaches
//! handlers as `PeerCertificate`; `mdm serve` with a self-signed
//! certificate serves HTTPS and puts that anchor into management profiles.

use crate::ensure;
use crate::fake_tls::{TestPki, err};
use crate::support::{TestResult, mdm_bin};
use axum::Extension;
use mdm_apple::plist::{Dictionary, Value};
use mdm_http::tls::PeerCertificate;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `mdm serve` with extra `MDM_*` variables; killed when dropped.
pub struct Spawned {
    pub base: String,
    pub data_dir: std::path::PathBuf,
    child: Child,
}

impl Spawned {
    /// The operator API token the first start wrote.
    pub fn operator_token(&self) -> Result<String, String> {
        let creds =
            std::fs::read_to_string(self.data_dir.join("initial-credentials.txt")).map_err(err)?;
        creds
            .lines()
            .find_map(|l| l.strip_prefix("operator_api_token = \""))
            .map(|t| t.trim_end_matches('"').to_string())
            .ok_or_else(|| "no operator token in initial-credentials.txt".into())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mdm serve` on a fresh data directory; `scheme_prefix` is how the
/// banner's URL starts (`http://127.0.0.1:` or `https://127.0.0.1:`).
pub fn spawn_serve(
    data_dir: &Path,
    env: &[(String, String)],
    scheme_prefix: &str,
) -> Result<Spawned, String> {
    let mut child = Command::new(mdm_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("MDM_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(err)?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = match lines.next() {
        Some(Ok(l)) => l,
        _ => {
            let _ = child.kill();
            return Err("mdm serve exited before listening".into());
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with(scheme_prefix))
        .ok_or(format!("unexpected banner: {first}"))?
        .to_string();
    Ok(Spawned {
        base,
        data_dir: data_dir.to_path_buf(),
        child,
    })
}

fn sha256_hex(der: &[u8]) -> String {
    hex::encode(mdm_pki::fingerprint_sha256(der))
}

/// The listener of `mdm serve` in process, with a tiny router that shows
/// what a handler sees.
pub async fn tls_listener_hands_the_peer_certificate_to_handlers() -> TestResult {
    let pki = TestPki::new("Listener test CA")?;
    let leaf = pki.server_cert()?;
    let chain = format!("{}{}", leaf.cert_pem, pki.ca_pem());
    let tls = mdm_server::tls::ServerTls::from_pem(chain.as_bytes(), leaf.key_pem.as_bytes())
        .map_err(|e| format!("{e:#}"))?;
    ensure!(
        tls.anchor_der.as_deref() == Some(pki.ca_der().as_slice()),
        "the chain's root is the anchor"
    );
    let app = axum::Router::new().route(
        "/whoami",
        axum::routing::get(|cert: Option<Extension<PeerCertificate>>| async move {
            match cert {
                Some(Extension(PeerCertificate(der))) => sha256_hex(&der),
                None => "none".to_string(),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        mdm_server::tls::serve(listener, app, &tls, async {
            let _ = stopped.await;
        })
        .await
    });
    let url = format!("https://{addr}/whoami");
    let client = |identity: Option<reqwest::Identity>, h2: bool| {
        let roots = reqwest::Certificate::from_pem_bundle(pki.ca_pem().as_bytes()).map_err(err)?;
        let mut b = reqwest::Client::builder().tls_certs_only(roots);
        if let Some(i) = identity {
            b = b.identity(i);
        }
        if h2 {
            b = b.http2_prior_knowledge();
        }
        b.build().map_err(err)
    };
    let get = |c: reqwest::Client| {
        let url = url.clone();
        async move {
            let r = c.get(&url).send().await.map_err(err)?;
            let version = r.version();
            Ok::<_, String>((version, r.text().await.map_err(err)?))
        }
    };

    // No client certificate: served, and the handler sees none.
    let (_, body) = get(client(None, false)?).await?;
    ensure!(body == "none", "without a certificate: {body}");

    // A certificate from a CA the listener knows nothing about (tenant CAs
    // are checked later, by the domain): accepted, leaf handed over, on HTTP/2.
    let device = TestPki::new("Some tenant CA")?.client_cert("device-udid", None)?;
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", device.cert_pem, device.key_pem).as_bytes())
            .map_err(err)?;
    let (version, body) = get(client(Some(identity.clone()), true)?).await?;
    ensure!(
        version == reqwest::Version::HTTP_2,
        "HTTP/2 by ALPN: {version:?}"
    );
    ensure!(
        body == sha256_hex(&device.der),
        "the handler sees the client's leaf: {body}"
    );
    let (version, body) = get(client(Some(identity), false)?).await?;
    ensure!(
        body == sha256_hex(&device.der),
        "on {version:?} too: {body}"
    );

    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::get(format!("http://{addr}/whoami")).await;
    ensure!(
        !plain.is_ok_and(|r| r.status().is_success()),
        "no plain HTTP on the TLS port"
    );

    let _ = stop.send(());
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(15), server).await;
    ensure!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "graceful stop: {stopped:?}"
    );
    Ok(())
}

/// `mdm serve` with a self-signed certificate: HTTPS, and profiles carry the anchor.
pub async fn serve_https_profiles_carry_the_self_signed_anchor(dir: &Path) -> TestResult {
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).map_err(err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mdm.test");
    let cert = params.self_signed(&key).map_err(err)?;
    std::fs::create_dir_all(dir).map_err(err)?;
    let (cert_file, key_file) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert_file, cert.pem()).map_err(err)?;
    std::fs::write(&key_file, key.serialize_pem()).map_err(err)?;
    let env = vec![
        (
            "MDM_TLS_CERT_FILE".to_string(),
            cert_file.display().to_string(),
        ),
        (
            "MDM_TLS_KEY_FILE".to_string(),
            key_file.display().to_string(),
        ),
    ];
    let server = spawn_serve(&dir.join("data"), &env, "https://127.0.0.1:")?;
    let roots = reqwest::Certificate::from_pem_bundle(cert.pem().as_bytes()).map_err(err)?;
    let http = reqwest::Client::builder()
        .tls_certs_only(roots)
        .build()
        .map_err(err)?;
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .map_err(err)?;
    ensure!(
        health.status().is_success(),
        "healthz over HTTPS: {}",
        health.status()
    );

    let token = server.operator_token()?;
    let res = http
        .post(format!(
            "{}/api/v1/tenants/default/enrollment-profiles",
            server.base
        ))
        .bearer_auth(&token)
        .json(&serde_json::json!({"platform": "ios"}))
        .send()
        .await
        .map_err(err)?;
    ensure!(res.status().as_u16() == 201, "profile: {}", res.status());
    let signed = res.bytes().await.map_err(err)?;
    let (der_file, xml_file) = (dir.join("profile.der"), dir.join("profile.xml"));
    std::fs::write(&der_file, &signed).map_err(err)?;
    let out = Command::new("openssl")
        .args(["cms", "-verify", "-noverify", "-inform", "DER", "-in"])
        .arg(&der_file)
        .arg("-out")
        .arg(&xml_file)
        .output()
        .map_err(err)?;
    ensure!(
        out.status.success(),
        "openssl cms: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root: Dictionary =
        mdm_apple::plist::from_bytes(&std::fs::read(&xml_file).map_err(err)?).map_err(err)?;
    let payloads: Vec<&Dictionary> = root
        .get("PayloadContent")
        .and_then(Value::as_array)
        .ok_or("payloads")?
        .iter()
        .filter_map(Value::as_dictionary)
        .collect();
    let anchors: Vec<&[u8]> = payloads
        .iter()
        .filter(|p| {
            p.get("PayloadType").and_then(Value::as_string) == Some("com.apple.security.root")
        })
        .filter_map(|p| p.get("PayloadContent").and_then(Value::as_data))
        .collect();
    ensure!(
        anchors.contains(&cert.der().as_ref()),
        "the server's self-signed certificate is a certificate payload ({} roots)",
        anchors.len()
    );
    let mdm = payloads
        .iter()
        .find(|p| p.get("PayloadType").and_then(Value::as_string) == Some("com.apple.mdm"))
        .ok_or("mdm payload")?;
    let server_url = mdm
        .get("ServerURL")
        .and_then(Value::as_string)
        .unwrap_or_default();
    ensure!(
        server_url.starts_with("https://127.0.0.1:"),
        "ServerURL is https: {server_url}"
    );
    Ok(())
}
