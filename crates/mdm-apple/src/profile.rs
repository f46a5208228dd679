//! The enrollment profile (`.mobileconfig`, `PayloadType` `Configuration`):
//! CA anchors, the SCEP identity payload and the MDM payload; and its signing.
//!
//! Identifiers and UUIDs are derived from what the caller gives (name-based
//! UUID v5), never random: re-sending the profile for the same enrollment
//! (renewal) must replace the installed one, and `Topic`, `ServerURL`,
//! `CheckInURL`, `AccessRights` and the per-user capability must not change
//! for an enrolled device.

use mdm_pki::x509_cert::Certificate;
use mdm_pki::{ContentKey, DigestAlg, cert_from_der, sign_attached};
use plist::{Dictionary, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::to_xml;
use crate::error::BuildError;

/// `Content-Type` to serve a profile with.
pub const PROFILE_CONTENT_TYPE: &str = "application/x-apple-aspen-config";
/// Every access right (1 | 2 | … | 4096).
pub const ACCESS_RIGHTS_ALL: u32 = 8191;
/// Default namespace for the profile's UUID v5s (fixed forever: changing it
/// changes every `PayloadUUID`).
pub const PROFILE_UUID_NAMESPACE: Uuid = Uuid::from_u128(0xc774_92eb_af6e_41a4_bd3a_9a11_de10_57e4);
/// `ServerCapabilities` value for the macOS / Shared iPad user channel.
pub const CAP_PER_USER_CONNECTIONS: &str = "com.apple.mdm.per-user-connections";
/// `ServerCapabilities` value for bootstrap token escrow (macOS 11+).
pub const CAP_BOOTSTRAP_TOKEN: &str = "com.apple.mdm.bootstraptoken";

/// Whether the user may remove the profile (`PayloadRemovalDisallowed`).
/// Apple honours `Disallowed` only on supervised devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// The user can remove the profile (and with it, management).
    Allowed,
    /// `PayloadRemovalDisallowed` = true.
    Disallowed,
}

/// The `com.apple.security.scep` payload: how the device gets its identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScepPayload {
    /// `URL`: http(s), no query string (devices append `?operation=`).
    pub url: String,
    /// `Name`: sent as `message=` in GetCACert.
    pub name: Option<String>,
    /// `Subject`: RDNs in order, e.g. `[("O", "Acme"), ("CN", "device")]`.
    pub subject: Vec<(String, String)>,
    /// `Challenge`: the one-time SCEP challenge.
    pub challenge: Option<String>,
    /// `Keysize`: 2048 or 4096 (Apple's default is 1024, so always set).
    pub key_size: u32,
    /// `Key Usage`: 1 sign, 4 encrypt, 5 both.
    pub key_usage: u32,
    /// `CAFingerprint`: see [`ca_fingerprint`]. Optional.
    pub ca_fingerprint: Option<Vec<u8>>,
    /// `Retries` on PENDING.
    pub retries: Option<u32>,
    /// `RetryDelay` in seconds.
    pub retry_delay: Option<u32>,
}

impl ScepPayload {
    /// SCEP at `url` with Keysize 2048, Key Usage 5, no Subject.
    pub fn new(url: impl Into<String>, challenge: Option<String>) -> Self {
        Self {
            url: url.into(),
            name: None,
            subject: Vec::new(),
            challenge,
            key_size: 2048,
            key_usage: 5,
            ca_fingerprint: None,
            retries: None,
            retry_delay: None,
        }
    }
}

/// The `CAFingerprint` of a CA certificate: SHA-1 of its DER. Apple's SCEP
/// client compares 16-byte values as MD5 and 20-byte values as SHA-1 and
/// fails on any other length, so a SHA-256 value would break enrollment.
pub fn ca_fingerprint(ca_der: &[u8]) -> Vec<u8> {
    DigestAlg::Sha1.digest(ca_der)
}

/// `ServerCapabilities`. Neither may be added or removed by a profile update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerCapabilities {
    /// `com.apple.mdm.per-user-connections` (macOS user channel; harmless on iOS).
    pub per_user_connections: bool,
    /// `com.apple.mdm.bootstraptoken`.
    pub bootstrap_token: bool,
}

