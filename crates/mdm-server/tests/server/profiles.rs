//! The Apple management profile: signed by the tenant's profile signer, which
//! the CA certifies (openssl verifies it against the CA); its one-time
//! challenge enrols once, and a profile installed after its validity is
//! refused at SCEP with the registration named in the audit trail.

use crate::api::fixture;
use crate::client::{count, expect};
use crate::ensure;
use crate::support::{Server, TestResult};
use mdm_apple::plist::{Dictionary, Value};
use mdm_pki::CertificateExt;
use mdm_pki::x509_cert::Certificate;
use serde_json::json;
use std::process::Command;
use std::sync::Arc;

struct Profile {
    registration: String,
    xml: Vec<u8>,
}

async fn download(s: &Server, slug: &str, token: &str, platform: &str) -> Result<Profile, String> {
    let res = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/tenants/{slug}/enrollment-profiles",
            s.base
        ))
        .bearer_auth(token)
        .json(&json!({ "platform": platform }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        res.status().as_u16() == 201,
        "profile: HTTP {}",
        res.status()
    );
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    ensure!(
        ct == "application/x-apple-aspen-config",
        "content type {ct}"
    );
    let registration = res
        .headers()
        .get("x-registration")
        .and_then(|v| v.to_str().ok())
        .ok_or("no X-Registration")?
        .to_string();
    let signed = res.bytes().await.map_err(|e| e.to_string())?.to_vec();
    Ok(Profile {
        registration,
        xml: signed,
    })
}

fn payload<'a>(root: &'a Dictionary, kind: &str) -> Result<&'a Dictionary, String> {
    root.get("PayloadContent")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .filter_map(Value::as_dictionary)
                .find(|p| p.get("PayloadType").and_then(Value::as_string) == Some(kind))
        })
        .ok_or(format!("no {kind} payload"))
}

pub async fn signed_profile_enrolls_once_and_expires(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let token = f.api.token.clone().unwrap_or_default();
    let ca = expect(
        f.api.get(&format!("/api/v1/tenants/{}/ca", f.slug)).await?,
        200,
        "ca",
    )?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca["certificate_pem"].as_str().ok_or("pem")?)
        .map_err(|e| e.to_string())?;

    let mut p = download(&s, &f.slug, &token, "macos").await?;
    // openssl accepts the signature against the tenant chain and returns the plist.
    let signed = dir.path().join("profile.der");
    let out = dir.path().join("profile.xml");
    std::fs::write(&signed, &p.xml).map_err(|e| e.to_string())?;
    let verify = Command::new("openssl")
        .args(["cms", "-verify", "-inform", "DER", "-purpose", "any", "-in"])
        .arg(&signed)
        .arg("-CAfile")
        .arg(&ca_pem)
        .arg("-out")
        .arg(&out)
        .output()
        .map_err(|e| e.to_string())?;
    ensure!(
        verify.status.success(),
        "openssl cms -verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    p.xml = std::fs::read(&out).map_err(|e| e.to_string())?;
    let root: Dictionary = mdm_apple::plist::from_bytes(&p.xml).map_err(|e| e.to_string())?;
    let scep = payload(&root, "com.apple.security.scep")?
        .get("PayloadContent")
        .and_then(Value::as_dictionary)
        .ok_or("scep content")?;
    let mdm = payload(&root, "com.apple.mdm")?;
    ensure!(
        scep.get("URL").and_then(Value::as_string) == ca["scep_url"].as_str(),
        "SCEP URL"
    );
    ensure!(
        scep.get("Keysize").and_then(Value::as_unsigned_integer) == Some(2048),
        "Keysize 2048"
    );
    ensure!(
        mdm.get("AccessRights").and_then(Value::as_unsigned_integer) == Some(8191),
        "AccessRights"
    );
    ensure!(
        mdm.get("SignMessage").and_then(Value::as_boolean) == Some(true),
        "SignMessage"
    );
    let caps = mdm
        .get("ServerCapabilities")
        .and_then(Value::as_array)
        .ok_or("macOS capabilities")?;
    ensure!(
        caps.iter()
            .any(|c| c.as_string() == Some("com.apple.mdm.per-user-connections")),
        "per-user connections on macOS"
    );
    let challenge = scep
        .get("Challenge")
        .and_then(Value::as_string)
        .ok_or("challenge")?
        .to_string();

    // Its challenge enrols once, and the certificate belongs to the registration.
    let serial = crate::scep::enroll_with(&s, &f, &challenge, "profile-device").await?;
    let certs = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/certificates?registration={}",
                f.slug, p.registration
            ))
            .await?,
        200,
        "certs",
    )?;
    ensure!(
        certs["items"][0]["serial"] == serial.as_str(),
        "certificate of the registration: {certs}"
    );

    // A second profile, installed after its validity: FAILURE at SCEP, and the audit names its registration.
    let late = download(&s, &f.slug, &token, "ios").await?;
    let late_xml = Command::new("openssl")
        .args(["cms", "-verify", "-inform", "DER", "-noverify"])
        .arg("-in")
        .arg({
            let p = dir.path().join("late.der");
            std::fs::write(&p, &late.xml).map_err(|e| e.to_string())?;
            p
        })
        .output()
        .map_err(|e| e.to_string())?
        .stdout;
    let root: Dictionary = mdm_apple::plist::from_bytes(&late_xml).map_err(|e| e.to_string())?;
    let late_challenge = payload(&root, "com.apple.security.scep")?
        .get("PayloadContent")
        .and_then(Value::as_dictionary)
        .and_then(|d| d.get("Challenge"))
        .and_then(Value::as_string)
        .ok_or("late challenge")?
        .to_string();
    crate::scep::expire_challenges(&s, &late.registration).await?;
    let refused = crate::scep::enroll_with(&s, &f, &late_challenge, "late-device").await;
    ensure!(
        refused.is_err(),
        "a profile installed too late must be refused"
    );
    let audit = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?action=scep.refused",
                f.slug
            ))
            .await?,
        200,
        "audit",
    )?;
    let entry = audit["items"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["details"]["registration"] == late.registration.as_str())
        })
        .ok_or("refusal names the registration")?;
    ensure!(
        entry["details"]["reason"] == "profile_expired",
        "reason: {entry}"
    );
    let issued = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?action=profile.issued",
                f.slug
            ))
            .await?,
        200,
        "issued",
    )?;
    ensure!(count(&issued) == 2, "profiles audited: {issued}");
    Ok(())
}

