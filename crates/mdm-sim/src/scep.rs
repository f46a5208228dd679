//! SCEP as an iPhone does it: GetCACaps, GetCACert (checked against the
//! profile's CAFingerprint), then one PKIOperation (POST when advertised)
//! with AES-256 and SHA-256 when the server offers them. The CertRep must be
//! signed by the CA, echo our transaction and nonce, and on SUCCESS hold a
//! certificate for our key that the CA issued.

use base64::Engine;
use mdm_pki::x509_cert::Certificate;
use mdm_pki::x509_cert::name::Name;
use mdm_pki::{CertificateExt, DigestAlg, RsaKey, cert_to_der, verify_issued_by};
use mdm_scep::client::{
    RequestOptions, build_csr, build_request, parse_cert_rep, self_signed_signer,
    transaction_id_for,
};
use mdm_scep::{ContentCipher, MessageType, Nonce, PkiStatus};
use time::{Duration, OffsetDateTime};

use crate::error::SimError;
use crate::profile::ScepConfig;

/// What SCEP gave the device.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The identity certificate.
    pub cert: Certificate,
    /// Its DER.
    pub cert_der: Vec<u8>,
    /// What GetCACert returned.
    pub ca_certs: Vec<Certificate>,
    /// Cipher and digest the request used.
    pub cipher: ContentCipher,
    /// Digest of the request signature.
    pub digest: DigestAlg,
}

/// The subject of the CSR, from the profile's `Subject` pairs (in order).
pub fn subject_name(pairs: &[(String, String)]) -> Result<Name, SimError> {
    // RFC 4514 strings list RDNs last-first.
    let text = pairs
        .iter()
        .rev()
        .map(|(k, v)| format!("{k}={}", escape_rdn_value(v)))
        .collect::<Vec<_>>()
        .join(",");
    text.parse::<Name>()
        .map_err(|e| SimError::Scep(format!("Subject {text:?}: {e}")))
}

fn escape_rdn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let edge = (i == 0 && (c == '#' || c == ' ')) || (i + 1 == v.chars().count() && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

async fn get(http: &reqwest::Client, url: &str, step: &str) -> Result<(String, Vec<u8>), SimError> {
    let res = http
        .get(url)
        .send()
        .await
        .map_err(|e| SimError::transport(step, e))?;
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let body = res
        .bytes()
        .await
        .map_err(|e| SimError::transport(step, e))?
        .to_vec();
    if status != 200 {
        return Err(SimError::Scep(format!("{step}: HTTP {status}")));
    }
    Ok((ct, body))
}

/// Runs the whole exchange for `key` at `now`.
pub async fn enroll(
    http: &reqwest::Client,
    cfg: &ScepConfig,
    key: &RsaKey,
    now: OffsetDateTime,
) -> Result<Issued, SimError> {
    let (_, caps) = get(
        http,
        &format!("{}?operation=GetCACaps", cfg.url),
        "GetCACaps",
    )
    .await?;
    let caps = String::from_utf8_lossy(&caps).to_ascii_lowercase();
    let has = |c: &str| caps.lines().any(|l| l.trim() == c);
    let mut ca_url = format!("{}?operation=GetCACert", cfg.url);
    if let Some(name) = &cfg.name {
        ca_url.push_str(&format!("&message={}", url_escape(name)));
    }
    let (ct, body) = get(http, &ca_url, "GetCACert").await?;
    let ca_certs = mdm_scep::parse_ca_cert_response(&ct, &body)
        .map_err(|e| SimError::Scep(format!("GetCACert: {e}")))?;
    if let Some(fp) = &cfg.ca_fingerprint {
        let matches = ca_certs
            .iter()
            .any(|c| cert_to_der(c).is_ok_and(|der| DigestAlg::Sha1.digest(&der) == *fp));
        if !matches {
            return Err(SimError::Scep(
                "GetCACert: no certificate matches CAFingerprint".into(),
            ));
        }
    }
    let recipient = ca_certs
        .iter()
        .find(|c| !c.is_ca())
        .or_else(|| ca_certs.first())
        .cloned()
        .ok_or_else(|| SimError::Scep("GetCACert returned no certificate".into()))?;
    let cipher = if has("aes") {
        ContentCipher::Aes256
    } else {
        ContentCipher::Des3
    };
    let digest = if has("sha-256") {
        DigestAlg::Sha256
    } else {
        DigestAlg::Sha1
    };

    let subject = subject_name(&cfg.subject)?;
    let csr = build_csr(key, &subject, Some(&cfg.challenge), digest).map_err(SimError::local)?;
    let signer = self_signed_signer(
        key,
        &subject,
        now - Duration::hours(1),
        now + Duration::days(1),
    )
    .map_err(SimError::local)?;
    let opts = RequestOptions {
        message_type: MessageType::PkcsReq,
        cipher,
        digest,
        transaction_id: transaction_id_for(key),
        sender_nonce: Nonce::random().map_err(SimError::local)?,
        outer_challenge: None,
    };
    let message = build_request(&csr, &signer, key, &recipient, &opts).map_err(SimError::local)?;
    let reply = if has("postpkioperation") {
        let res = http
            .post(format!("{}?operation=PKIOperation", cfg.url))
            .header(
                reqwest::header::CONTENT_TYPE,
                mdm_scep::PKI_MESSAGE_CONTENT_TYPE,
            )
            .body(message)
            .send()
            .await
            .map_err(|e| SimError::transport("PKIOperation", e))?;
        let status = res.status().as_u16();
        let body = res
            .bytes()
            .await
            .map_err(|e| SimError::transport("PKIOperation", e))?;
        if status != 200 {
            return Err(SimError::Scep(format!("PKIOperation: HTTP {status}")));
        }
        body.to_vec()
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&message);
        let url = format!(
            "{}?operation=PKIOperation&message={}",
            cfg.url,
            url_escape(&b64)
        );
        get(http, &url, "PKIOperation").await?.1
    };
    let rep = parse_cert_rep(&reply, &ca_certs, &signer, key, key.public_key_spki())
        .map_err(|e| SimError::Scep(format!("CertRep: {e}")))?;
    if rep.message.transaction_id != opts.transaction_id
        || rep.message.recipient_nonce.as_ref() != Some(&opts.sender_nonce)
    {
        return Err(SimError::Scep("CertRep does not answer our request".into()));
    }
    match rep.status {
        PkiStatus::Success => {}
        PkiStatus::Failure => {
            return Err(SimError::ScepFailure {
                fail_info: rep.fail_info,
            });
        }
        PkiStatus::Pending => return Err(SimError::Scep("the request is pending approval".into())),
    }
    let cert = rep
        .issued
        .ok_or_else(|| SimError::Scep("SUCCESS without a certificate for our key".into()))?;
    if !ca_certs
        .iter()
        .any(|ca| verify_issued_by(&cert, ca).is_ok())
    {
        return Err(SimError::Scep(
            "the certificate does not chain to the CA".into(),
        ));
    }
    let cert_der = cert_to_der(&cert).map_err(SimError::local)?;
    Ok(Issued {
        cert,
        cert_der,
        ca_certs,
        cipher,
        digest,
    })
}

/// Percent-encodes a query value.
pub(crate) fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_keeps_the_profile_order_and_escapes() {
        let name = subject_name(&[
            ("O".into(), "Acme, Inc.".into()),
            ("CN".into(), "reg-1".into()),
        ])
        .unwrap();
        // Display is RFC 4514 (last RDN first): the DER order is O, then CN.
        assert_eq!(name.to_string(), "CN=reg-1,O=Acme\\, Inc.");
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(url_escape("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }
}
