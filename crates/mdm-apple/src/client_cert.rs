//! The device's TLS client certificate forwarded by a TLS-terminating proxy:
//! RFC 9440 `Client-Cert` (`:base64-DER:`, an sf-binary), nginx's
//! `$ssl_client_escaped_cert` (URL-encoded PEM), plain PEM (newlines folded to
//! spaces by some proxies) and bare base64 DER.
//!
//! Only trust this header when the proxy strips it from client requests.

use mdm_pki::x509_cert::Certificate;
use mdm_pki::{cert_from_der, cert_to_der};

use crate::signature::decode_base64;

/// RFC 9440's header name.
pub const CLIENT_CERT_HEADER: &str = "Client-Cert";
/// Largest header value accepted.
pub const MAX_CLIENT_CERT_HEADER_LEN: usize = 32 * 1024;

/// A certificate read from a forwarding header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate.
    pub cert: Certificate,
    /// Its DER.
    pub cert_der: Vec<u8>,
}

/// Why a forwarded certificate header was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientCertError {
    /// The header is longer than [`MAX_CLIENT_CERT_HEADER_LEN`].
    #[error("client certificate header too long ({0} bytes)")]
    TooLong(usize),
    /// Bad percent-encoding, base64 or PEM framing.
    #[error("client certificate header is not decodable: {0}")]
    Encoding(String),
    /// The bytes are not an X.509 certificate.
    #[error("client certificate header holds no valid certificate: {0}")]
    Certificate(String),
}

/// Reads the forwarded client certificate. `Ok(None)` when the proxy says
/// there is none (empty value, `(null)` or `-`).
pub fn parse_forwarded_client_cert(header: &str) -> Result<Option<ClientCert>, ClientCertError> {
    if header.len() > MAX_CLIENT_CERT_HEADER_LEN {
        return Err(ClientCertError::TooLong(header.len()));
    }
    let value = header.trim();
    if value.is_empty() || value == "(null)" || value == "-" {
        return Ok(None);
    }
    let der = if let Some(inner) = value.strip_prefix(':').and_then(|v| v.strip_suffix(':')) {
        decode_base64(inner).map_err(ClientCertError::Encoding)?
    } else {
        let text = if value.contains('%') {
            percent_decode(value)?
        } else {
            value.to_owned()
        };
        match pem_body(&text) {
            Some(body) => decode_base64(&body).map_err(ClientCertError::Encoding)?,
            None => decode_base64(&text).map_err(ClientCertError::Encoding)?,
        }
    };
    let cert = cert_from_der(&der).map_err(|e| ClientCertError::Certificate(e.to_string()))?;
    // Re-encode so `cert_der` is canonical DER whatever framing came in.
    let cert_der = cert_to_der(&cert).map_err(|e| ClientCertError::Certificate(e.to_string()))?;
    Ok(Some(ClientCert { cert, cert_der }))
}

/// The base64 between the first `-----BEGIN CERTIFICATE-----` and its END line.
/// Form encoding may have turned the spaces of the markers into `+`.
fn pem_body(text: &str) -> Option<String> {
    let text = text
        .replace("-----BEGIN+CERTIFICATE-----", "-----BEGIN CERTIFICATE-----")
        .replace("-----END+CERTIFICATE-----", "-----END CERTIFICATE-----");
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = text.find(BEGIN)? + BEGIN.len();
    let len = text[start..].find(END)?;
    Some(text[start..start + len].to_owned())
}

/// Decodes `%XX` escapes into UTF-8 text. A `+` stays a `+`: it is a base64
/// character, and AWS ALB leaves it unescaped.
fn percent_decode(text: &str) -> Result<String, ClientCertError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| ClientCertError::Encoding(format!("bad escape at {i}")))?;
                out.push(hex);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|e| ClientCertError::Encoding(e.to_string()))
}
