//! Client side (tests, the device simulator, the load generator): build
//! PKCSReq/RenewalReq/CertPoll messages and read CertRep replies.

use const_oid::db::rfc5911::ID_DATA;
use const_oid::db::rfc8894::{ID_MESSAGE_TYPE, ID_SENDER_NONCE, ID_TRANSACTION_ID};
use der::Encode;
use mdm_pki::{
    CertificateExt, DigestAlg, RsaKey, certs_from_signed_data, key_identifier, octets_attribute,
    printable_attribute, self_signed_cert, sign_with_attributes, verify_issued_by,
};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::name::Name;

use crate::{
    CekDecryptor, ContentCipher, FailInfo, IssuerAndSubject, MessageType, Nonce, PkiMessage,
    PkiStatus, ScepError, TransactionId, decrypt_envelope, encrypt_envelope,
};

pub use mdm_pki::build_csr;

/// How a client builds its request.
#[derive(Clone, Debug)]
pub struct RequestOptions {
    /// PKCSReq, RenewalReq (CSR content) or CertPoll.
    pub message_type: MessageType,
    /// Envelope cipher.
    pub cipher: ContentCipher,
    /// Digest of the SignedData signature.
    pub digest: DigestAlg,
    /// transactionID (see [`transaction_id_for`]).
    pub transaction_id: TransactionId,
    /// Fresh random senderNonce.
    pub sender_nonce: Nonce,
    /// Also send the challenge as an outer signed attribute, as macOS does.
    pub outer_challenge: Option<String>,
}

/// The transactionID RFC 8894 suggests: a hash of the public key (uppercase
/// hex SHA-1 of the subjectPublicKey, as Apple and micromdm clients send).
pub fn transaction_id_for(key: &RsaKey) -> TransactionId {
    let id = key_identifier(key.public_key_spki());
    TransactionId(id.iter().map(|b| format!("{b:02X}")).collect())
}

/// A self-signed signer certificate for a requester key (random serial).
pub fn self_signed_signer(
    key: &RsaKey,
    subject: &Name,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Certificate, ScepError> {
    let serial = mdm_pki::random_bytes(16)?;
    Ok(self_signed_cert(
        key, subject, &serial, not_before, not_after,
    )?)
}

/// Builds a signed, encrypted PKIOperation request.
///
/// `content` is the CSR DER for PKCSReq/RenewalReq, or the DER of an
/// [`IssuerAndSubject`] for CertPoll (see [`cert_poll_content`]); it is
/// encrypted to `recipient` (the CA or RA certificate from GetCACert) and the
/// message is signed by `signer_key` with `signer_cert` (self-signed for a
/// first enrolment, the current certificate for a renewal).
pub fn build_request(
    content: &[u8],
    signer_cert: &Certificate,
    signer_key: &RsaKey,
    recipient: &Certificate,
    opts: &RequestOptions,
) -> Result<Vec<u8>, ScepError> {
    let envelope = encrypt_envelope(content, opts.cipher, recipient)?;
    let mut attrs = vec![
        printable_attribute(ID_MESSAGE_TYPE, &opts.message_type.code().to_string())?,
        printable_attribute(ID_TRANSACTION_ID, &opts.transaction_id.0)?,
        octets_attribute(ID_SENDER_NONCE, &opts.sender_nonce.0)?,
    ];
    if let Some(pw) = &opts.outer_challenge {
        attrs.push(printable_attribute(
            const_oid::db::rfc2985::PKCS_9_AT_CHALLENGE_PASSWORD,
            pw,
        )?);
    }
    Ok(sign_with_attributes(
        ID_DATA,
        Some(&envelope),
        signer_key,
        signer_cert,
        opts.digest,
        attrs,
        &[],
    )?)
}

/// The DER content of a CertPoll for a pending request.
pub fn cert_poll_content(issuer: &Name, subject: &Name) -> Result<Vec<u8>, ScepError> {
    IssuerAndSubject {
        issuer: issuer.clone(),
        subject: subject.clone(),
    }
    .to_der()
    .map_err(ScepError::build)
}

/// A CertRep as the client sees it.
#[derive(Clone, Debug)]
pub struct CertRepReply {
    /// The verified signed layer.
    pub message: PkiMessage,
    /// pkiStatus.
    pub status: PkiStatus,
    /// failInfo (FAILURE).
    pub fail_info: Option<FailInfo>,
    /// Content cipher of the reply envelope (SUCCESS).
    pub cipher: Option<ContentCipher>,
    /// Every certificate in the decrypted reply (SUCCESS).
    pub certificates: Vec<Certificate>,
    /// The certificate for the requester's key (SUCCESS).
    pub issued: Option<Certificate>,
}

/// Verifies and decrypts a CertRep.
///
/// The reply must be signed by one of `ca_certs` or by a certificate one of
/// them issued (an RA). On SUCCESS the envelope is decrypted with
/// `requester_key`, addressed to `requester_cert` (the request's signer).
pub fn parse_cert_rep(
    input: &[u8],
    ca_certs: &[Certificate],
    requester_cert: &Certificate,
    requester_key: &dyn CekDecryptor,
    requester_spki: &spki::SubjectPublicKeyInfoOwned,
) -> Result<CertRepReply, ScepError> {
    let message = PkiMessage::parse(input, ca_certs).map_err(|f| f.error)?;
    if message.message_type != MessageType::CertRep {
        return Err(ScepError::UnexpectedType(message.message_type));
    }
    let trusted = ca_certs.contains(&message.signer)
        || ca_certs
            .iter()
            .any(|ca| verify_issued_by(&message.signer, ca).is_ok());
    if !trusted {
        return Err(ScepError::UntrustedSigner);
    }
    let status = message
        .pki_status
        .ok_or(ScepError::Attribute("pkiStatus"))?;
    let mut reply = CertRepReply {
        fail_info: message.fail_info,
        status,
        cipher: None,
        certificates: vec![],
        issued: None,
        message,
    };
    if status != PkiStatus::Success {
        return Ok(reply);
    }
    let envelope = reply
        .message
        .envelope
        .as_deref()
        .ok_or(ScepError::Attribute("pkcsPKIEnvelope"))?;
    let (plain, cipher) = decrypt_envelope(envelope, requester_cert, requester_key)?;
    reply.certificates = certs_from_signed_data(&plain)?;
    reply.issued = reply
        .certificates
        .iter()
        .find(|c| c.tbs_certificate().subject_public_key_info() == requester_spki && !c.is_ca())
        .cloned();
    reply.cipher = Some(cipher);
    Ok(reply)
}
