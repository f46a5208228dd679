//! How the device certificate arrives: the TLS listener's `PeerCertificate`
//! and a trusted proxy's RFC 9440 `Client-Cert`, driven through the real
//! router in-process on the test server's own database.

use crate::api::fixture;
use crate::apple_device::text;
use crate::apple_device::{Dev, enrolled};
use crate::apple_lifecycle::body;
use crate::ensure;
use crate::support::{Server, TestResult};
use axum::body::Body;
use axum::http::Request;
use mdm_http::tls::PeerCertificate;
use std::sync::Arc;
use tower::ServiceExt;

/// The router on the server's database, with or without trusting `Client-Cert`.
async fn router(s: &Server, trust: bool) -> Result<axum::Router, String> {
    let store = mdm_store::SqlStore::connect(&s.database_url, 2)
        .await
        .map_err(|e| e.to_string())?;
    let secret =
        std::fs::read_to_string(s.data_dir.join("secret.key")).map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    let bytes: Vec<u8> = (0..64)
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(secret.trim().get(i..i + 2)?, 16).ok())
        .collect();
    key.copy_from_slice(bytes.get(..32).ok_or("secret")?);
    let vault = mdm_pki::Vault::from_secret(&key).map_err(|e| e.to_string())?;
    let core = mdm_core::Core::new(
        Arc::new(store),
        Arc::new(mdm_core::ports::SystemClock),
        Arc::new(mdm_core::ports::SystemEntropy),
        vault,
        mdm_core::core::CoreSettings {
            public_url: s.base.clone(),
            pki: Default::default(),
            apple: Default::default(),
        },
    );
    let limits = mdm_http::HttpLimits {
        trust_client_cert_header: trust,
        ..mdm_http::HttpLimits::default()
    };
    Ok(mdm_http::router(core, None, &limits))
}

async fn idle(
    app: &axum::Router,
    dev: &Dev,
    udid: &str,
    peer: Option<&Dev>,
    header: Option<&Dev>,
) -> Result<u16, String> {
    let b = body(&[("Status", text("Idle")), ("UDID", text(udid))]);
    let mut req = Request::put(format!("/mdm/{}/connect", dev.slug));
    if let Some(h) = header {
        let der = mdm_pki::cert_to_der(&h.cert).map_err(|e| e.to_string())?;
        req = req.header(
            "Client-Cert",
            format!(":{}:", crate::scep::base64_encode(&der)),
        );
    }
    let mut req = req.body(Body::from(b)).map_err(|e| e.to_string())?;
    if let Some(p) = peer {
        let der = mdm_pki::cert_to_der(&p.cert).map_err(|e| e.to_string())?;
        req.extensions_mut().insert(PeerCertificate(Arc::new(der)));
    }
    let res = app.clone().oneshot(req).await.map_err(|e| e.to_string())?;
    Ok(res.status().as_u16())
}

pub async fn apple_tls_and_forwarded_certificates(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let (a, _) = enrolled(&s, &f, "ios", None).await?;
    let (b, _) = enrolled(&s, &f, "ios", None).await?;
    let trusting = router(&s, true).await?;
    let plain = router(&s, false).await?;
    // The TLS peer certificate identifies the device without any signature.
    ensure!(
        idle(&plain, &a, &a.udid, Some(&a), None).await? == 200,
        "TLS peer certificate"
    );
    ensure!(
        idle(&plain, &a, &a.udid, Some(&b), None).await? == 409,
        "TLS certificate of another device"
    );
    // Client-Cert only when a trusted proxy sets it.
    ensure!(
        idle(&trusting, &a, &a.udid, None, Some(&a)).await? == 200,
        "trusted Client-Cert"
    );
    ensure!(
        idle(&trusting, &a, &a.udid, None, Some(&b)).await? == 409,
        "forwarded certificate of another device"
    );
    ensure!(
        idle(&plain, &a, &a.udid, None, Some(&a)).await? == 412,
        "untrusted Client-Cert is ignored"
    );
    Ok(())
}
