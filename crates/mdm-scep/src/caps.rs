//! The non-PKIOperation parts of SCEP over HTTP: operation names, GetCACaps,
//! GetCACert, and the base64 `message` parameter of GET PKIOperation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mdm_pki::{build_certs_only, cert_from_der, cert_to_der, certs_from_signed_data};
use x509_cert::Certificate;

use crate::ScepError;

/// The capabilities we advertise, one per line (RFC 8894 §3.5.2).
pub const CA_CAPS: &str =
    "POSTPKIOperation\nSHA-1\nSHA-256\nSHA-512\nAES\nDES3\nSCEPStandard\nRenewal\n";

/// Content type of the GetCACaps answer.
pub const CA_CAPS_CONTENT_TYPE: &str = "text/plain";
/// Content type of a single CA certificate.
pub const CA_CERT_CONTENT_TYPE: &str = "application/x-x509-ca-cert";
/// Content type of a CA/RA chain (certs-only SignedData).
pub const CA_RA_CERT_CONTENT_TYPE: &str = "application/x-x509-ca-ra-cert";
/// Content type of a PKIOperation reply.
pub const PKI_MESSAGE_CONTENT_TYPE: &str = "application/x-pki-message";

/// The `operation` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// GetCACaps.
    GetCaCaps,
    /// GetCACert.
    GetCaCert,
    /// GetNextCACert (not supported by this server; answer 404/400).
    GetNextCaCert,
    /// PKIOperation.
    PkiOperation,
}

impl Operation {
    /// Parses the operation name (case-sensitive as in RFC 8894, but tolerant
    /// of case, as some clients vary it).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "getcacaps" => Some(Self::GetCaCaps),
            "getcacert" => Some(Self::GetCaCert),
            "getnextcacert" => Some(Self::GetNextCaCert),
            "pkioperation" => Some(Self::PkiOperation),
            _ => None,
        }
    }
}

/// A GetCACert answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaCertResponse {
    /// HTTP Content-Type.
    pub content_type: &'static str,
    /// HTTP body.
    pub body: Vec<u8>,
}

/// GetCACert: one certificate as DER (`application/x-x509-ca-cert`), or a
/// chain (RA/intermediate first or last, as given) as a certs-only SignedData
/// (`application/x-x509-ca-ra-cert`).
pub fn ca_cert_response(chain: &[Certificate]) -> Result<CaCertResponse, ScepError> {
    match chain {
        [] => Err(ScepError::build("no CA certificate")),
        [one] => Ok(CaCertResponse {
            content_type: CA_CERT_CONTENT_TYPE,
            body: cert_to_der(one)?,
        }),
        many => Ok(CaCertResponse {
            content_type: CA_RA_CERT_CONTENT_TYPE,
            body: build_certs_only(many)?,
        }),
    }
}

/// Client side of GetCACert: the certificates of either answer form.
pub fn parse_ca_cert_response(
    content_type: &str,
    body: &[u8],
) -> Result<Vec<Certificate>, ScepError> {
    if content_type.eq_ignore_ascii_case(CA_CERT_CONTENT_TYPE) {
        Ok(vec![cert_from_der(body)?])
    } else {
        Ok(certs_from_signed_data(body)?)
    }
}

/// Decodes the `message` parameter of a GET PKIOperation (after URL
/// decoding). Standard and URL-safe base64 are both accepted (micromdm's client
/// sends URL-safe), whitespace is dropped, and spaces are read as '+', since
/// some clients do not escape '+'.
pub fn decode_get_message(param: &str) -> Result<Vec<u8>, ScepError> {
    if param.len() > mdm_pki::MAX_INPUT_LEN * 4 / 3 + 4 {
        return Err(ScepError::TooLarge(param.len()));
    }
    let cleaned: String = param
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\t'))
        .map(|c| match c {
            ' ' | '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    STANDARD
        .decode(cleaned.trim_end_matches('=').to_owned() + pad(&cleaned))
        .map_err(|e| ScepError::Base64(e.to_string()))
}

fn pad(s: &str) -> &'static str {
    match s.trim_end_matches('=').len() % 4 {
        2 => "==",
        3 => "=",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_message_variants() {
        let bytes: Vec<u8> = (0u8..=255).collect();
        let std = STANDARD.encode(&bytes);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(decode_get_message(&std).unwrap(), bytes);
        assert_eq!(decode_get_message(&url).unwrap(), bytes);
        assert_eq!(decode_get_message(&std.replace('+', " ")).unwrap(), bytes);
        assert_eq!(
            decode_get_message(&format!("{}\r\n{}", &std[..40], &std[40..])).unwrap(),
            bytes
        );
        assert!(decode_get_message("a").is_err());
        assert_eq!(
            Operation::parse("pkioperation"),
            Some(Operation::PkiOperation)
        );
    }
}