/// The `com.apple.mdm` payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdmPayload {
    /// `Topic`: the push certificate's topic, `com.apple.mgmt.…`.
    pub topic: String,
    /// `ServerURL` (https).
    pub server_url: String,
    /// `CheckInURL` (https); the device uses ServerURL when absent.
    pub check_in_url: Option<String>,
    /// `SignMessage`: every message carries `Mdm-Signature`.
    pub sign_message: bool,
    /// `AccessRights` bitmask.
    pub access_rights: u32,
    /// `CheckOutWhenRemoved`.
    pub check_out_when_removed: bool,
    /// `ServerCapabilities`.
    pub capabilities: ServerCapabilities,
}

impl MdmPayload {
    /// SignMessage, all access rights, CheckOut on removal, the per-user
    /// capability on and bootstrap token off.
    pub fn new(topic: impl Into<String>, server_url: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            server_url: server_url.into(),
            check_in_url: None,
            sign_message: true,
            access_rights: ACCESS_RIGHTS_ALL,
            check_out_when_removed: true,
            capabilities: ServerCapabilities {
                per_user_connections: true,
                bootstrap_token: false,
            },
        }
    }
}

/// Everything an enrollment profile is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrollmentProfile {
    /// Top-level `PayloadIdentifier`, unique per (tenant, device or
    /// registration), e.g. `com.example.mdm.acme.reg-42`. Sub-payloads get
    /// `<identifier>.ca`, `.tls`, `.scep`, `.mdm`.
    pub identifier: String,
    /// Namespace of the UUID v5s (usually [`PROFILE_UUID_NAMESPACE`]).
    pub uuid_namespace: Uuid,
    /// `PayloadDisplayName`.
    pub display_name: String,
    /// `PayloadOrganization`.
    pub organization: String,
    /// `PayloadDescription`.
    pub description: String,
    /// `PayloadRemovalDisallowed`.
    pub removal: Removal,
    /// The tenant CA (DER), as `com.apple.security.root`.
    pub ca_cert_der: Vec<u8>,
    /// A self-signed server TLS certificate (DER) to trust as well.
    pub tls_anchor_der: Option<Vec<u8>>,
    /// The identity payload.
    pub scep: ScepPayload,
    /// The MDM payload.
    pub mdm: MdmPayload,
}

impl EnrollmentProfile {
    /// The top-level `PayloadIdentifier`: the `Identifier` of the "remove
    /// management" command ([`crate::Command::remove_management`]).
    pub fn payload_identifier(&self) -> &str {
        &self.identifier
    }

    /// The stable `PayloadUUID` of one part ("profile", "ca", "tls", "scep", "mdm").
    pub fn payload_uuid(&self, part: &str) -> String {
        let name = format!("{}#{part}", self.identifier);
        Uuid::new_v5(&self.uuid_namespace, name.as_bytes())
            .hyphenated()
            .to_string()
            .to_uppercase()
    }

    /// The profile as a plist value (after validation).
    pub fn to_plist(&self) -> Result<Value, BuildError> {
        self.validate()?;
        let mut content = vec![self.cert_payload("ca", "CA", &self.ca_cert_der)];
        if let Some(tls) = &self.tls_anchor_der {
            content.push(self.cert_payload("tls", "Server TLS", tls));
        }
        content.push(self.scep_payload());
        content.push(self.mdm_payload());
        let mut root = self.header("profile", "Configuration", &self.display_name);
        root.insert(
            "PayloadOrganization".into(),
            self.organization.as_str().into(),
        );
        root.insert(
            "PayloadDescription".into(),
            self.description.as_str().into(),
        );
        root.insert(
            "PayloadRemovalDisallowed".into(),
            Value::Boolean(self.removal == Removal::Disallowed),
        );
        root.insert("PayloadContent".into(), Value::Array(content));
        Ok(Value::Dictionary(root))
    }

