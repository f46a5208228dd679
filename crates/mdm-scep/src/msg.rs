//! The signed layer of a SCEP message (`pkiMessage`): a CMS SignedData whose
//! signed attributes carry messageType, transactionID, nonces and status.

use std::fmt;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc2985::PKCS_9_AT_CHALLENGE_PASSWORD;
use const_oid::db::rfc8894::{
    ID_FAIL_INFO, ID_MESSAGE_TYPE, ID_PKI_STATUS, ID_RECIPIENT_NONCE, ID_SCEP_FAIL_INFO_TEXT,
    ID_SENDER_NONCE, ID_TRANSACTION_ID,
};
use mdm_pki::{
    DigestAlg, LenientSignedData, attribute_octets, directory_string, find_signer_cert,
    parse_signed_data, single_value, verify_signer_info,
};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use zeroize::Zeroizing;

use crate::error::WithContext;
use crate::{
    FailInfo, FailureContext, MessageType, Nonce, PkiStatus, ScepError, ScepFailure, TransactionId,
};

/// The SCEP signed attributes, as read (before any signature check).
#[derive(Clone, Default)]
pub(crate) struct ScepAttributes {
    pub message_type: Option<MessageType>,
    pub transaction_id: Option<TransactionId>,
    pub sender_nonce: Option<Nonce>,
    pub recipient_nonce: Option<Nonce>,
    pub pki_status: Option<PkiStatus>,
    pub fail_info: Option<FailInfo>,
    pub fail_info_text: Option<String>,
    pub challenge: Option<Zeroizing<String>>,
}

/// A decoded but not yet verified message.
pub(crate) struct Unverified {
    pub sd: LenientSignedData,
    pub attrs: ScepAttributes,
}

/// Decodes the SignedData and reads the SCEP attributes of its first signer.
pub(crate) fn parse_unverified(input: &[u8]) -> Result<Unverified, ScepError> {
    let sd = parse_signed_data(input)?;
    let si = sd
        .signer_infos
        .0
        .get(0)
        .ok_or(ScepError::Attribute("signerInfo"))?;
    let signed = si
        .signed_attrs
        .as_ref()
        .ok_or(ScepError::Attribute("signedAttributes"))?;
    let attrs = read_attributes(signed.as_slice())?;
    Ok(Unverified { sd, attrs })
}

fn text(
    attrs: &[Attribute],
    oid: ObjectIdentifier,
    name: &'static str,
) -> Result<Option<String>, ScepError> {
    match single_value(attrs.iter(), oid).map_err(|_| ScepError::Attribute(name))? {
        Some(v) => directory_string(v)
            .map(Some)
            .ok_or(ScepError::Attribute(name)),
        None => Ok(None),
    }
}

fn nonce(
    attrs: &[Attribute],
    oid: ObjectIdentifier,
    name: &'static str,
) -> Result<Option<Nonce>, ScepError> {
    let bytes = attribute_octets(attrs.iter(), oid).map_err(|_| ScepError::Attribute(name))?;
    Ok(bytes.map(Nonce))
}

fn read_attributes(attrs: &[Attribute]) -> Result<ScepAttributes, ScepError> {
    let parse = |t: Option<String>, f: fn(&str) -> Option<_>, name| match t {
        Some(s) => f(&s).map(Some).ok_or(ScepError::Attribute(name)),
        None => Ok(None),
    };
    Ok(ScepAttributes {
        message_type: parse(
            text(attrs, ID_MESSAGE_TYPE, "messageType")?,
            MessageType::from_text,
            "messageType",
        )?,
        transaction_id: text(attrs, ID_TRANSACTION_ID, "transactionID")?.map(TransactionId),
        sender_nonce: nonce(attrs, ID_SENDER_NONCE, "senderNonce")?,
        recipient_nonce: nonce(attrs, ID_RECIPIENT_NONCE, "recipientNonce")?,
        pki_status: parse_status(text(attrs, ID_PKI_STATUS, "pkiStatus")?)?,
        fail_info: parse_fail_info(text(attrs, ID_FAIL_INFO, "failInfo")?)?,
        fail_info_text: text(attrs, ID_SCEP_FAIL_INFO_TEXT, "failInfoText")?,
        challenge: text(attrs, PKCS_9_AT_CHALLENGE_PASSWORD, "challengePassword")?
            .map(Zeroizing::new),
    })
}

fn parse_status(t: Option<String>) -> Result<Option<PkiStatus>, ScepError> {
    t.map(|s| PkiStatus::from_text(&s).ok_or(ScepError::Attribute("pkiStatus")))
        .transpose()
}

fn parse_fail_info(t: Option<String>) -> Result<Option<FailInfo>, ScepError> {
    t.map(|s| FailInfo::from_text(&s).ok_or(ScepError::Attribute("failInfo")))
        .transpose()
}

