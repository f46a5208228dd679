//! Integration tests for mdm-apple: real and hand-written check-ins, reports,
//! commands, the enrollment profile (with `openssl` interop when installed),
//! `Mdm-Signature`, forwarded certificates and APNs classification.
//! One test binary; the modules live in `tests/apple/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "apple/checkin.rs"]
mod checkin;
#[path = "apple/common.rs"]
mod common;
#[path = "apple/hostile.rs"]
mod hostile;
#[path = "apple/profile.rs"]
mod profile;
#[path = "apple/push.rs"]
mod push;
#[path = "apple/report.rs"]
mod report;
#[path = "apple/signature.rs"]
mod signature;
