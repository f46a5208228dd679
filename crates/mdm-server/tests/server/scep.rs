//! The SCEP endpoint against the third-party `scepclient` (Debian package
//! `scep`, which always sends single DES and SHA-1) and against our own client
//! code for the other ciphers and digests.

use crate::api::{Fixture, fixture};
use crate::client::{Api, count, expect};
use crate::ensure;
use crate::support::{Server, TestResult};
use mdm_pki::x509_cert::Certificate;
use mdm_pki::x509_cert::name::Name;
use mdm_pki::{DigestAlg, RsaKey};
use mdm_scep::client::{
    CertRepReply, RequestOptions, build_request, parse_cert_rep, self_signed_signer,
    transaction_id_for,
};
use mdm_scep::{ContentCipher, FailInfo, MessageType, Nonce, PkiStatus};
use serde_json::{Value, json};
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use time::OffsetDateTime;

/// A tenant, its SCEP URL and its CA certificate.
struct Scep {
    f: Fixture,
    url: String,
    ca: Certificate,
    ca_pem: String,
}

async fn scep_fixture(s: &Server) -> Result<Scep, String> {
    let f = fixture(s).await?;
    let info = expect(
        f.api.get(&format!("/api/v1/tenants/{}/ca", f.slug)).await?,
        200,
        "ca",
    )?;
    let ca_pem = info["certificate_pem"].as_str().ok_or("pem")?.to_string();
    let ca = mdm_pki::cert_from_pem(&ca_pem).map_err(|e| e.to_string())?;
    let url = info["scep_url"].as_str().ok_or("scep_url")?.to_string();
    ensure!(
        !url.contains('?') && url.ends_with(&format!("/scep/{}", f.slug)),
        "scep url: {url}"
    );
    Ok(Scep { f, url, ca, ca_pem })
}

async fn challenge(f: &Fixture, registration: &str) -> Result<String, String> {
    let c = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/scep/challenges", f.slug),
                json!({ "registration": registration }),
            )
            .await?,
        201,
        "challenge",
    )?;
    Ok(c["challenge"].as_str().ok_or("challenge")?.to_string())
}

/// A device key and its self-signed signer certificate.
struct Requester {
    key: RsaKey,
    cert: Certificate,
    name: Name,
}

fn requester(cn: &str) -> Result<Requester, String> {
    let key = RsaKey::generate(2048).map_err(|e| e.to_string())?;
    let name = Name::from_str(&format!("CN={cn},O=Test Devices")).map_err(|e| e.to_string())?;
    let now = OffsetDateTime::now_utc();
    let cert = self_signed_signer(
        &key,
        &name,
        now - time::Duration::hours(1),
        now + time::Duration::days(1),
    )
    .map_err(|e| e.to_string())?;
    Ok(Requester { key, cert, name })
}

fn request(
    ca: &Certificate,
    r: &Requester,
    challenge: Option<&str>,
    cipher: ContentCipher,
    digest: DigestAlg,
) -> Result<Vec<u8>, String> {
    let csr = mdm_pki::build_csr(&r.key, &r.name, challenge, digest).map_err(|e| e.to_string())?;
    let opts = RequestOptions {
        message_type: MessageType::PkcsReq,
        cipher,
        digest,
        transaction_id: transaction_id_for(&r.key),
        sender_nonce: Nonce::new([7; 16]),
        outer_challenge: None,
    };
    build_request(&csr, &r.cert, &r.key, ca, &opts).map_err(|e| e.to_string())
}

async fn post(scep: &Scep, message: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
    let res = reqwest::Client::new()
        .post(format!("{}?operation=PKIOperation", scep.url))
        .header("content-type", "application/x-pki-message")
        .body(message)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    Ok((
        status,
        res.bytes().await.map_err(|e| e.to_string())?.to_vec(),
    ))
}