    /// The profile as an XML plist (sign it with [`sign_profile`]).
    pub fn to_xml(&self) -> Result<Vec<u8>, BuildError> {
        to_xml(&self.to_plist()?)
    }

    fn header(&self, part: &str, payload_type: &str, name: &str) -> Dictionary {
        let identifier = match part {
            "profile" => self.identifier.clone(),
            _ => format!("{}.{part}", self.identifier),
        };
        let mut d = Dictionary::new();
        d.insert("PayloadType".into(), payload_type.into());
        d.insert("PayloadVersion".into(), Value::Integer(1.into()));
        d.insert("PayloadIdentifier".into(), identifier.into());
        d.insert("PayloadUUID".into(), self.payload_uuid(part).into());
        d.insert("PayloadDisplayName".into(), name.into());
        d
    }

    fn cert_payload(&self, part: &str, name: &str, der: &[u8]) -> Value {
        let mut d = self.header(part, "com.apple.security.root", name);
        d.insert("PayloadContent".into(), Value::Data(der.to_vec()));
        Value::Dictionary(d)
    }

    fn scep_payload(&self) -> Value {
        let s = &self.scep;
        let mut c = Dictionary::new();
        c.insert("URL".into(), s.url.as_str().into());
        if let Some(name) = &s.name {
            c.insert("Name".into(), name.as_str().into());
        }
        if !s.subject.is_empty() {
            let rdns = s.subject.iter().map(|(k, v)| {
                let pair = Value::Array(vec![k.as_str().into(), v.as_str().into()]);
                Value::Array(vec![pair])
            });
            c.insert("Subject".into(), Value::Array(rdns.collect()));
        }
        if let Some(ch) = &s.challenge {
            c.insert("Challenge".into(), ch.as_str().into());
        }
        c.insert("Keysize".into(), Value::Integer(s.key_size.into()));
        c.insert("Key Type".into(), "RSA".into());
        c.insert("Key Usage".into(), Value::Integer(s.key_usage.into()));
        if let Some(fp) = &s.ca_fingerprint {
            c.insert("CAFingerprint".into(), Value::Data(fp.clone()));
        }
        if let Some(r) = s.retries {
            c.insert("Retries".into(), Value::Integer(r.into()));
        }
        if let Some(r) = s.retry_delay {
            c.insert("RetryDelay".into(), Value::Integer(r.into()));
        }
        let mut d = self.header("scep", "com.apple.security.scep", "Device Identity");
        d.insert("PayloadContent".into(), Value::Dictionary(c));
        Value::Dictionary(d)
    }

    fn mdm_payload(&self) -> Value {
        let m = &self.mdm;
        let mut d = self.header("mdm", "com.apple.mdm", "Device Management");
        d.insert(
            "IdentityCertificateUUID".into(),
            self.payload_uuid("scep").into(),
        );
        d.insert("Topic".into(), m.topic.as_str().into());
        d.insert("ServerURL".into(), m.server_url.as_str().into());
        if let Some(url) = &m.check_in_url {
            d.insert("CheckInURL".into(), url.as_str().into());
        }
        d.insert("SignMessage".into(), Value::Boolean(m.sign_message));
        d.insert(
            "AccessRights".into(),
            Value::Integer(m.access_rights.into()),
        );
        d.insert(
            "CheckOutWhenRemoved".into(),
            Value::Boolean(m.check_out_when_removed),
        );
        d.insert("UseDevelopmentAPNS".into(), Value::Boolean(false));
        let mut caps = Vec::new();
        if m.capabilities.per_user_connections {
            caps.push(CAP_PER_USER_CONNECTIONS.into());
        }
        if m.capabilities.bootstrap_token {
            caps.push(CAP_BOOTSTRAP_TOKEN.into());
        }
        d.insert("ServerCapabilities".into(), Value::Array(caps));
        Value::Dictionary(d)
    }

