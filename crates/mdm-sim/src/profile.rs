//! The enrollment profile as a device reads it: verify the CMS signature and
//! that the signer chains to a CA payload inside the profile (as iOS shows
//! "Verified"), then check the SCEP and MDM payloads and refuse a profile a
//! device would refuse. Stricter than iOS in one respect: `Keysize` must be
//! given (iOS would silently use 1024 bits).

use mdm_apple::plist::{Dictionary, Value};
use mdm_pki::x509_cert::Certificate;
use mdm_pki::{CertificateExt, DigestAlg, cert_from_der, verify_issued_by, verify_signed_data};
use time::OffsetDateTime;

use crate::error::ProfileError;

/// The SCEP payload (`com.apple.security.scep`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScepConfig {
    /// `PayloadUUID` (what the MDM payload's `IdentityCertificateUUID` names).
    pub payload_uuid: String,
    /// `URL`, no query string.
    pub url: String,
    /// `Name` (sent as `message=` in GetCACert).
    pub name: Option<String>,
    /// `Subject` as (attribute, value) pairs, in order.
    pub subject: Vec<(String, String)>,
    /// `Challenge`.
    pub challenge: String,
    /// `Keysize`.
    pub key_size: u32,
    /// `Key Usage`.
    pub key_usage: u32,
    /// `CAFingerprint` (SHA-1 of the CA certificate).
    pub ca_fingerprint: Option<Vec<u8>>,
}

/// The MDM payload (`com.apple.mdm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdmConfig {
    /// `PayloadIdentifier` of the MDM payload.
    pub payload_identifier: String,
    /// `ServerURL`: the command channel.
    pub server_url: String,
    /// `CheckInURL` (ServerURL when absent).
    pub check_in_url: String,
    /// `Topic`.
    pub topic: String,
    /// `SignMessage`.
    pub sign_message: bool,
    /// `AccessRights`.
    pub access_rights: u32,
    /// `CheckOutWhenRemoved`.
    pub check_out_when_removed: bool,
    /// `ServerCapabilities`.
    pub capabilities: Vec<String>,
}

impl MdmConfig {
    /// Whether the server manages a macOS user channel.
    pub fn per_user_connections(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| c == mdm_apple::CAP_PER_USER_CONNECTIONS)
    }
}

/// A verified enrollment profile.
#[derive(Clone, Debug)]
pub struct ManagementProfile {
    /// Top-level `PayloadIdentifier` (RemoveProfile of it removes management).
    pub identifier: String,
    /// Top-level `PayloadUUID`.
    pub uuid: String,
    /// `PayloadDisplayName`.
    pub display_name: String,
    /// `PayloadRemovalDisallowed`.
    pub removal_disallowed: bool,
    /// The certificate payloads (the tenant CA, a TLS anchor).
    pub anchors: Vec<Certificate>,
    /// The identity payload.
    pub scep: ScepConfig,
    /// The management payload.
    pub mdm: MdmConfig,
    /// Who signed the profile.
    pub signer: Certificate,
    /// The plist inside the signature.
    pub xml: Vec<u8>,
}

impl ManagementProfile {
    /// Verifies and reads a signed `.mobileconfig` as a device would at `now`,
    /// trusting only the certificates the profile itself installs.
    pub fn verify(signed: &[u8], now: OffsetDateTime) -> Result<Self, ProfileError> {
        Self::verify_trusting(signed, now, &[])
    }

    /// As [`Self::verify`], with `system_roots` trusted as well: the roots a
    /// device ships with, which a profile signed by a public CA's identity
    /// chains to.
    pub fn verify_trusting(
        signed: &[u8],
        now: OffsetDateTime,
        system_roots: &[Certificate],
    ) -> Result<Self, ProfileError> {
        let content = verify_signed_data(signed, None, &[])
            .map_err(|e| ProfileError::BadSignature(e.to_string()))?;
        let root = match mdm_apple::decode_plist(&content.content) {
            Ok(Value::Dictionary(d)) => d,
            Ok(_) => {
                return Err(ProfileError::NotAPlist(
                    "the root is not a dictionary".into(),
                ));
            }
            Err(e) => return Err(ProfileError::NotAPlist(e.to_string())),
        };
        let payloads = read_payloads(&root)?;
        let anchors = payloads
            .iter()
            .filter(|p| text(p, "PayloadType") == Some("com.apple.security.root"))
            .map(|p| {
                let der = p
                    .get("PayloadContent")
                    .and_then(Value::as_data)
                    .ok_or_else(|| ProfileError::Missing("certificate in a root payload".into()))?;
                cert_from_der(der)
                    .map_err(|e| ProfileError::invalid("certificate payload", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let trusted: Vec<Certificate> = anchors.iter().chain(system_roots).cloned().collect();
        check_signer(&content.signer, &content.certificates, &trusted, now)?;
        let scep = read_scep(one_payload(&payloads, "com.apple.security.scep")?, &anchors)?;
        let mdm = read_mdm(one_payload(&payloads, "com.apple.mdm")?, &scep)?;
        Ok(Self {
            identifier: required(&root, "PayloadIdentifier")?.to_owned(),
            uuid: required(&root, "PayloadUUID")?.to_owned(),
            display_name: text(&root, "PayloadDisplayName")
                .unwrap_or_default()
                .to_owned(),
            removal_disallowed: root
                .get("PayloadRemovalDisallowed")
                .and_then(Value::as_boolean)
                .unwrap_or(false),
            anchors,
            scep,
            mdm,
            signer: content.signer,
            xml: content.content,
        })
    }
}

fn text<'a>(d: &'a Dictionary, key: &str) -> Option<&'a str> {
    d.get(key).and_then(Value::as_string)
}

fn required<'a>(d: &'a Dictionary, key: &str) -> Result<&'a str, ProfileError> {
    text(d, key)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProfileError::Missing(key.to_owned()))
}

