//! Requests as the device's MDM client sends them: XML plist bodies,
//! identified by `Mdm-Signature` (a detached CMS signature over the exact
//! body, with a signing time) and/or by the identity as the TLS client
//! certificate.

use base64::Engine;
use mdm_apple::plist::{Dictionary, Value};
use mdm_pki::cms::content_info::ContentInfo;
use mdm_pki::cms::signed_data::SignedData;
use mdm_pki::der::{Any, Decode, Encode};
use mdm_pki::x509_cert::Certificate;
use mdm_pki::{RsaKey, sign_attached};
use time::OffsetDateTime;

use crate::error::SimError;

/// The device identity from SCEP.
#[derive(Debug)]
pub struct Identity {
    /// The private key.
    pub key: RsaKey,
    /// The certificate the tenant CA issued.
    pub cert: Certificate,
    /// Its DER.
    pub cert_der: Vec<u8>,
}

/// How requests carry the identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IdentityMode {
    /// `Mdm-Signature` when the profile sets SignMessage (what devices do).
    #[default]
    Signature,
    /// The identity as the TLS client certificate only (no `Mdm-Signature`,
    /// even with SignMessage), so the server must identify the device by
    /// the TLS handshake.
    Mtls,
}

/// `Mdm-Signature` for `body`: sign with the content attached, then drop it.
pub fn mdm_signature(body: &[u8], id: &Identity, now: OffsetDateTime) -> Result<String, SimError> {
    let attached = sign_attached(body, &id.key, &id.cert, &[], now).map_err(SimError::local)?;
    let mut ci = ContentInfo::from_der(&attached).map_err(SimError::local)?;
    let mut sd: SignedData = ci.content.decode_as().map_err(SimError::local)?;
    sd.encap_content_info.econtent = None;
    ci.content = Any::encode_from(&sd).map_err(SimError::local)?;
    let der = ci.to_der().map_err(SimError::local)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(der))
}

/// An XML plist body.
pub fn xml(d: Dictionary) -> Result<Vec<u8>, SimError> {
    let mut out = Vec::new();
    Value::Dictionary(d)
        .to_writer_xml(&mut out)
        .map_err(SimError::local)?;
    Ok(out)
}

/// A request ready to send (signed once; the load generator replays it).
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Which request, for errors.
    pub step: String,
    /// CheckInURL or ServerURL.
    pub url: String,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `User-Agent`.
    pub user_agent: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// `Mdm-Signature`, when signed.
    pub signature: Option<String>,
}

/// The answer to a request.
#[derive(Clone, Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Prepared {
    /// PUTs the request.
    pub async fn send(&self, http: &reqwest::Client) -> Result<Answer, SimError> {
        let mut req = http
            .put(&self.url)
            .header(reqwest::header::CONTENT_TYPE, self.content_type)
            .header(reqwest::header::USER_AGENT, self.user_agent)
            .body(self.body.clone());
        if let Some(sig) = &self.signature {
            req = req.header(mdm_apple::MDM_SIGNATURE_HEADER, sig);
        }
        let res = req
            .send()
            .await
            .map_err(|e| SimError::transport(&self.step, e))?;
        let status = res.status().as_u16();
        let body = res
            .bytes()
            .await
            .map_err(|e| SimError::transport(&self.step, e))?
            .to_vec();
        Ok(Answer { status, body })
    }

    /// PUTs the request and requires a 200.
    pub async fn send_ok(&self, http: &reqwest::Client) -> Result<Vec<u8>, SimError> {
        let a = self.send(http).await?;
        if a.status != 200 {
            let text = String::from_utf8_lossy(&a.body[..a.body.len().min(200)]).into_owned();
            return Err(SimError::Http {
                step: self.step.clone(),
                status: a.status,
                body: text,
            });
        }
        Ok(a.body)
    }
}

/// A client that trusts the profile's certificate payloads (the tenant CA,
/// the server's self-signed TLS anchor) besides the system roots, as a device
/// does once the profile is installed, and presents `id` as its TLS client
/// certificate when given.
pub fn device_client(
    anchors: &[Certificate],
    id: Option<&Identity>,
) -> Result<reqwest::Client, SimError> {
    let mut b = reqwest::Client::builder();
    if let Some(id) = id {
        let key_pem = id.key.to_pkcs8_pem().map_err(SimError::local)?;
        let cert_pem = mdm_pki::cert_to_pem(&id.cert).map_err(SimError::local)?;
        let pem = format!("{}\n{cert_pem}", key_pem.as_str());
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).map_err(SimError::local)?);
    }
    for a in anchors {
        let der = mdm_pki::cert_to_der(a).map_err(SimError::local)?;
        let root = reqwest::Certificate::from_der(&der).map_err(SimError::local)?;
        b = b.add_root_certificate(root);
    }
    b.build().map_err(SimError::local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::identity;

    #[test]
    fn the_server_side_check_accepts_our_signature_over_the_exact_body() {
        let id = identity();
        let body = b"<plist><dict><key>Status</key><string>Idle</string></dict></plist>";
        let now = OffsetDateTime::now_utc();
        let header = mdm_signature(body, id, now).unwrap();
        let cache = mdm_pki::SignerCache::new(4);
        let v = mdm_apple::verify_mdm_signature(&header, body, &cache).unwrap();
        assert_eq!(v.signer.der, id.cert_der);
        assert_eq!(
            v.signing_time.map(|t| t.unix_timestamp()),
            Some(now.unix_timestamp())
        );
        assert!(mdm_apple::verify_mdm_signature(&header, b"another body", &cache).is_err());
    }
}
