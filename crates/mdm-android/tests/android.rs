//! Integration tests for mdm-android: JSON round trips and validation of
//! every message, the identity rules as tables over Android versions and
//! modes, request signing, the QR provisioning payload and FCM.
//! One test binary; the modules live in `tests/android/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "android/agent.rs"]
mod agent;
#[path = "android/commands.rs"]
mod commands;
#[path = "android/common.rs"]
mod common;
#[path = "android/fcm.rs"]
mod fcm;
#[path = "android/identity.rs"]
mod identity;
#[path = "android/qr.rs"]
mod qr;
#[path = "android/register.rs"]
mod register;
#[path = "android/signing.rs"]
mod signing;
#[path = "android/version.rs"]
mod version;