/// The certificate that signed a served profile, after `mdm_pki` verified it.
fn profile_signer(signed: &[u8]) -> Result<Certificate, String> {
    mdm_pki::verify_signed_data(signed, None, &[])
        .map(|v| v.signer)
        .map_err(|e| format!("profile signature: {e}"))
}

/// Runs `openssl cms -verify` against the tenant CA with openssl's default
/// (S/MIME signing) purpose checks.
fn openssl_verifies(dir: &std::path::Path, signed: &[u8], ca_pem: &std::path::Path) -> TestResult {
    let file = dir.join("signed.der");
    std::fs::write(&file, signed).map_err(|e| e.to_string())?;
    let verify = Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-out",
            "/dev/null",
            "-in",
        ])
        .arg(&file)
        .arg("-CAfile")
        .arg(ca_pem)
        .output()
        .map_err(|e| e.to_string())?;
    ensure!(
        verify.status.success(),
        "openssl cms -verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    Ok(())
}

/// Profiles are signed by the tenant's ECDSA P-256 profile signer, which the
/// CA certifies (digitalSignature, no EKU, so openssl's S/MIME checks pass
/// without `-purpose any`): one signer for many profiles, made, recorded and
/// audited once; once revoked, the next profile brings a new one.
pub async fn profiles_are_signed_by_the_tenant_signer(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let token = f.api.token.clone().unwrap_or_default();
    let ca = expect(
        f.api.get(&format!("/api/v1/tenants/{}/ca", f.slug)).await?,
        200,
        "ca",
    )?;
    let ca_pem_text = ca["certificate_pem"].as_str().ok_or("pem")?;
    let ca_cert = mdm_pki::cert_from_pem(ca_pem_text).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca_pem_text).map_err(|e| e.to_string())?;

    let first = download(&s, &f.slug, &token, "ios").await?;
    let second = download(&s, &f.slug, &token, "macos").await?;
    let signer = profile_signer(&first.xml)?;
    ensure!(
        profile_signer(&second.xml)? == signer,
        "two profiles, two signers"
    );
    ensure!(signer != ca_cert, "the CA signed the profile itself");
    mdm_pki::verify_issued_by(&signer, &ca_cert).map_err(|e| format!("signer chain: {e}"))?;
    let spki = signer.tbs_certificate().subject_public_key_info();
    ensure!(
        spki.algorithm.oid == mdm_pki::const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
        "signer key {}",
        spki.algorithm.oid
    );
    ensure!(!signer.is_ca(), "the signer is no CA");
    openssl_verifies(dir.path(), &first.xml, &ca_pem)?;

    let serial = signer.serial_hex();
    let shown = |ca: serde_json::Value| ca["profile_signer"]["serial"].as_str().map(String::from);
    let ca_path = format!("/api/v1/tenants/{}/ca", f.slug);
    let now_ca = expect(f.api.get(&ca_path).await?, 200, "ca")?;
    ensure!(
        shown(now_ca.clone()).as_deref() == Some(serial.as_str()),
        "the CA shows its profile signer: {now_ca}"
    );
    let certs = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/certificates", f.slug))
            .await?,
        200,
        "certificates",
    )?;
    let listed = certs["items"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["serial"] == serial.as_str()))
        .ok_or(format!("signer {serial} not recorded: {certs}"))?;
    ensure!(
        listed["registration"].is_null() && listed["device_id"].is_null(),
        "the signer belongs to no registration: {listed}"
    );
    let signers_audited = |audit: &serde_json::Value| {
        audit["items"].as_array().map_or(0, |a| {
            a.iter()
                .filter(|e| e["details"]["purpose"] == "profile_signing")
                .count()
        })
    };
    let audit_path = format!("/api/v1/tenants/{}/audit?action=certificate.issued", f.slug);
    let issued = expect(f.api.get(&audit_path).await?, 200, "audit")?;
    ensure!(
        signers_audited(&issued) == 1,
        "one signer audited: {issued}"
    );

    // Revoked, it signs no more: the next profile has a new signer.
    expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/certificates/{serial}/revoke", f.slug),
                json!({}),
            )
            .await?,
        200,
        "revoke the signer",
    )?;
    let third = download(&s, &f.slug, &token, "ios").await?;
    let replaced = profile_signer(&third.xml)?;
    ensure!(
        replaced.serial_hex() != serial,
        "the revoked signer signed again"
    );
    let now_ca = expect(f.api.get(&ca_path).await?, 200, "ca")?;
    ensure!(
        shown(now_ca.clone()) == Some(replaced.serial_hex()),
        "the CA shows the new signer: {now_ca}"
    );
    mdm_pki::verify_issued_by(&replaced, &ca_cert).map_err(|e| format!("new signer: {e}"))?;
    openssl_verifies(dir.path(), &third.xml, &ca_pem)?;
    let issued = expect(f.api.get(&audit_path).await?, 200, "audit")?;
    ensure!(
        signers_audited(&issued) == 2,
        "the new signer audited: {issued}"
    );
    Ok(())
}

/// `apple_profile_signer = "ca"`: the tenant CA signs profiles itself.
pub async fn ca_signs_profiles_when_configured(dir: std::path::PathBuf) -> TestResult {
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let env = [("MDM_APPLE_PROFILE_SIGNER".to_string(), "ca".to_string())];
    let server = Server::start_with_env("ca-signer", &dir, None, &env)?;
    let api = crate::client::Api::new(&server.base, Some(&server.operator_token));
    let ca = expect(api.get("/api/v1/tenants/default/ca").await?, 200, "ca")?;
    let ca_cert = mdm_pki::cert_from_pem(ca["certificate_pem"].as_str().ok_or("pem")?)
        .map_err(|e| e.to_string())?;
    let profile = download(&server, "default", &server.operator_token, "ios").await?;
    let signer = profile_signer(&profile.xml)?;
    let after = expect(api.get("/api/v1/tenants/default/ca").await?, 200, "ca")?;
    server.stop();
    ensure!(signer == ca_cert, "signed by {}", signer.subject_string());
    ensure!(
        after["profile_signer"].is_null(),
        "no profile signer with the CA signing: {after}"
    );
    Ok(())
}
