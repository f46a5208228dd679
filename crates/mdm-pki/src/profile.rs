//! Certificate profiles for `x509-cert`'s builder: which extensions a CA, a
//! device identity and a SCEP requester's self-signed certificate carry.
//!
//! Every profile adds extensions, so every certificate is v3 (the builder emits
//! v1 when none are added, and rustls rejects v1 client certificates).

use const_oid::AssociatedOid;
use const_oid::db::rfc5280::ID_KP_CLIENT_AUTH;
use der::Encode;
use der::asn1::OctetString;
use spki::SubjectPublicKeyInfoRef;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::name::Name;

use crate::DigestAlg;

/// What kind of certificate a [`Profile`] builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Self-signed CA: CA:true, keyCertSign|cRLSign, SKI.
    Ca,
    /// Device identity issued by a CA: CA:false, digitalSignature|keyEncipherment,
    /// clientAuth, SKI, AKI.
    Leaf,
    /// Self-signed end-entity certificate (a SCEP requester's signer).
    SelfSignedLeaf,
    /// Content signer issued by a CA (the management-profile signer): CA:false,
    /// digitalSignature only, no EKU (so S/MIME verifiers accept it), SKI, AKI.
    ContentSigner,
}

/// A [`BuilderProfile`] for the kinds of certificates this crate makes.
pub(crate) struct Profile {
    pub kind: Kind,
    pub subject: Name,
    /// `None` for self-signed certificates.
    pub issuer: Option<Name>,
    /// Key identifier of the issuer (its SKI), for the AKI extension.
    pub issuer_key_id: Option<Vec<u8>>,
}

impl Profile {
    /// A certificate of `kind` for `subject`, issued by the CA of `ca_cert`.
    pub(crate) fn issued_by(kind: Kind, ca_cert: &x509_cert::Certificate, subject: Name) -> Self {
        Self {
            kind,
            subject,
            issuer: Some(ca_cert.tbs_certificate().subject().clone()),
            issuer_key_id: crate::CertificateExt::subject_key_id(ca_cert),
        }
    }
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.issuer.clone().unwrap_or_else(|| subject.clone())
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let ski = spki_key_id(&spk);
        let mut exts = Vec::with_capacity(5);
        let is_ca = self.kind == Kind::Ca;
        exts.push(ext(
            &BasicConstraints {
                ca: is_ca,
                path_len_constraint: None,
            },
            true,
        )?);
        let usage = match self.kind {
            Kind::Ca => KeyUsages::KeyCertSign | KeyUsages::CRLSign,
            Kind::ContentSigner => KeyUsages::DigitalSignature.into(),
            Kind::Leaf | Kind::SelfSignedLeaf => {
                KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
            }
        };
        exts.push(ext(&KeyUsage(usage), true)?);
        if self.kind == Kind::Leaf {
            exts.push(ext(&ExtendedKeyUsage(vec![ID_KP_CLIENT_AUTH]), false)?);
        }
        exts.push(ext(&SubjectKeyIdentifier(OctetString::new(ski)?), false)?);
        if matches!(self.kind, Kind::Leaf | Kind::ContentSigner) {
            let key_id = match &self.issuer_key_id {
                Some(id) => id.clone(),
                None => spki_key_id(&issuer_spk),
            };
            let aki = AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(key_id)?),
                ..Default::default()
            };
            exts.push(ext(&aki, false)?);
        }
        Ok(exts)
    }
}

fn ext<T: AssociatedOid + Encode>(value: &T, critical: bool) -> der::Result<Extension> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits.
pub(crate) fn spki_key_id(spki: &SubjectPublicKeyInfoRef<'_>) -> Vec<u8> {
    DigestAlg::Sha1.digest(spki.subject_public_key.raw_bytes())
}
