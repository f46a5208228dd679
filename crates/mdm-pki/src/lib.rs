//! Key and certificate primitives for the MDM server: RSA and ECDSA keys on aws-lc-rs,
//! X.509 CA and device-certificate issuance, PKCS#10 checks, and CMS SignedData
//! signing and verification (profiles, `Mdm-Signature`).
//!
//! Pure functions over bytes and typed values: no I/O, no clock (times are
//! parameters), no global state. Every untrusted input is bounded by
//! [`MAX_INPUT_LEN`].
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod alg;
mod ber;
mod cert;
mod csr;
mod detached;
mod ec;
mod error;
mod key;
mod pem;
mod pkcs12;
mod profile;
mod random;
mod signed_data;
mod signer;
mod signing_key;
mod vault;
mod x509time;

pub use alg::{
    DigestAlg, RsaPublicKey, oid_name, rsa_signature_digest, signature_digest, spki_from_der,
    verify_rsa, verify_signature,
};
pub use ber::{
    BerOctets, EncapContent, LenientSignedData, decode_ber, parse_content_info, parse_signed_data,
};
pub use cert::{
    CertificateExt, cert_from_der, cert_from_pem, cert_to_der, cert_to_pem, certs_from_pem,
    fingerprint_sha256, issue_content_signer, issue_leaf, issue_leaf_for_key, key_identifier,
    self_signed_ca, self_signed_cert, verify_issued_by,
};
pub use csr::{build_csr, challenge_password, csr_from_der, directory_string, verify_csr};
pub use detached::{DetachedSigner, KnownSigner, SignerCache, verify_detached};
pub use ec::{Curve, EcKey};
pub use error::{PkiError, check_len};
pub use key::{RsaKey, rsa_pkcs1v15_encrypt};
pub use pem::{PemBlock, pem_blocks};
pub use pkcs12::{MAX_PKCS12_ITERATIONS, Pkcs12Identity, read_pkcs12};
pub use random::random_bytes;
pub use signed_data::{
    ContentKey, SignedContent, VerifiedSigner, attribute_octets, build_certs_only,
    certs_from_signed_data, find_signer_cert, octets_attribute, printable_attribute, sign_attached,
    sign_with_attributes, signing_time_attribute, single_value, verify_signed_data,
    verify_signer_info,
};
pub use signer::{EcSignature, RsaSignature, RsaSigner, SpkiVerifyingKey};
pub use signing_key::{MIN_RSA_SIGNING_BITS, SigningKey};
pub use vault::Vault;
pub use x509time::{from_x509_time, parse_lenient_time, to_x509_time};

/// Re-exported so callers name the same versions of the ASN.1 crates.
pub use {cms, const_oid, der, spki, x509_cert};

/// Upper bound for any untrusted DER/BER input (1 MiB).
pub const MAX_INPUT_LEN: usize = 1 << 20;
