//! Server side of a PKIOperation: decrypt the envelope with the CA key and
//! read the request inside (a PKCS#10 CSR, or the CertPoll/GetCert/GetCRL
//! identifiers).

use std::fmt;

use cms::cert::IssuerAndSerialNumber;
use der::{Decode, Sequence};
use mdm_pki::{DigestAlg, challenge_password, verify_csr};
use x509_cert::Certificate;
use x509_cert::name::Name;
use x509_cert::request::CertReq;
use zeroize::Zeroizing;

use crate::error::WithContext;
use crate::{
    CekDecryptor, ContentCipher, FailureContext, MessageType, PkiMessage, ScepError, ScepFailure,
    decrypt_envelope,
};

/// `IssuerAndSubject` (RFC 8894 §3.3.3), the content of CertPoll.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct IssuerAndSubject {
    /// Issuer the client expects.
    pub issuer: Name,
    /// Subject of the pending request.
    pub subject: Name,
}

/// A PKCS#10 request from PKCSReq or RenewalReq, its signature verified.
#[derive(Clone)]
pub struct CsrRequest {
    /// The CSR's DER as sent.
    pub der: Vec<u8>,
    /// The parsed CSR.
    pub csr: CertReq,
    /// Digest of the CSR signature.
    pub digest: DigestAlg,
    challenge: Option<Zeroizing<String>>,
}

impl CsrRequest {
    /// The challengePassword: the CSR attribute, or else the outer signed
    /// attribute. Compare it in constant time; never log it.
    pub fn challenge(&self) -> Option<&str> {
        self.challenge.as_ref().map(|s| s.as_str())
    }

    /// The subject as an RFC 4514 string.
    pub fn subject(&self) -> String {
        self.csr.info.subject.to_string()
    }
}

impl fmt::Debug for CsrRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsrRequest")
            .field("subject", &self.subject())
            .field("digest", &self.digest)
            .field("challenge", &self.challenge.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// What the client asks for.
#[derive(Clone, Debug)]
pub enum RequestContent {
    /// PKCSReq or RenewalReq.
    Csr(Box<CsrRequest>),
    /// CertPoll / GetCertInitial.
    CertPoll(IssuerAndSubject),
    /// GetCert.
    GetCert(IssuerAndSerialNumber),
    /// GetCRL.
    GetCrl(IssuerAndSerialNumber),
}

/// A verified, decrypted request, ready for a policy decision.
#[derive(Clone, Debug)]
pub struct ScepRequest {
    /// The signed layer (transactionID, nonces, signer certificate, raw bytes).
    pub message: PkiMessage,
    /// The envelope's content cipher (a reply uses [`ContentCipher::for_reply`]).
    pub cipher: ContentCipher,
    /// The request itself.
    pub content: RequestContent,
}

impl ScepRequest {
    /// The CSR, for PKCSReq and RenewalReq.
    pub fn csr(&self) -> Option<&CsrRequest> {
        match &self.content {
            RequestContent::Csr(c) => Some(c),
            _ => None,
        }
    }

    /// What a FAILURE reply needs.
    pub fn context(&self) -> FailureContext {
        self.message.context()
    }
}

/// Parses, verifies and decrypts a PKIOperation request addressed to the CA
/// (`ca_cert` and its key). A CSR's own signature is verified too.
pub fn parse_request(
    input: &[u8],
    ca_cert: &Certificate,
    ca_key: &dyn CekDecryptor,
) -> Result<ScepRequest, ScepFailure> {
    PkiMessage::parse(input, &[])?.decrypt_request(ca_cert, ca_key)
}

impl PkiMessage {
    /// Decrypts this request's envelope with the CA key and decodes its content.
    pub fn decrypt_request(
        self,
        ca_cert: &Certificate,
        ca_key: &dyn CekDecryptor,
    ) -> Result<ScepRequest, ScepFailure> {
        let ctx = self.context();
        if self.message_type == MessageType::CertRep {
            return Err(ScepError::UnexpectedType(self.message_type)).ctx(&ctx);
        }
        let envelope = self
            .envelope
            .as_deref()
            .ok_or(ScepError::BadRequest("no pkcsPKIEnvelope".into()))
            .ctx(&ctx)?;
        let (plain, cipher) = decrypt_envelope(envelope, ca_cert, ca_key).ctx(&ctx)?;
        let content =
            decode_content(self.message_type, &plain, self.outer_challenge()).ctx(&ctx)?;
        Ok(ScepRequest {
            message: self,
            cipher,
            content,
        })
    }
}

/// Decodes the decrypted content. Every failure here is reported as
/// badMessageCheck, like a CBC padding failure: a requester may re-sign someone
/// else's envelope with its own self-signed certificate, so distinguishable
/// answers for "bad padding" and "bad plaintext" would be a padding oracle on the
/// content (which holds the challenge). The detail stays in the error text, for
/// logs only.
fn decode_content(
    kind: MessageType,
    plain: &[u8],
    outer_challenge: Option<&str>,
) -> Result<RequestContent, ScepError> {
    let bad = |what: &str, e: &dyn fmt::Display| ScepError::BadMessageCheck(format!("{what}: {e}"));
    Ok(match kind {
        MessageType::PkcsReq | MessageType::RenewalReq => {
            RequestContent::Csr(Box::new(csr_request(plain, outer_challenge)?))
        }
        MessageType::CertPoll => RequestContent::CertPoll(
            IssuerAndSubject::from_der(plain).map_err(|e| bad("IssuerAndSubject", &e))?,
        ),
        MessageType::GetCert => RequestContent::GetCert(
            IssuerAndSerialNumber::from_der(plain).map_err(|e| bad("IssuerAndSerialNumber", &e))?,
        ),
        MessageType::GetCrl => RequestContent::GetCrl(
            IssuerAndSerialNumber::from_der(plain).map_err(|e| bad("IssuerAndSerialNumber", &e))?,
        ),
        MessageType::CertRep => return Err(ScepError::UnexpectedType(kind)),
    })
}

fn csr_request(der: &[u8], outer_challenge: Option<&str>) -> Result<CsrRequest, ScepError> {
    let (csr, digest) =
        verify_csr(der).map_err(|e| ScepError::BadMessageCheck(format!("CSR: {e}")))?;
    let challenge = challenge_password(&csr)
        .map_err(|e| ScepError::BadMessageCheck(format!("CSR: {e}")))?
        .or_else(|| outer_challenge.map(str::to_owned))
        .map(Zeroizing::new);
    Ok(CsrRequest {
        der: der.to_vec(),
        csr,
        digest,
        challenge,
    })
}
