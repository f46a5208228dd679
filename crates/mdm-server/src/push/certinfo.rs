//! What the operator needs to know about the APNs push certificate: whose
//! it is, its topic, and when it expires (an expired push certificate
//! silently stops every Apple device from being woken; renewing it with a
//! new Apple ID changes the topic and forces every device to re-enroll).

use anyhow::Context;
use mdm_pki::CertificateExt;
use mdm_pki::const_oid::ObjectIdentifier;
use time::OffsetDateTime;

/// `userId` (0.9.2342.19200300.100.1.1): Apple puts the push topic there.
const UID: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.9.2342.19200300.100.1.1");

/// The push certificate's identity and validity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushCertificate {
    pub subject: String,
    /// The topic in the subject's UID (`com.apple.mgmt.External.<uuid>`).
    pub topic: Option<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl PushCertificate {
    /// Reads the first certificate of a PEM file.
    pub fn from_pem(pem: &[u8]) -> anyhow::Result<Self> {
        let text = std::str::from_utf8(pem).context("the push certificate is not PEM text")?;
        let certs = mdm_pki::certs_from_pem(text)
            .map_err(|e| anyhow::anyhow!("the push certificate is not a PEM certificate: {e}"))?;
        let cert = certs
            .first()
            .context("the push certificate file holds no certificate")?;
        let topic = cert
            .tbs_certificate()
            .subject()
            .iter()
            .find(|atv| atv.oid == UID)
            .and_then(|atv| std::str::from_utf8(atv.value.value()).ok())
            .map(str::to_owned);
        let validity = |t: Result<OffsetDateTime, mdm_pki::PkiError>| {
            t.map_err(|e| anyhow::anyhow!("the push certificate's validity is unreadable: {e}"))
        };
        Ok(Self {
            subject: cert.subject_string(),
            topic,
            not_before: validity(cert.not_before())?,
            not_after: validity(cert.not_after())?,
        })
    }

    /// Days left at `now` (negative once expired).
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_days()
    }
}
