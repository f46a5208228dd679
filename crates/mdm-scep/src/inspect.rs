//! A human-readable account of a SCEP message, for an admin debugging a
//! failed enrolment. Never prints a challenge password.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mdm_pki::{
    CertificateExt, DigestAlg, find_signer_cert, oid_name, rsa_signature_digest, verify_signer_info,
};
use x509_cert::Certificate;

use crate::msg::parse_unverified;
use crate::request::RequestContent;
use crate::{
    CekDecryptor, FailInfo, MessageType, Nonce, PkiMessage, PkiStatus, ScepError, envelope_summary,
};

/// Certificate facts worth showing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSummary {
    /// Subject (RFC 4514).
    pub subject: String,
    /// Issuer (RFC 4514).
    pub issuer: String,
    /// Serial, hex.
    pub serial: String,
}

impl CertSummary {
    fn of(cert: &Certificate) -> Self {
        Self {
            subject: cert.subject_string(),
            issuer: cert.issuer_string(),
            serial: cert.serial_hex(),
        }
    }
}

impl fmt::Display for CertSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subject=\"{}\" issuer=\"{}\" serial={}",
            self.subject, self.issuer, self.serial
        )
    }
}

/// Everything [`inspect`] could find out; `None`/empty where it could not.
#[derive(Clone, Debug, Default)]
pub struct Inspection {
    /// "DER" or "base64".
    pub encoding: &'static str,
    /// Size of the decoded message.
    pub size: usize,
    /// messageType.
    pub message_type: Option<MessageType>,
    /// transactionID.
    pub transaction_id: Option<String>,
    /// senderNonce.
    pub sender_nonce: Option<Nonce>,
    /// recipientNonce.
    pub recipient_nonce: Option<Nonce>,
    /// pkiStatus.
    pub pki_status: Option<PkiStatus>,
    /// failInfo.
    pub fail_info: Option<FailInfo>,
    /// failInfoText.
    pub fail_info_text: Option<String>,
    /// Digest algorithm of the signer.
    pub digest: Option<String>,
    /// Signature algorithm of the signer.
    pub signature_algorithm: Option<String>,
    /// "valid" or why not.
    pub signature_check: Option<String>,
    /// The signer certificate.
    pub signer: Option<CertSummary>,
    /// Every certificate in the SignedData.
    pub certificates: Vec<CertSummary>,
    /// Whether a challengePassword is an outer signed attribute.
    pub outer_challenge_present: bool,
    /// Envelope content cipher.
    pub content_cipher: Option<String>,
    /// Envelope recipients.
    pub recipients: Vec<String>,
    /// CSR subject (after decryption).
    pub csr_subject: Option<String>,
    /// Whether a challenge is present, CSR or outer (after decryption).
    pub challenge_present: Option<bool>,
    /// Certificates in a decrypted CertRep.
    pub reply_certificates: Vec<CertSummary>,
    /// Problems met on the way (decoding, decryption …).
    pub notes: Vec<String>,
}

/// Decodes the bytes of a message file: DER, or base64 text (optionally with
/// PEM armour or URL escapes as in a GET query).
pub fn decode_message_file(input: &[u8]) -> Result<(Vec<u8>, &'static str), ScepError> {
    if input.first() == Some(&0x30) {
        return Ok((input.to_vec(), "DER"));
    }
    let text = std::str::from_utf8(input)
        .map_err(|_| ScepError::malformed("message file", "neither DER nor text"))?;
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(str::chars)
        .filter(|c| !c.is_whitespace())
        .collect();
    let body = body
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=")
        .replace("%2b", "+")
        .replace("%2f", "/")
        .replace("%3d", "=");
    let body = body.strip_prefix("message=").unwrap_or(&body);
    let der = STANDARD
        .decode(body)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(body))
        .map_err(|e| ScepError::Base64(e.to_string()))?;
    Ok((der, "base64"))
}

