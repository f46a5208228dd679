//! What the TLS listener tells handlers about the connection.
//!
//! When the server terminates TLS itself and the client presented a
//! certificate (Apple devices do, with their SCEP-issued identity, when the
//! profile's MDM payload points at an https URL), the listener inserts a
//! [`PeerCertificate`] into every request's extensions. Handlers treat it
//! like the RFC 9440 `Client-Cert` header of a trusted proxy: the domain
//! still checks that the certificate comes from the tenant's CA and is bound
//! to the enrollment.

/// The DER of the leaf certificate the TLS client presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate(pub std::sync::Arc<Vec<u8>>);