fn integer(d: &Dictionary, key: &str) -> Option<u64> {
    d.get(key).and_then(Value::as_unsigned_integer)
}

fn read_payloads(root: &Dictionary) -> Result<Vec<&Dictionary>, ProfileError> {
    if text(root, "PayloadType") != Some("Configuration") {
        return Err(ProfileError::invalid(
            "PayloadType",
            "must be Configuration",
        ));
    }
    let list = root
        .get("PayloadContent")
        .and_then(Value::as_array)
        .ok_or_else(|| ProfileError::Missing("PayloadContent".into()))?;
    let mut uuids = vec![required(root, "PayloadUUID")?];
    let mut out = Vec::new();
    for p in list {
        let d = p.as_dictionary().ok_or_else(|| {
            ProfileError::invalid("PayloadContent", "an entry is not a dictionary")
        })?;
        required(d, "PayloadType")?;
        required(d, "PayloadIdentifier")?;
        let uuid = required(d, "PayloadUUID")?;
        if uuids.contains(&uuid) {
            return Err(ProfileError::invalid(
                "PayloadUUID",
                format!("{uuid} is used twice"),
            ));
        }
        uuids.push(uuid);
        out.push(d);
    }
    Ok(out)
}

fn one_payload<'a>(list: &[&'a Dictionary], kind: &str) -> Result<&'a Dictionary, ProfileError> {
    let mut found = list.iter().filter(|p| text(p, "PayloadType") == Some(kind));
    match (found.next(), found.next()) {
        (Some(p), None) => Ok(p),
        (None, _) => Err(ProfileError::Missing(format!("{kind} payload"))),
        (Some(_), Some(_)) => Err(ProfileError::invalid(kind, "more than one payload")),
    }
}

/// The signer must be an anchor, or chain to one through the certificates the
/// signature carries (at most four links), and be valid now.
fn check_signer(
    signer: &Certificate,
    carried: &[Certificate],
    anchors: &[Certificate],
    now: OffsetDateTime,
) -> Result<(), ProfileError> {
    let valid = |c: &Certificate| matches!((c.not_before(), c.not_after()), (Ok(a), Ok(b)) if a <= now && now <= b);
    if !valid(signer) {
        return Err(ProfileError::SignerExpired);
    }
    let mut cert = signer.clone();
    for _ in 0..4 {
        if anchors.contains(&cert) || anchors.iter().any(|a| verify_issued_by(&cert, a).is_ok()) {
            return Ok(());
        }
        match carried
            .iter()
            .find(|c| *c != &cert && c.is_ca() && verify_issued_by(&cert, c).is_ok())
        {
            Some(up) if valid(up) => cert = up.clone(),
            _ => break,
        }
    }
    Err(ProfileError::UntrustedSigner(signer.subject_string()))
}