/// Summarises a SCEP message file. With `decrypt_with` (the recipient
/// certificate and its key: the CA for requests, the requester for CertReps)
/// the envelope is opened too.
pub fn inspect(
    input: &[u8],
    decrypt_with: Option<(&Certificate, &dyn CekDecryptor)>,
) -> Result<Inspection, ScepError> {
    let (der, encoding) = decode_message_file(input)?;
    let mut out = Inspection {
        encoding,
        size: der.len(),
        ..Inspection::default()
    };
    let unverified = parse_unverified(&der)?;
    let a = &unverified.attrs;
    out.message_type = a.message_type;
    out.transaction_id = a.transaction_id.as_ref().map(|t| t.0.clone());
    out.sender_nonce = a.sender_nonce.clone();
    out.recipient_nonce = a.recipient_nonce.clone();
    out.pki_status = a.pki_status;
    out.fail_info = a.fail_info;
    out.fail_info_text = a.fail_info_text.clone();
    out.outer_challenge_present = a.challenge.is_some();
    let sd = &unverified.sd;
    let certs = sd.x509_certificates();
    out.certificates = certs.iter().map(CertSummary::of).collect();
    if let Some(si) = sd.signer_infos.0.get(0) {
        let digest = DigestAlg::from_oid(&si.digest_alg.oid);
        out.digest =
            Some(digest.map_or_else(|| oid_name(&si.digest_alg.oid), |d| d.name().to_owned()));
        out.signature_algorithm = Some(
            match rsa_signature_digest(&si.signature_algorithm, digest) {
                Ok(d) => format!(
                    "{} ({})",
                    oid_name(&si.signature_algorithm.oid),
                    d.rsa_signature_name()
                ),
                Err(_) => oid_name(&si.signature_algorithm.oid),
            },
        );
        let signer = find_signer_cert(certs.iter(), &si.sid);
        out.signer = signer.map(CertSummary::of);
        let content = sd
            .encap_content_info
            .econtent
            .as_ref()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        out.signature_check = Some(match signer {
            None => "not checked: signer certificate not in the message".to_owned(),
            Some(cert) => {
                match verify_signer_info(si, cert, sd.encap_content_info.econtent_type, &content) {
                    Ok(_) => "valid".to_owned(),
                    Err(e) => format!("INVALID: {e}"),
                }
            }
        });
    }
    if let Some(env) = &sd.encap_content_info.econtent {
        match envelope_summary(&env.0) {
            Ok((cipher, recipients)) => {
                out.content_cipher = Some(cipher.to_string());
                out.recipients = recipients;
            }
            Err(e) => out.notes.push(format!("envelope: {e}")),
        }
    }
    if let Some((cert, key)) = decrypt_with {
        open_envelope(&der, cert, key, &mut out);
    }
    Ok(out)
}

fn open_envelope(der: &[u8], cert: &Certificate, key: &dyn CekDecryptor, out: &mut Inspection) {
    let message = match PkiMessage::parse(der, std::slice::from_ref(cert)) {
        Ok(m) => m,
        Err(f) => return out.notes.push(format!("not decrypted: {}", f.error)),
    };
    if message.message_type == MessageType::CertRep {
        let Some(env) = message.envelope.as_deref() else {
            return;
        };
        match crate::decrypt_envelope(env, cert, key)
            .and_then(|(p, _)| Ok(mdm_pki::certs_from_signed_data(&p)?))
        {
            Ok(certs) => out.reply_certificates = certs.iter().map(CertSummary::of).collect(),
            Err(e) => out.notes.push(format!("decryption: {e}")),
        }
        return;
    }
    match message.decrypt_request(cert, key) {
        Ok(req) => match &req.content {
            RequestContent::Csr(csr) => {
                out.csr_subject = Some(csr.subject());
                out.challenge_present = Some(csr.challenge().is_some());
            }
            other => out.notes.push(format!("request content: {other:?}")),
        },
        Err(f) => out.notes.push(format!(
            "decryption: {} (failInfo {})",
            f.error,
            f.fail_info()
        )),
    }
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_owned(), T::to_string)
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "SCEP message ({}, {} bytes)", self.encoding, self.size)?;
        writeln!(f, "  messageType:     {}", opt(&self.message_type))?;
        writeln!(f, "  transactionID:   {}", opt(&self.transaction_id))?;
        writeln!(f, "  senderNonce:     {}", opt(&self.sender_nonce))?;
        writeln!(f, "  recipientNonce:  {}", opt(&self.recipient_nonce))?;
        writeln!(f, "  pkiStatus:       {}", opt(&self.pki_status))?;
        writeln!(f, "  failInfo:        {}", opt(&self.fail_info))?;
        if let Some(t) = &self.fail_info_text {
            writeln!(f, "  failInfoText:    {t}")?;
        }
        writeln!(f, "  digest:          {}", opt(&self.digest))?;
        writeln!(
            f,
            "  signature:       {} [{}]",
            opt(&self.signature_algorithm),
            opt(&self.signature_check)
        )?;
        writeln!(f, "  signer:          {}", opt(&self.signer))?;
        for c in &self.certificates {
            writeln!(f, "  certificate:     {c}")?;
        }
        writeln!(
            f,
            "  outer challenge: {}",
            if self.outer_challenge_present {
                "present"
            } else {
                "absent"
            }
        )?;
        writeln!(f, "  content cipher:  {}", opt(&self.content_cipher))?;
        for r in &self.recipients {
            writeln!(f, "  encrypted to:    {r}")?;
        }
        if let Some(s) = &self.csr_subject {
            writeln!(f, "  CSR subject:     {s}")?;
        }
        if let Some(p) = self.challenge_present {
            writeln!(
                f,
                "  challenge:       {}",
                if p { "present" } else { "absent" }
            )?;
        }
        for c in &self.reply_certificates {
            writeln!(f, "  issued:          {c}")?;
        }
        for n in &self.notes {
            writeln!(f, "  note:            {n}")?;
        }
        Ok(())
    }
}