    fn validate(&self) -> Result<(), BuildError> {
        if self.identifier.is_empty() || self.identifier.contains(char::is_whitespace) {
            return Err(BuildError::invalid(
                "PayloadIdentifier",
                "empty or has spaces",
            ));
        }
        for (field, der) in [
            ("CA certificate", Some(&self.ca_cert_der)),
            ("TLS anchor", self.tls_anchor_der.as_ref()),
        ] {
            if let Some(der) = der {
                cert_from_der(der).map_err(|e| BuildError::invalid(field, e.to_string()))?;
            }
        }
        validate_scep(&self.scep)?;
        validate_mdm(&self.mdm)
    }
}

fn validate_scep(s: &ScepPayload) -> Result<(), BuildError> {
    if !(s.url.starts_with("https://") || s.url.starts_with("http://")) {
        return Err(BuildError::invalid("URL", "SCEP URL must be http(s)"));
    }
    if s.url.contains(['?', '#']) {
        return Err(BuildError::invalid(
            "URL",
            "SCEP URL must have no query string: devices append ?operation=",
        ));
    }
    if !matches!(s.key_size, 2048 | 4096) {
        return Err(BuildError::invalid("Keysize", "must be 2048 or 4096"));
    }
    if !matches!(s.key_usage, 1 | 4 | 5) {
        return Err(BuildError::invalid("Key Usage", "must be 1, 4 or 5"));
    }
    if s.subject.iter().any(|(k, v)| k.is_empty() || v.is_empty()) {
        return Err(BuildError::invalid("Subject", "empty OID or value"));
    }
    if s.ca_fingerprint
        .as_ref()
        .is_some_and(|fp| !matches!(fp.len(), 16 | 20))
    {
        return Err(BuildError::invalid(
            "CAFingerprint",
            "must be an MD5 (16 bytes) or SHA-1 (20 bytes) digest",
        ));
    }
    Ok(())
}

/// `http://` to this machine (127.0.0.1, localhost, [::1]): accepted for
/// development and tests only; devices need https.
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    let host = host
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn validate_mdm(m: &MdmPayload) -> Result<(), BuildError> {
    if !m.topic.starts_with("com.apple.mgmt.") {
        return Err(BuildError::invalid(
            "Topic",
            "must start with com.apple.mgmt.",
        ));
    }
    for (field, url) in [
        ("ServerURL", Some(&m.server_url)),
        ("CheckInURL", m.check_in_url.as_ref()),
    ] {
        if url.is_some_and(|u| !u.starts_with("https://") && !is_loopback_http(u)) {
            return Err(BuildError::invalid(field, "must be an https URL"));
        }
    }
    let r = m.access_rights;
    if r == 0 || r > ACCESS_RIGHTS_ALL {
        return Err(BuildError::invalid(
            "AccessRights",
            "must be within 1..=8191",
        ));
    }
    if (r & 2 != 0 && r & 1 == 0) || (r & 128 != 0 && r & 64 == 0) {
        return Err(BuildError::invalid(
            "AccessRights",
            "2 needs 1 and 128 needs 64",
        ));
    }
    Ok(())
}

/// Signs a profile (CMS SignedData, attached, DER, SHA-256) with the server's
/// key (RSA or ECDSA P-256); `extra_certs` is the rest of its chain. Serve
/// with [`PROFILE_CONTENT_TYPE`].
pub fn sign_profile<'k>(
    xml: &[u8],
    key: impl Into<ContentKey<'k>>,
    cert: &Certificate,
    extra_certs: &[Certificate],
    signing_time: OffsetDateTime,
) -> Result<Vec<u8>, BuildError> {
    sign_attached(xml, key, cert, extra_certs, signing_time)
        .map_err(|e| BuildError::Sign(e.to_string()))
}

#[cfg(test)]
mod loopback_tests {
    use super::is_loopback_http;

    #[test]
    fn only_loopback_http_is_allowed() {
        for ok in [
            "http://127.0.0.1:8080/mdm",
            "http://localhost/x",
            "http://[::1]:9/y",
        ] {
            assert!(is_loopback_http(ok), "{ok}");
        }
        for bad in [
            "http://example.com/",
            "http://127.0.0.1.evil.com/",
            "https://127.0.0.1/",
            "http://10.0.0.1:80/",
        ] {
            assert!(!is_loopback_http(bad), "{bad}");
        }
    }
}