fn read_scep(p: &Dictionary, anchors: &[Certificate]) -> Result<ScepConfig, ProfileError> {
    let c = p
        .get("PayloadContent")
        .and_then(Value::as_dictionary)
        .ok_or_else(|| ProfileError::Missing("SCEP PayloadContent".into()))?;
    let url = required(c, "URL")?.to_owned();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(['?', '#']) {
        return Err(ProfileError::invalid(
            "SCEP URL",
            "must be http(s) without a query string",
        ));
    }
    let challenge = required(c, "Challenge")?.to_owned();
    let key_size =
        integer(c, "Keysize").ok_or_else(|| ProfileError::Missing("SCEP Keysize".into()))?;
    if !matches!(key_size, 2048 | 4096) {
        return Err(ProfileError::invalid(
            "SCEP Keysize",
            format!("{key_size} (2048 or 4096)"),
        ));
    }
    if text(c, "Key Type").is_some_and(|t| t != "RSA") {
        return Err(ProfileError::invalid("SCEP Key Type", "only RSA"));
    }
    let key_usage = integer(c, "Key Usage").unwrap_or(0);
    if !matches!(key_usage, 1 | 5) {
        return Err(ProfileError::invalid(
            "SCEP Key Usage",
            format!("{key_usage}: the MDM identity must be able to sign (1 or 5)"),
        ));
    }
    let subject = read_subject(c)?;
    let ca_fingerprint = c
        .get("CAFingerprint")
        .and_then(Value::as_data)
        .map(<[u8]>::to_vec);
    if let Some(fp) = &ca_fingerprint {
        if fp.len() != 20 {
            return Err(ProfileError::invalid(
                "SCEP CAFingerprint",
                "not a SHA-1 digest",
            ));
        }
        let matches = anchors
            .iter()
            .any(|a| mdm_pki::cert_to_der(a).is_ok_and(|der| DigestAlg::Sha1.digest(&der) == *fp));
        if !matches {
            return Err(ProfileError::invalid(
                "SCEP CAFingerprint",
                "matches no certificate payload of the profile",
            ));
        }
    }
    Ok(ScepConfig {
        payload_uuid: required(p, "PayloadUUID")?.to_owned(),
        url,
        name: text(c, "Name").map(str::to_owned),
        subject,
        challenge,
        key_size: key_size as u32,
        key_usage: key_usage as u32,
        ca_fingerprint,
    })
}

/// `Subject`: an array of RDNs, each an array of `[attribute, value]` pairs.
fn read_subject(c: &Dictionary) -> Result<Vec<(String, String)>, ProfileError> {
    let rdns = c
        .get("Subject")
        .and_then(Value::as_array)
        .ok_or_else(|| ProfileError::Missing("SCEP Subject".into()))?;
    let mut out = Vec::new();
    for rdn in rdns {
        for pair in rdn.as_array().into_iter().flatten() {
            match pair.as_array().map(Vec::as_slice) {
                Some([k, v]) => match (k.as_string(), v.as_string()) {
                    (Some(k), Some(v)) if !k.is_empty() && !v.is_empty() => {
                        out.push((k.to_owned(), v.to_owned()));
                    }
                    _ => {
                        return Err(ProfileError::invalid(
                            "SCEP Subject",
                            "empty attribute or value",
                        ));
                    }
                },
                _ => {
                    return Err(ProfileError::invalid(
                        "SCEP Subject",
                        "an entry is not a pair",
                    ));
                }
            }
        }
    }
    if out.is_empty() {
        return Err(ProfileError::invalid("SCEP Subject", "empty"));
    }
    Ok(out)
}

fn check_url(key: &str, url: &str) -> Result<(), ProfileError> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.strip_prefix(p)
                .is_some_and(|r| r.is_empty() || r.starts_with([':', '/']))
        });
    if url.starts_with("https://") || loopback {
        Ok(())
    } else {
        Err(ProfileError::invalid(key, format!("{url}: must be https")))
    }
}

fn read_mdm(p: &Dictionary, scep: &ScepConfig) -> Result<MdmConfig, ProfileError> {
    let server_url = required(p, "ServerURL")?.to_owned();
    check_url("ServerURL", &server_url)?;
    let check_in_url = text(p, "CheckInURL").unwrap_or(&server_url).to_owned();
    check_url("CheckInURL", &check_in_url)?;
    let topic = required(p, "Topic")?.to_owned();
    if !topic.starts_with("com.apple.mgmt.") {
        return Err(ProfileError::invalid(
            "Topic",
            "must start with com.apple.mgmt.",
        ));
    }
    if required(p, "IdentityCertificateUUID")? != scep.payload_uuid {
        return Err(ProfileError::invalid(
            "IdentityCertificateUUID",
            "does not name the SCEP payload",
        ));
    }
    let access_rights =
        integer(p, "AccessRights").ok_or_else(|| ProfileError::Missing("AccessRights".into()))?;
    let r = access_rights;
    if r == 0 || r > 8191 || (r & 2 != 0 && r & 1 == 0) || (r & 128 != 0 && r & 64 == 0) {
        return Err(ProfileError::invalid("AccessRights", r.to_string()));
    }
    let capabilities = match p.get("ServerCapabilities") {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .and_then(|a| a.iter().map(|c| c.as_string().map(str::to_owned)).collect())
            .ok_or_else(|| {
                ProfileError::invalid("ServerCapabilities", "not an array of strings")
            })?,
    };
    let flag = |k: &str| p.get(k).and_then(Value::as_boolean);
    Ok(MdmConfig {
        payload_identifier: required(p, "PayloadIdentifier")?.to_owned(),
        server_url,
        check_in_url,
        topic,
        sign_message: flag("SignMessage").unwrap_or(false),
        access_rights: r as u32,
        check_out_when_removed: flag("CheckOutWhenRemoved").unwrap_or(false),
        capabilities,
    })
}
