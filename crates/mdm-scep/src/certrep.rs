//! Building CertRep replies: SUCCESS (issued certificate, encrypted to the
//! requester), FAILURE (with failInfo) and PENDING, all signed by the CA.

use const_oid::db::rfc5911::ID_DATA;
use const_oid::db::rfc8894::{
    ID_FAIL_INFO, ID_MESSAGE_TYPE, ID_PKI_STATUS, ID_RECIPIENT_NONCE, ID_SENDER_NONCE,
    ID_TRANSACTION_ID,
};
use mdm_pki::{
    DigestAlg, RsaKey, build_certs_only, octets_attribute, printable_attribute,
    sign_with_attributes,
};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;

use crate::{
    FailInfo, FailureContext, MessageType, Nonce, PkiStatus, ScepError, ScepRequest,
    encrypt_envelope,
};

/// Signs CertReps as the CA (or an RA holding a CA-issued certificate).
#[derive(Clone, Copy, Debug)]
pub struct Responder<'a> {
    /// Certificate the replies are signed with; included in every reply.
    pub cert: &'a Certificate,
    /// Its private key.
    pub key: &'a RsaKey,
    /// Signature digest (SHA-256 unless changed).
    pub digest: DigestAlg,
    /// Further certificates to include (e.g. the CA when `cert` is an RA).
    pub extra_certs: &'a [Certificate],
}

impl<'a> Responder<'a> {
    /// A responder signing with SHA-256 and including only `cert`.
    pub fn new(cert: &'a Certificate, key: &'a RsaKey) -> Self {
        Self {
            cert,
            key,
            digest: DigestAlg::Sha256,
            extra_certs: &[],
        }
    }

    /// SUCCESS: `issued` (the new certificate first, optionally its chain) in a
    /// certs-only SignedData, encrypted to the request's signer certificate with
    /// the request's content cipher (DES requests get DES-EDE3-CBC).
    /// `sender_nonce` must be fresh random bytes.
    pub fn success(
        &self,
        request: &ScepRequest,
        issued: &[Certificate],
        sender_nonce: &Nonce,
    ) -> Result<Vec<u8>, ScepError> {
        if issued.is_empty() {
            return Err(ScepError::build("no certificate to return"));
        }
        let degenerate = build_certs_only(issued)?;
        let envelope = encrypt_envelope(
            &degenerate,
            request.cipher.for_reply(),
            &request.message.signer,
        )?;
        self.sign(
            &request.context(),
            PkiStatus::Success,
            None,
            Some(&envelope),
            sender_nonce,
        )
    }

    /// FAILURE with `fail_info`, echoing transactionID and the request's
    /// senderNonce. Use it for every refusal (wrong challenge: badRequest).
    pub fn failure(
        &self,
        ctx: &FailureContext,
        fail_info: FailInfo,
        sender_nonce: &Nonce,
    ) -> Result<Vec<u8>, ScepError> {
        self.sign(ctx, PkiStatus::Failure, Some(fail_info), None, sender_nonce)
    }

    /// PENDING: the request awaits approval; the client will poll.
    pub fn pending(
        &self,
        ctx: &FailureContext,
        sender_nonce: &Nonce,
    ) -> Result<Vec<u8>, ScepError> {
        self.sign(ctx, PkiStatus::Pending, None, None, sender_nonce)
    }

    fn sign(
        &self,
        ctx: &FailureContext,
        status: PkiStatus,
        fail_info: Option<FailInfo>,
        envelope: Option<&[u8]>,
        sender_nonce: &Nonce,
    ) -> Result<Vec<u8>, ScepError> {
        let mut attrs: Vec<Attribute> = vec![
            printable_attribute(ID_MESSAGE_TYPE, &MessageType::CertRep.code().to_string())?,
            printable_attribute(ID_PKI_STATUS, &status.code().to_string())?,
            transaction_id_attribute(&ctx.transaction_id.0)?,
            octets_attribute(ID_SENDER_NONCE, &sender_nonce.0)?,
        ];
        if let Some(n) = &ctx.sender_nonce {
            attrs.push(octets_attribute(ID_RECIPIENT_NONCE, &n.0)?);
        }
        if let Some(f) = fail_info {
            attrs.push(printable_attribute(ID_FAIL_INFO, &f.code().to_string())?);
        }
        Ok(sign_with_attributes(
            ID_DATA,
            envelope,
            self.key,
            self.cert,
            self.digest,
            attrs,
            self.extra_certs,
        )?)
    }
}

/// transactionID as PrintableString when possible; other text goes out as
/// UTF8String rather than failing (some clients use base64 with '/', '+', '=',
/// which PrintableString allows, but be lenient about the rest).
fn transaction_id_attribute(tid: &str) -> Result<Attribute, ScepError> {
    match printable_attribute(ID_TRANSACTION_ID, tid) {
        Ok(a) => Ok(a),
        Err(_) => {
            let value =
                der::Any::new(der::Tag::Utf8String, tid.as_bytes()).map_err(ScepError::build)?;
            let values = der::asn1::SetOfVec::try_from(vec![value]).map_err(ScepError::build)?;
            Ok(Attribute {
                oid: ID_TRANSACTION_ID,
                values,
            })
        }
    }
}
