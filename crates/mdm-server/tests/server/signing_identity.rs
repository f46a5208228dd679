//! A profile-signing identity the administrator uploads (ADR 0017): made
//! here by `openssl` as a public CA would issue it (root → issuing CA →
//! signer), uploaded as PEM and as PKCS#12 (binary and as openssl's text), refused with a reason when it
//! could not sign, then signing profiles that `openssl cms -verify` accepts
//! against the root alone and that the simulated iPhone, trusting that root
//! as its system store does, enrols with. Removing it brings the tenant's own
//! signer back.

use crate::api::fixture;
use crate::client::expect;
use crate::ensure;
use crate::sim_lifecycle::admin;
use crate::support::{Server, TestResult};
use base64::Engine as _;
use mdm_pki::CertificateExt;
use mdm_sim::mdm_apple::CommandStatus;
use mdm_sim::{Channel, Device, DeviceFacts, DeviceState, Platform};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

pub(crate) fn openssl(dir: &Path, args: &[&str]) -> TestResult {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    ensure!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

pub(crate) fn read(dir: &Path, name: &str) -> Result<String, String> {
    std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{name}: {e}"))
}

/// Writes `name.key` (made by `newkey`) and `name.pem` issued by `ca` with
/// the extensions `ext`.
fn issue(
    dir: &Path,
    name: &str,
    newkey: &[&str],
    subject: &str,
    ca: &str,
    ext: &str,
) -> TestResult {
    let (key, csr, pem, extfile) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&extfile), ext).map_err(|e| e.to_string())?;
    let mut req = vec![
        "req", "-new", "-nodes", "-subj", subject, "-keyout", &key, "-out", &csr,
    ];
    req.extend_from_slice(newkey);
    openssl(dir, &req)?;
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "20",
            "-sha256",
            "-extfile",
            &extfile,
            "-out",
            &pem,
        ],
    )
}

/// A root, an issuing CA under it, and under that an ECDSA signer, an RSA
/// signer, a signer whose key usage forbids signatures and a 1024-bit one.
pub(crate) fn public_ca(dir: &Path) -> TestResult {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-subj",
            "/CN=Test Public Root",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )?;
    let ca_ext = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
    issue(
        dir,
        "issuing",
        &["-newkey", "rsa:2048"],
        "/CN=Test Issuing CA",
        "root",
        ca_ext,
    )?;
    let signer_ext = "keyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n";
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    issue(
        dir,
        "ec",
        &ec,
        "/O=Example Org/CN=Example Org Profile Signing",
        "issuing",
        signer_ext,
    )?;
    let p384 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"];
    issue(
        dir,
        "ec384",
        &p384,
        "/O=Example Org/CN=Example Org P-384 Signing",
        "issuing",
        signer_ext,
    )?;
    issue(
        dir,
        "rsa",
        &["-newkey", "rsa:2048"],
        "/O=Example Org/CN=Example Org RSA Signing",
        "issuing",
        signer_ext,
    )?;
    issue(
        dir,
        "encipher",
        &["-newkey", "rsa:2048"],
        "/CN=Encipher Only",
        "issuing",
        "keyUsage=critical,keyEncipherment\n",
    )?;
    issue(
        dir,
        "small",
        &["-newkey", "rsa:1024"],
        "/CN=Small Key",
        "issuing",
        signer_ext,
    )?;
    Ok(())
}

fn cms_verifies(dir: &Path, signed: &[u8], ca_file: &str) -> TestResult {
    std::fs::write(dir.join("profile.der"), signed).map_err(|e| e.to_string())?;
    openssl(
        dir,
        &[
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            "profile.der",
            "-CAfile",
            ca_file,
            "-out",
            "/dev/null",
        ],
    )
}

fn signer_of(signed: &[u8]) -> Result<mdm_pki::x509_cert::Certificate, String> {
    mdm_pki::verify_signed_data(signed, None, &[])
        .map(|v| v.signer)
        .map_err(|e| format!("profile signature: {e}"))
}

