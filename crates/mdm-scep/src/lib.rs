//! RFC 8894 SCEP messages: bytes to types and back. No I/O, no clock, no
//! randomness that a caller cannot supply (nonces are parameters; content keys
//! and IVs come from the system generator).
//!
//! Server flow: [`Operation::parse`] the query; answer GetCACaps with
//! [`CA_CAPS`] and GetCACert with [`ca_cert_response`]; for PKIOperation call
//! [`parse_request`] and answer with a [`Responder`]: `success` after issuing
//! with [`mdm_pki::issue_leaf`], `failure` for every refusal (also when
//! `parse_request` fails with a [`FailureContext`]), `pending` for manual
//! approval.
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod caps;
mod certrep;
pub mod client;
mod envelope;
mod error;
mod inspect;
mod msg;
mod request;
mod types;

pub use caps::{
    CA_CAPS, CA_CAPS_CONTENT_TYPE, CA_CERT_CONTENT_TYPE, CA_RA_CERT_CONTENT_TYPE, CaCertResponse,
    Operation, PKI_MESSAGE_CONTENT_TYPE, ca_cert_response, decode_get_message,
    parse_ca_cert_response,
};
pub use certrep::Responder;
pub use envelope::{CekDecryptor, decrypt_envelope, encrypt_envelope, envelope_summary};
pub use error::{FailureContext, ScepError, ScepFailure};
pub use inspect::{CertSummary, Inspection, decode_message_file, inspect};
pub use msg::PkiMessage;
pub use request::{CsrRequest, IssuerAndSubject, RequestContent, ScepRequest, parse_request};
pub use types::{
    ContentCipher, DES_CBC, DES_EDE3_CBC, FailInfo, MessageType, Nonce, PkiStatus, TransactionId,
};

pub use mdm_pki;
