//! SCEP value types: message types, statuses, failInfo, nonces, ciphers.

use std::fmt;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{ID_AES_128_CBC, ID_AES_192_CBC, ID_AES_256_CBC};

/// SCEP messageType (RFC 8894 §3.2.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Response to any request (3).
    CertRep,
    /// Renewal of an existing certificate (17).
    RenewalReq,
    /// Initial enrolment (19).
    PkcsReq,
    /// Poll for a pending request; GetCertInitial in older drafts (20).
    CertPoll,
    /// Fetch a certificate by issuer and serial (21).
    GetCert,
    /// Fetch a CRL (22).
    GetCrl,
}

impl MessageType {
    /// The decimal code carried in the PrintableString attribute.
    pub fn code(self) -> u8 {
        match self {
            Self::CertRep => 3,
            Self::RenewalReq => 17,
            Self::PkcsReq => 19,
            Self::CertPoll => 20,
            Self::GetCert => 21,
            Self::GetCrl => 22,
        }
    }

    /// Parses the attribute text ("19").
    pub fn from_text(s: &str) -> Option<Self> {
        match s.trim() {
            "3" => Some(Self::CertRep),
            "17" => Some(Self::RenewalReq),
            "19" => Some(Self::PkcsReq),
            "20" => Some(Self::CertPoll),
            "21" => Some(Self::GetCert),
            "22" => Some(Self::GetCrl),
            _ => None,
        }
    }

    /// Whether the envelope carries a PKCS#10 request.
    pub fn carries_csr(self) -> bool {
        matches!(self, Self::PkcsReq | Self::RenewalReq)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::CertRep => "CertRep",
            Self::RenewalReq => "RenewalReq",
            Self::PkcsReq => "PKCSReq",
            Self::CertPoll => "CertPoll",
            Self::GetCert => "GetCert",
            Self::GetCrl => "GetCRL",
        };
        write!(f, "{name} ({})", self.code())
    }
}

/// SCEP pkiStatus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PkiStatus {
    /// 0: the certificate is in the reply.
    Success,
    /// 2: refused; failInfo says why.
    Failure,
    /// 3: manual approval pending; poll with CertPoll.
    Pending,
}

impl PkiStatus {
    /// Attribute text ("0", "2", "3").
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 2,
            Self::Pending => 3,
        }
    }

    /// Parses the attribute text.
    pub fn from_text(s: &str) -> Option<Self> {
        match s.trim() {
            "0" => Some(Self::Success),
            "2" => Some(Self::Failure),
            "3" => Some(Self::Pending),
            _ => None,
        }
    }
}

impl fmt::Display for PkiStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Success => "SUCCESS",
            Self::Failure => "FAILURE",
            Self::Pending => "PENDING",
        };
        write!(f, "{name} ({})", self.code())
    }
}

/// SCEP failInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailInfo {
    /// 0: unrecognized or unsupported algorithm.
    BadAlg,
    /// 1: integrity check (signature, digest, decryption) failed.
    BadMessageCheck,
    /// 2: transaction not permitted or supported (also: wrong challenge).
    BadRequest,
    /// 3: signingTime too far from the CA's time.
    BadTime,
    /// 4: no certificate matched the criteria.
    BadCertId,
}

impl FailInfo {
    /// Attribute text ("0" … "4").
    pub fn code(self) -> u8 {
        match self {
            Self::BadAlg => 0,
            Self::BadMessageCheck => 1,
            Self::BadRequest => 2,
            Self::BadTime => 3,
            Self::BadCertId => 4,
        }
    }

    /// Parses the attribute text.
    pub fn from_text(s: &str) -> Option<Self> {
        [
            Self::BadAlg,
            Self::BadMessageCheck,
            Self::BadRequest,
            Self::BadTime,
            Self::BadCertId,
        ]
        .into_iter()
        .find(|f| s.trim() == f.code().to_string())
    }
}

impl fmt::Display for FailInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::BadAlg => "badAlg",
            Self::BadMessageCheck => "badMessageCheck",
            Self::BadRequest => "badRequest",
            Self::BadTime => "badTime",
            Self::BadCertId => "badCertId",
        };
        write!(f, "{name} ({})", self.code())
    }
}

/// transactionID: a PrintableString chosen by the client (usually a key hash).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransactionId(pub String);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// senderNonce / recipientNonce: 16 random bytes (other lengths are accepted).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Nonce(pub Vec<u8>);