pub async fn uploaded_identity_signs_profiles(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    public_ca(d)?;
    let path = format!("/api/v1/tenants/{}/ca/signing-identity", f.slug);
    let put = |body: Value| f.api.send("PUT", &path, Some(body));
    let (root, issuing, ec, ec_key) = (
        read(d, "root.pem")?,
        read(d, "issuing.pem")?,
        read(d, "ec.pem")?,
        read(d, "ec.key")?,
    );

    // Refusals: each a 422 naming the field and why, nothing stored.
    let refusals = [
        (
            json!({ "certificate_pem": ec, "private_key_pem": read(d, "rsa.key")? }),
            "private_key_pem",
            "belongs to none",
        ),
        (
            json!({ "certificate_pem": format!("{ec}{}", read(d, "rsa.pem")?), "private_key_pem": ec_key }),
            "certificate_pem",
            "is not in the chain",
        ),
        (
            json!({ "certificate_pem": read(d, "encipher.pem")?, "private_key_pem": read(d, "encipher.key")? }),
            "certificate_pem",
            "does not allow digital signatures",
        ),
        (
            json!({ "certificate_pem": read(d, "small.pem")?, "private_key_pem": read(d, "small.key")? }),
            "private_key_pem",
            "too small",
        ),
        (
            json!({ "certificate_pem": "hello", "private_key_pem": ec_key }),
            "certificate_pem",
            "no -----BEGIN CERTIFICATE",
        ),
    ];
    for (body, field, why) in refusals {
        let r = put(body).await?;
        ensure!(r.status == 422, "expected 422, got {} {}", r.status, r.text);
        ensure!(
            r.text.contains(field) && r.text.contains(why),
            "refusal should name {field} and {why:?}: {}",
            r.text
        );
    }
    openssl(
        d,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "rsa.key",
            "-in",
            "rsa.pem",
            "-certfile",
            "issuing.pem",
            "-passout",
            "pass:s3cret",
            "-out",
            "rsa.p12",
        ],
    )?;
    let p12 = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(d.join("rsa.p12")).map_err(|e| e.to_string())?);
    let r = put(json!({ "pkcs12_base64": p12, "password": "wrong" })).await?;
    ensure!(
        r.status == 422
            && r.text.contains("pkcs12_base64")
            && r.text.contains("does not open with this password"),
        "wrong password: {} {}",
        r.status,
        r.text
    );
    let none = f.api.get(&path).await?;
    ensure!(
        none.status == 404,
        "nothing stored: {} {}",
        none.status,
        none.text
    );

    // PEM, the whole chain root first: the signer is found by its key, the
    // issuing CA carried, the root left out.
    let body =
        json!({ "certificate_pem": format!("{root}{issuing}{ec}"), "private_key_pem": ec_key });
    let info = expect(put(body).await?, 200, "upload PEM")?;
    let ec_cert = mdm_pki::cert_from_pem(&ec).map_err(|e| e.to_string())?;
    let issuing_subject = mdm_pki::cert_from_pem(&issuing)
        .map_err(|e| e.to_string())?
        .subject_string();
    ensure!(
        info["subject"] == ec_cert.subject_string().as_str()
            && info["key"] == "ECDSA P-256"
            && info["chain"] == json!([issuing_subject])
            && info["in_use"] == true,
        "uploaded: {info}"
    );
    // The operator's gauge carries its expiry (the server reads every 10 s).
    let not_after = ec_cert.not_after().map_err(|e| e.to_string())?;
    let wanted = format!(
        "mdm_profile_signing_identity_expiry_seconds{{tenant=\"{}\"}} {}",
        f.slug,
        not_after.unix_timestamp()
    );
    let mut gauge = None;
    for _ in 0..60 {
        let m = f.api.get("/metrics").await?;
        gauge = m
            .text
            .lines()
            .find(|l| l.starts_with(&wanted))
            .map(str::to_owned);
        if gauge.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    ensure!(gauge.is_some(), "no gauge line {wanted:?} within 15 s");
    let shown = f.api.get(&path).await?;
    ensure!(
        shown.status == 200 && !shown.text.contains("PRIVATE KEY"),
        "shown without its key: {}",
        shown.text
    );
    let ca = expect(
        f.api.get(&format!("/api/v1/tenants/{}/ca", f.slug)).await?,
        200,
        "ca",
    )?;
    ensure!(ca["profiles_signed_by"] == "signing_identity", "ca: {ca}");

    let http = reqwest::Client::new();
    let profile = admin(&s, &f)
        .issue_profile(&http, Platform::Iphone, None)
        .await
        .map_err(|e| e.to_string())?;
    let signer = signer_of(&profile.signed)?;
    ensure!(signer == ec_cert, "signed by {}", signer.subject_string());
    cms_verifies(d, &profile.signed, "root.pem")?;

    // A device that trusts the root (its system store) enrols as usual.
    let root_cert = mdm_pki::cert_from_pem(&root).map_err(|e| e.to_string())?;
    let mut phone =
        Device::new(DeviceFacts::iphone(71), http.clone()).with_system_roots(vec![root_cert]);
    phone
        .enroll(&profile.signed)
        .await
        .map_err(|e| e.to_string())?;
    let handled = phone
        .poll(Channel::Device)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        phone.state() == DeviceState::Enrolled
            && handled.iter().any(|h| h.request_type == "DeviceInformation"
                && h.status == CommandStatus::Acknowledged),
        "enrolled with the uploaded signer: {handled:?}"
    );

    // A PKCS#12 file (openssl's default: PBES2, AES-256, SHA-256 MAC)
    // replaces it; so does the text `openssl pkcs12 -nodes` prints of one
    // (bag attributes, certificates and key in one), and the legacy 3DES
    // form Keychain Access exports.
    let info = expect(
        put(json!({ "pkcs12_base64": p12, "password": "s3cret" })).await?,
        200,
        "upload PKCS#12",
    )?;
    ensure!(
        info["key"] == "RSA 2048" && info["chain"] == json!([issuing_subject]),
        "PKCS#12: {info}"
    );
    openssl(
        d,
        &[
            "pkcs12",
            "-in",
            "rsa.p12",
            "-passin",
            "pass:s3cret",
            "-nodes",
            "-out",
            "rsa-bundle.pem",
        ],
    )?;
    let bundle = read(d, "rsa-bundle.pem")?;
    ensure!(
        bundle.contains("Bag Attributes"),
        "openssl's PKCS#12 text: {bundle}"
    );
    let info = expect(
        put(json!({ "certificate_pem": bundle })).await?,
        200,
        "upload the PKCS#12 text",
    )?;
    ensure!(info["key"] == "RSA 2048", "PKCS#12 text: {info}");
    let rsa_profile = admin(&s, &f)
        .issue_profile(&http, Platform::Mac, None)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        signer_of(&rsa_profile.signed)?
            == mdm_pki::cert_from_pem(&read(d, "rsa.pem")?).map_err(|e| e.to_string())?,
        "the RSA identity signs"
    );
    cms_verifies(d, &rsa_profile.signed, "root.pem")?;

    openssl(
        d,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "ec.key",
            "-in",
            "ec.pem",
            "-certfile",
            "issuing.pem",
            "-keypbe",
            "PBE-SHA1-3DES",
            "-certpbe",
            "PBE-SHA1-3DES",
            "-macalg",
            "sha1",
            "-passout",
            "pass:legacy",
            "-out",
            "legacy.p12",
        ],
    )?;
    let legacy = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(d.join("legacy.p12")).map_err(|e| e.to_string())?);
    let info = expect(
        put(json!({ "pkcs12_base64": legacy, "password": "legacy" })).await?,
        200,
        "upload the 3DES PKCS#12",
    )?;
    ensure!(info["key"] == "ECDSA P-256", "3DES PKCS#12: {info}");

    // A P-384 identity signs with SHA-384 throughout; openssl agrees.
    let body = json!({
        "certificate_pem": format!("{}{issuing}", read(d, "ec384.pem")?),
        "private_key_pem": read(d, "ec384.key")?,
    });
    let info = expect(put(body).await?, 200, "upload P-384")?;
    ensure!(info["key"] == "ECDSA P-384", "P-384: {info}");
    let p384_profile = admin(&s, &f)
        .issue_profile(&http, Platform::Iphone, None)
        .await
        .map_err(|e| e.to_string())?;
    let verified =
        mdm_pki::verify_signed_data(&p384_profile.signed, None, &[]).map_err(|e| e.to_string())?;
    ensure!(
        verified.digest == mdm_pki::DigestAlg::Sha384,
        "P-384 digest {:?}",
        verified.digest
    );
    cms_verifies(d, &p384_profile.signed, "root.pem")?;

    // Another tenant cannot read or replace it.
    let other = fixture(&s).await?;
    let foreign = other.api.get(&path).await?;
    ensure!(
        foreign.status == 404 || foreign.status == 403,
        "another tenant's token: {} {}",
        foreign.status,
        foreign.text
    );

    // Removed: the signer the tenant CA certifies signs again.
    let gone = f.api.send("DELETE", &path, None).await?;
    ensure!(gone.status == 204, "delete: {} {}", gone.status, gone.text);
    let again = f.api.send("DELETE", &path, None).await?;
    ensure!(again.status == 404, "second delete: {}", again.status);
    let after = admin(&s, &f)
        .issue_profile(&http, Platform::Iphone, None)
        .await
        .map_err(|e| e.to_string())?;
    let tenant_ca = mdm_pki::cert_from_pem(ca["certificate_pem"].as_str().ok_or("ca pem")?)
        .map_err(|e| e.to_string())?;
    mdm_pki::verify_issued_by(&signer_of(&after.signed)?, &tenant_ca)
        .map_err(|e| format!("after removal the tenant's signer signs: {e}"))?;

    let audit = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?action=signing_identity.",
                f.slug
            ))
            .await?,
        200,
        "audit",
    )?;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    let uploaded = actions
        .iter()
        .filter(|a| **a == "signing_identity.uploaded")
        .count();
    let removed = actions
        .iter()
        .filter(|a| **a == "signing_identity.removed")
        .count();
    ensure!(
        uploaded == 5 && removed == 1,
        "five uploads and one removal audited, none of the refusals: {actions:?}"
    );
    ensure!(
        !audit.to_string().contains("PRIVATE KEY"),
        "no key material in the audit trail"
    );
    Ok(())
}