/// Posts a PKCSReq (AES-128, SHA-256) with `challenge`; returns the status and body.
async fn post_pkcsreq(
    scep: &Scep,
    r: &Requester,
    challenge: &str,
) -> Result<(u16, Vec<u8>), String> {
    post(
        scep,
        request(
            &scep.ca,
            r,
            Some(challenge),
            ContentCipher::Aes128,
            DigestAlg::Sha256,
        )?,
    )
    .await
}

fn reply(scep: &Scep, r: &Requester, body: &[u8]) -> Result<CertRepReply, String> {
    parse_cert_rep(
        body,
        std::slice::from_ref(&scep.ca),
        &r.cert,
        &r.key,
        r.key.public_key_spki(),
    )
    .map_err(|e| format!("CertRep: {e}"))
}

async fn audit_actions(f: &Fixture, action: &str) -> Result<Vec<Value>, String> {
    let a = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/audit?action={action}", f.slug))
            .await?,
        200,
        "audit",
    )?;
    Ok(a["items"].as_array().cloned().unwrap_or_default())
}

/// Runs Debian's scepclient in its own directory; returns (success, output).
fn scepclient(
    dir: &std::path::Path,
    url: &str,
    challenge: &str,
    cn: &str,
) -> Result<(bool, String), String> {
    let out = Command::new("scepclient")
        .current_dir(dir)
        .args([
            "-server-url",
            url,
            "-challenge",
            challenge,
            "-cn",
            cn,
            "-private-key",
            "key.pem",
            "-certificate",
            "cert.pem",
        ])
        .output()
        .map_err(|e| format!("scepclient: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success() && dir.join("cert.pem").exists(), text))
}

fn have_scepclient() -> bool {
    let found = Command::new("scepclient").arg("-version").output().is_ok();
    if !found {
        eprintln!(
            "notice: scepclient (Debian package scep) not found: third-party SCEP client tests skipped"
        );
    }
    found
}

/// Enrols one device with our client and a given challenge; returns the
/// issued certificate's serial, or why the CertRep was not SUCCESS.
pub async fn enroll_with(
    s: &Server,
    f: &Fixture,
    challenge: &str,
    cn: &str,
) -> Result<String, String> {
    let (_, cert) = enroll_key(s, f, challenge, cn).await?;
    Ok(mdm_pki::CertificateExt::serial_hex(&cert))
}

/// Enrols one device with our client and a given challenge; returns its key
/// and issued certificate, or why the CertRep was not SUCCESS.
pub async fn enroll_key(
    s: &Server,
    f: &Fixture,
    challenge: &str,
    cn: &str,
) -> Result<(RsaKey, Certificate), String> {
    let info = expect(
        f.api.get(&format!("/api/v1/tenants/{}/ca", f.slug)).await?,
        200,
        "ca",
    )?;
    let ca = mdm_pki::cert_from_pem(info["certificate_pem"].as_str().ok_or("pem")?)
        .map_err(|e| e.to_string())?;
    let url = info["scep_url"].as_str().ok_or("url")?.to_string();
    let scep = Scep {
        f: Fixture {
            slug: f.slug.clone(),
            tenant_id: f.tenant_id.clone(),
            op: Api::new(&s.base, None),
            api: Api::new(&s.base, f.api.token.as_deref()),
        },
        url,
        ca,
        ca_pem: String::new(),
    };
    let r = requester(cn)?;
    let (_, body) = post_pkcsreq(&scep, &r, challenge).await?;
    let rep = reply(&scep, &r, &body)?;
    let cert = rep
        .issued
        .ok_or(format!("{:?} {:?}", rep.status, rep.fail_info))?;
    Ok((r.key, cert))
}

/// Enrols one device with our client and a fresh challenge for `registration`;
/// returns the issued certificate's serial.
pub async fn enroll_one(s: &Server, f: &Fixture, registration: &str) -> Result<String, String> {
    let ch = challenge(f, registration).await?;
    enroll_with(s, f, &ch, registration).await
}

pub async fn scepclient_enrolls_and_is_refused_when_it_should_be(s: Arc<Server>) -> TestResult {
    if !have_scepclient() {
        return Ok(());
    }
    let scep = scep_fixture(&s).await?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(tmp.path().join("ca.pem"), &scep.ca_pem).map_err(|e| e.to_string())?;

    // A good one-time challenge: a certificate that chains to the tenant CA.
    let good = tmp.path().join("good");
    std::fs::create_dir(&good).map_err(|e| e.to_string())?;
    let ch = challenge(&scep.f, "reg-good").await?;
    let (ok, log) = scepclient(&good, &scep.url, &ch, "device-good")?;
    ensure!(ok, "scepclient failed: {log}");
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(tmp.path().join("ca.pem"))
        .arg(good.join("cert.pem"))
        .output()
        .map_err(|e| e.to_string())?;
    ensure!(
        verify.status.success(),
        "openssl verify: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let certs = expect(
        scep.f
            .api
            .get(&format!(
                "/api/v1/tenants/{}/certificates?registration=reg-good",
                scep.f.slug
            ))
            .await?,
        200,
        "certs",
    )?;
    let issued = &certs["items"][0];
    ensure!(
        issued["subject"]
            .as_str()
            .is_some_and(|s| s.contains("CN=device-good")),
        "recorded: {certs}"
    );
    ensure!(
        !audit_actions(&scep.f, "certificate.issued")
            .await?
            .is_empty(),
        "issued audited"
    );

    // The same challenge again (a fresh key and directory): refused.
    let reused = tmp.path().join("reused");
    std::fs::create_dir(&reused).map_err(|e| e.to_string())?;
    let (ok, _) = scepclient(&reused, &scep.url, &ch, "device-again")?;
    ensure!(!ok, "a used challenge must be refused");

    // A wrong challenge: refused.
    let wrong = tmp.path().join("wrong");
    std::fs::create_dir(&wrong).map_err(|e| e.to_string())?;
    let (ok, _) = scepclient(&wrong, &scep.url, "not-the-challenge", "device-wrong")?;
    ensure!(!ok, "a wrong challenge must be refused");

    // An expired challenge (its expiry moved into the past in the database): refused, and the audit says why.
    let expired_ch = challenge(&scep.f, "reg-late").await?;
    expire_challenges(&s, "reg-late").await?;
    let late = tmp.path().join("late");
    std::fs::create_dir(&late).map_err(|e| e.to_string())?;
    let (ok, _) = scepclient(&late, &scep.url, &expired_ch, "device-late")?;
    ensure!(!ok, "an expired challenge must be refused");

    let refusals = audit_actions(&scep.f, "scep.refused").await?;
    let reasons: Vec<&str> = refusals
        .iter()
        .filter_map(|e| e["details"]["reason"].as_str())
        .collect();
    for r in ["challenge_used", "challenge_unknown", "profile_expired"] {
        ensure!(reasons.contains(&r), "refusal {r} audited: {reasons:?}");
    }
    let late_entry = refusals
        .iter()
        .find(|e| e["details"]["reason"] == "profile_expired")
        .ok_or("late")?;
    ensure!(
        late_entry["details"]["registration"] == "reg-late"
            && late_entry["details"]["must_restart_registration"] == true,
        "late: {late_entry}"
    );
    ensure!(
        late_entry["details"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("start again")),
        "message: {late_entry}"
    );
    Ok(())
}

/// Moves the expiry of a registration's challenges into the past.
pub async fn expire_challenges(s: &Server, registration: &str) -> TestResult {
    use sqlx::Connection;
    let sql = "UPDATE scep_challenges SET expires_at = 0 WHERE registration = $1";
    if s.database_url.starts_with("sqlite") {
        let mut c = sqlx::sqlite::SqliteConnection::connect(&s.database_url)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query(sql)
            .bind(registration)
            .execute(&mut c)
            .await
            .map_err(|e| e.to_string())?;
    } else {
        let mut c = sqlx::postgres::PgConnection::connect(&s.database_url)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query(sql)
            .bind(registration)
            .execute(&mut c)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub async fn our_client_every_cipher_and_digest(s: Arc<Server>) -> TestResult {
    let scep = scep_fixture(&s).await?;
    let caps = reqwest::get(format!("{}?operation=GetCACaps", scep.url))
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    for cap in [
        "POSTPKIOperation",
        "SHA-256",
        "SHA-512",
        "AES",
        "DES3",
        "SCEPStandard",
        "Renewal",
    ] {
        ensure!(
            caps.lines().any(|l| l.trim() == cap),
            "GetCACaps lacks {cap}: {caps}"
        );
    }
    let ca_der = reqwest::get(format!("{}?operation=GetCACert", scep.url))
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        mdm_pki::cert_from_der(&ca_der).map_err(|e| e.to_string())? == scep.ca,
        "GetCACert returns the tenant CA"
    );
    let combos = [
        (ContentCipher::Aes128, DigestAlg::Sha256),
        (ContentCipher::Aes256, DigestAlg::Sha512),
        (ContentCipher::Aes128, DigestAlg::Sha512),
        (ContentCipher::Des3, DigestAlg::Sha256),
        (ContentCipher::Des3, DigestAlg::Sha512),
        (ContentCipher::Aes256, DigestAlg::Sha256),
    ];
    for (i, (cipher, digest)) in combos.into_iter().enumerate() {
        let r = requester(&format!("combo-{i}"))?;
        let ch = challenge(&scep.f, &format!("combo-{i}")).await?;
        let (status, body) = post(&scep, request(&scep.ca, &r, Some(&ch), cipher, digest)?).await?;
        ensure!(status == 200, "{cipher:?}/{digest:?}: HTTP {status}");
        let rep = reply(&scep, &r, &body)?;
        ensure!(
            rep.status == PkiStatus::Success,
            "{cipher:?}/{digest:?}: {:?} {:?}",
            rep.status,
            rep.fail_info
        );
        let issued = rep.issued.ok_or("no certificate")?;
        mdm_pki::verify_issued_by(&issued, &scep.ca)
            .map_err(|e| format!("{cipher:?}/{digest:?}: chain: {e}"))?;
    }
    // The same request by GET (message in the query string).
    let r = requester("by-get")?;
    let ch = challenge(&scep.f, "by-get").await?;
    let msg = request(
        &scep.ca,
        &r,
        Some(&ch),
        ContentCipher::Aes128,
        DigestAlg::Sha256,
    )?;
    let b64 = base64_encode(&msg);
    let res = reqwest::Client::new()
        .get(&scep.url)
        .query(&[("operation", "PKIOperation"), ("message", b64.as_str())])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body = res.bytes().await.map_err(|e| e.to_string())?;
    ensure!(
        reply(&scep, &r, &body)?.status == PkiStatus::Success,
        "PKIOperation by GET"
    );
    Ok(())
}

pub async fn one_challenge_one_certificate_under_concurrency(s: Arc<Server>) -> TestResult {
    let scep = Arc::new(scep_fixture(&s).await?);
    let ch = challenge(&scep.f, "race").await?;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let r = requester(&format!("racer-{i}"))?;
        let msg = request(
            &scep.ca,
            &r,
            Some(&ch),
            ContentCipher::Aes128,
            DigestAlg::Sha256,
        )?;
        let scep = scep.clone();
        tasks.push(tokio::spawn(async move {
            let (_, body) = post(&scep, msg).await?;
            reply(&scep, &r, &body).map(|rep| rep.status)
        }));
    }
    let mut successes = 0;
    for t in tasks {
        if t.await.map_err(|e| e.to_string())?? == PkiStatus::Success {
            successes += 1;
        }
    }
    ensure!(successes == 1, "{successes} certificates for one challenge");
    let certs = expect(
        scep.f
            .api
            .get(&format!(
                "/api/v1/tenants/{}/certificates?registration=race",
                scep.f.slug
            ))
            .await?,
        200,
        "certs",
    )?;
    ensure!(count(&certs) == 1, "one recorded certificate: {certs}");
    Ok(())
}

pub async fn renewal_and_revocation(s: Arc<Server>) -> TestResult {
    let scep = scep_fixture(&s).await?;
    let mut r = requester("renewing-device")?;
    let ch = challenge(&scep.f, "renew").await?;
    let (_, body) = post_pkcsreq(&scep, &r, &ch).await?;
    let first = reply(&scep, &r, &body)?.issued.ok_or("first certificate")?;
    // Renew: a RenewalReq signed with the issued certificate, no challenge.
    r.cert = first.clone();
    let csr =
        mdm_pki::build_csr(&r.key, &r.name, None, DigestAlg::Sha256).map_err(|e| e.to_string())?;
    let opts = RequestOptions {
        message_type: MessageType::RenewalReq,
        cipher: ContentCipher::Aes256,
        digest: DigestAlg::Sha256,
        transaction_id: transaction_id_for(&r.key),
        sender_nonce: Nonce::new([9; 16]),
        outer_challenge: None,
    };
    let msg = build_request(&csr, &r.cert, &r.key, &scep.ca, &opts).map_err(|e| e.to_string())?;
    let (_, body) = post(&scep, msg.clone()).await?;
    let rep = reply(&scep, &r, &body)?;
    ensure!(
        rep.status == PkiStatus::Success,
        "renewal: {:?} {:?}",
        rep.status,
        rep.fail_info
    );
    let renewed = audit_actions(&scep.f, "certificate.renewed").await?;
    ensure!(renewed.len() == 1, "renewal audited: {renewed:?}");
    // GetCertInitial (CertPoll): nothing is ever pending here, so the answer is FAILURE badCertId.
    let poll = mdm_scep::client::cert_poll_content(scep.ca.tbs_certificate().subject(), &r.name)
        .map_err(|e| e.to_string())?;
    let poll_opts = RequestOptions {
        message_type: MessageType::CertPoll,
        ..opts.clone()
    };
    let poll_msg =
        build_request(&poll, &r.cert, &r.key, &scep.ca, &poll_opts).map_err(|e| e.to_string())?;
    let (_, body) = post(&scep, poll_msg).await?;
    let rep = reply(&scep, &r, &body)?;
    ensure!(
        rep.status == PkiStatus::Failure && rep.fail_info == Some(FailInfo::BadCertId),
        "CertPoll: {:?} {:?}",
        rep.status,
        rep.fail_info
    );
    // Revoke the first certificate: it can no longer renew.
    let serial = mdm_pki::CertificateExt::serial_hex(&first);
    let rev = expect(
        scep.f
            .api
            .post(
                &format!(
                    "/api/v1/tenants/{}/certificates/{serial}/revoke",
                    scep.f.slug
                ),
                json!(null),
            )
            .await?,
        200,
        "revoke",
    )?;
    ensure!(rev["revoked_at"].is_string(), "revoked: {rev}");
    let (_, body) = post(&scep, msg).await?;
    let rep = reply(&scep, &r, &body)?;
    ensure!(
        rep.status == PkiStatus::Failure && rep.fail_info == Some(FailInfo::BadRequest),
        "revoked renewal: {:?}",
        rep.status
    );
    Ok(())
}

pub async fn bad_scep_input(s: Arc<Server>) -> TestResult {
    let scep = scep_fixture(&s).await?;
    let http = reqwest::Client::new();
    let send = |url: String, body: Vec<u8>| {
        let http = http.clone();
        async move {
            let res = http
                .post(url)
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((res.status().as_u16(), res.text().await.unwrap_or_default()))
        }
    };
    let pki = format!("{}?operation=PKIOperation", scep.url);
    let (st, text) = send(pki.clone(), b"garbage".to_vec()).await?;
    ensure!(st == 400 && !text.contains('<'), "garbage: {st} {text}");
    let r = requester("truncated")?;
    let ch = challenge(&scep.f, "truncated").await?;
    let msg = request(
        &scep.ca,
        &r,
        Some(&ch),
        ContentCipher::Aes128,
        DigestAlg::Sha256,
    )?;
    let (st, _) = send(pki.clone(), msg[..msg.len() / 2].to_vec()).await?;
    ensure!(st == 400, "truncated: {st}");
    let mut deep = Vec::new();
    for _ in 0..5000 {
        deep.extend_from_slice(&[0x30, 0x80]);
    }
    let (st, _) = send(pki.clone(), deep).await?;
    ensure!(st == 400, "deep BER nesting: {st}");
    let r = crate::client::post_refused_body(&pki, &[], vec![0x30; 300 * 1024]).await?;
    ensure!(r.status == 413, "oversized: {} {}", r.status, r.text);
    let (st, _) = send(format!("{}?operation=Nonsense", scep.url), Vec::new()).await?;
    ensure!(st == 400, "unknown operation: {st}");
    let (st, _) = send(
        format!("{}/scep/no-such-tenant?operation=PKIOperation", s.base),
        msg.clone(),
    )
    .await?;
    ensure!(st == 404, "unknown tenant: {st}");
    let res = http
        .get(&scep.url)
        .query(&[("operation", "PKIOperation"), ("message", "%%%not base64")])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(res.status().as_u16() == 400, "bad base64");
    // Encrypted to another tenant's CA: a signed FAILURE, not a certificate.
    let other = scep_fixture(&s).await?;
    let r = requester("wrong-ca")?;
    let msg = request(
        &other.ca,
        &r,
        Some(&ch),
        ContentCipher::Aes128,
        DigestAlg::Sha256,
    )?;
    let (status, body) = post(&scep, msg).await?;
    ensure!(status == 200, "encrypted to another CA: HTTP {status}");
    let rep = parse_cert_rep(
        &body,
        std::slice::from_ref(&scep.ca),
        &r.cert,
        &r.key,
        r.key.public_key_spki(),
    )
    .map_err(|e| e.to_string())?;
    ensure!(
        rep.status == PkiStatus::Failure,
        "encrypted to another CA: {:?}",
        rep.status
    );
    // The challenge was not consumed by any of this.
    let r = requester("after-garbage")?;
    let (_, body) = post_pkcsreq(&scep, &r, &ch).await?;
    ensure!(
        reply(&scep, &r, &body)?.status == PkiStatus::Success,
        "challenge still usable after refused garbage"
    );
    Ok(())
}

pub fn base64_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub async fn cli_inspect_and_challenge(s: Arc<Server>) -> TestResult {
    let scep = scep_fixture(&s).await?;
    let ch = s
        .cli(&[
            "scep",
            "challenge",
            "--tenant",
            &scep.f.slug,
            "--registration",
            "cli-reg",
        ])?
        .trim()
        .to_string();
    ensure!(ch.len() >= 22, "challenge from the CLI: {ch}");
    let r = requester("inspected-device")?;
    let msg = request(
        &scep.ca,
        &r,
        Some(&ch),
        ContentCipher::Des3,
        DigestAlg::Sha512,
    )?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("req.der");
    std::fs::write(&file, &msg).map_err(|e| e.to_string())?;
    let path = file.to_string_lossy().to_string();
    let out = s.cli(&["scep", "inspect", "--tenant", &scep.f.slug, &path])?;
    let txid = transaction_id_for(&r.key).0;
    for want in [
        "PKCSReq",
        txid.as_str(),
        "CSR subject:     CN=inspected-device",
        "SHA-512",
        "DES-EDE3-CBC",
    ] {
        ensure!(out.contains(want), "inspect output lacks {want}:\n{out}");
    }
    ensure!(!out.contains(&ch), "inspect printed the challenge:\n{out}");
    let plain = s.cli(&["scep", "inspect", &path])?;
    ensure!(
        plain.contains(txid.as_str()) && !plain.contains("CSR subject"),
        "without a tenant the CSR stays encrypted:\n{plain}"
    );
    // The CLI's challenge works once.
    let (_, body) = post(&scep, msg).await?;
    ensure!(
        reply(&scep, &r, &body)?.status == PkiStatus::Success,
        "CLI challenge enrols"
    );
    Ok(())
}