impl Nonce {
    /// A nonce from caller-supplied random bytes.
    pub fn new(bytes: [u8; 16]) -> Self {
        Self(bytes.to_vec())
    }

    /// A fresh random nonce (for clients and tests; servers may pass their own).
    pub fn random() -> Result<Self, crate::ScepError> {
        Ok(Self(mdm_pki::random_bytes(16)?.to_vec()))
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({self})")
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Content-encryption algorithms of the SCEP envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentCipher {
    /// DES-CBC (1.3.14.3.2.7): Debian's scepclient always sends it. Decrypt only
    /// on the server; replies use DES-EDE3-CBC instead.
    Des,
    /// DES-EDE3-CBC.
    Des3,
    /// AES-128-CBC.
    Aes128,
    /// AES-192-CBC.
    Aes192,
    /// AES-256-CBC.
    Aes256,
}

/// OID of DES-CBC (OIW), absent from const-oid's database.
pub const DES_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.7");
/// OID of DES-EDE3-CBC.
pub const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");

impl ContentCipher {
    /// Algorithm OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Des => DES_CBC,
            Self::Des3 => DES_EDE3_CBC,
            Self::Aes128 => ID_AES_128_CBC,
            Self::Aes192 => ID_AES_192_CBC,
            Self::Aes256 => ID_AES_256_CBC,
        }
    }

    /// Maps an OID to the cipher.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        [
            Self::Des,
            Self::Des3,
            Self::Aes128,
            Self::Aes192,
            Self::Aes256,
        ]
        .into_iter()
        .find(|c| c.oid() == *oid)
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Des => 8,
            Self::Des3 | Self::Aes192 => 24,
            Self::Aes128 => 16,
            Self::Aes256 => 32,
        }
    }

    /// Block (and IV) length in bytes.
    pub fn block_len(self) -> usize {
        match self {
            Self::Des | Self::Des3 => 8,
            _ => 16,
        }
    }

    /// The cipher a reply uses for a request encrypted with `self`: the same,
    /// except single DES, which is answered with DES-EDE3-CBC.
    pub fn for_reply(self) -> Self {
        match self {
            Self::Des => Self::Des3,
            other => other,
        }
    }

    /// Display name ("AES-128-CBC").
    pub fn name(self) -> &'static str {
        match self {
            Self::Des => "DES-CBC",
            Self::Des3 => "DES-EDE3-CBC",
            Self::Aes128 => "AES-128-CBC",
            Self::Aes192 => "AES-192-CBC",
            Self::Aes256 => "AES-256-CBC",
        }
    }
}

impl fmt::Display for ContentCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for m in [
            MessageType::CertRep,
            MessageType::RenewalReq,
            MessageType::PkcsReq,
            MessageType::CertPoll,
            MessageType::GetCert,
            MessageType::GetCrl,
        ] {
            assert_eq!(MessageType::from_text(&m.code().to_string()), Some(m));
        }
        for s in [PkiStatus::Success, PkiStatus::Failure, PkiStatus::Pending] {
            assert_eq!(PkiStatus::from_text(&s.code().to_string()), Some(s));
        }
        for f in [
            FailInfo::BadAlg,
            FailInfo::BadMessageCheck,
            FailInfo::BadRequest,
            FailInfo::BadTime,
            FailInfo::BadCertId,
        ] {
            assert_eq!(FailInfo::from_text(&f.code().to_string()), Some(f));
        }
        assert_eq!(MessageType::from_text("18"), None);
        assert_eq!(PkiStatus::from_text("1"), None);
        assert_eq!(FailInfo::from_text("5"), None);
        assert_eq!(FailInfo::BadRequest.to_string(), "badRequest (2)");
    }

    #[test]
    fn ciphers() {
        for c in [
            ContentCipher::Des,
            ContentCipher::Des3,
            ContentCipher::Aes128,
            ContentCipher::Aes192,
            ContentCipher::Aes256,
        ] {
            assert_eq!(ContentCipher::from_oid(&c.oid()), Some(c));
            assert_ne!(c.for_reply(), ContentCipher::Des);
        }
        assert_eq!(ContentCipher::Des.for_reply(), ContentCipher::Des3);
        assert_eq!(Nonce(vec![0xab, 0x01]).to_string(), "ab01");
    }
}