/// A SCEP message whose signature has been verified.
#[derive(Clone)]
pub struct PkiMessage {
    raw: Vec<u8>,
    /// messageType.
    pub message_type: MessageType,
    /// transactionID.
    pub transaction_id: TransactionId,
    /// senderNonce (required in requests by RFC 8894, tolerated if absent).
    pub sender_nonce: Option<Nonce>,
    /// recipientNonce (replies).
    pub recipient_nonce: Option<Nonce>,
    /// pkiStatus (replies).
    pub pki_status: Option<PkiStatus>,
    /// failInfo (FAILURE replies).
    pub fail_info: Option<FailInfo>,
    /// failInfoText (RFC 8894 replies may carry it).
    pub fail_info_text: Option<String>,
    outer_challenge: Option<Zeroizing<String>>,
    /// Certificate that signed the message (self-signed for PKCSReq).
    pub signer: Certificate,
    /// Digest of the messageDigest attribute.
    pub digest: DigestAlg,
    /// Digest of the signature.
    pub signature_digest: DigestAlg,
    /// signingTime attribute, when present.
    pub signing_time: Option<OffsetDateTime>,
    /// Certificates carried in the SignedData.
    pub certificates: Vec<Certificate>,
    /// eContent: the `pkcsPKIEnvelope` (ContentInfo/EnvelopedData), when present.
    pub envelope: Option<Vec<u8>>,
}

impl fmt::Debug for PkiMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PkiMessage")
            .field("message_type", &self.message_type)
            .field("transaction_id", &self.transaction_id)
            .field("sender_nonce", &self.sender_nonce)
            .field("recipient_nonce", &self.recipient_nonce)
            .field("pki_status", &self.pki_status)
            .field("fail_info", &self.fail_info)
            .field(
                "outer_challenge",
                &self.outer_challenge.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "signer",
                &self.signer.tbs_certificate().subject().to_string(),
            )
            .field("digest", &self.digest)
            .field("envelope_len", &self.envelope.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl PkiMessage {
    /// Decodes a `pkiMessage` (DER or BER, at most 1 MiB) and verifies its
    /// signature (messageDigest + RSA over the signed attributes; SHA-1/256/512).
    ///
    /// The signer certificate is looked up in the message, then in
    /// `extra_certs` (a CertRep may omit the CA certificate). Trust in the signer
    /// is the caller's decision. Errors after the transactionID was read carry a
    /// [`FailureContext`].
    pub fn parse(input: &[u8], extra_certs: &[Certificate]) -> Result<Self, ScepFailure> {
        let Unverified { sd, attrs } = parse_unverified(input)?;
        let (message_type, transaction_id) =
            match (attrs.message_type, attrs.transaction_id.clone()) {
                (Some(m), Some(t)) => (m, t),
                (None, _) => return Err(ScepError::Attribute("messageType").into()),
                (_, None) => return Err(ScepError::Attribute("transactionID").into()),
            };
        let ctx = FailureContext {
            transaction_id: transaction_id.clone(),
            sender_nonce: attrs.sender_nonce.clone(),
            message_type,
        };
        let si = sd
            .signer_infos
            .0
            .get(0)
            .ok_or(ScepError::Attribute("signerInfo"))
            .ctx(&ctx)?;
        let certificates = sd.x509_certificates();
        let signer = find_signer_cert(certificates.iter().chain(extra_certs), &si.sid)
            .cloned()
            .ok_or(ScepError::SignerNotFound)
            .ctx(&ctx)?;
        let envelope = sd.encap_content_info.econtent.as_ref().map(|c| c.0.clone());
        let content = envelope.as_deref().unwrap_or_default();
        let verified =
            verify_signer_info(si, &signer, sd.encap_content_info.econtent_type, content)
                .ctx(&ctx)?;
        Ok(Self {
            raw: input.to_vec(),
            message_type,
            transaction_id,
            sender_nonce: attrs.sender_nonce,
            recipient_nonce: attrs.recipient_nonce,
            pki_status: attrs.pki_status,
            fail_info: attrs.fail_info,
            fail_info_text: attrs.fail_info_text,
            outer_challenge: attrs.challenge,
            signer,
            digest: verified.digest,
            signature_digest: verified.signature_digest,
            signing_time: verified.signing_time,
            certificates,
            envelope,
        })
    }

    /// The message exactly as received.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// challengePassword sent as an outer signed attribute (macOS does this).
    pub fn outer_challenge(&self) -> Option<&str> {
        self.outer_challenge.as_ref().map(|s| s.as_str())
    }

    /// What a FAILURE reply to this message needs.
    pub fn context(&self) -> FailureContext {
        FailureContext {
            transaction_id: self.transaction_id.clone(),
            sender_nonce: self.sender_nonce.clone(),
            message_type: self.message_type,
        }
    }
}
