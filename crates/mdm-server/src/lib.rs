//! The outbound adapters and the TLS listener of the `mdm` binary, as a
//! library so that the integration tests and benchmarks drive them
//! directly: [`push`] (APNs, FCM), [`ldap`] (the directory), [`linger`] (the
//! plain-HTTP listener whose connections drain a refused body before they
//! close) and [`tls`] (the HTTPS listener that hands client certificates to
//! handlers).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod ldap;
pub mod linger;
pub mod push;
pub mod tls;
