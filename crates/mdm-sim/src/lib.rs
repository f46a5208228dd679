//! Simulated Apple devices — an iPhone and a Mac — that speak only the wire
//! protocols: they verify a signed enrollment profile, make their key and
//! CSR, get their identity by SCEP, check in (`Authenticate`, `TokenUpdate`,
//! the Mac's user channel, `CheckOut`) and answer commands on the command
//! channel, identified by `Mdm-Signature` or mutual TLS.
//!
//! A black-box client: it depends on the protocol crates and HTTP only, never
//! on the server's crates, so whatever passes against it passes against the
//! wire. The integration tests drive it; `mdm-sim` (the binary) uses it for
//! demos and as the load generator.
//!
//! ```no_run
//! # async fn demo(profile: Vec<u8>) -> Result<(), mdm_sim::SimError> {
//! use mdm_sim::{Channel, Device, DeviceFacts};
//! let mut phone = Device::new(DeviceFacts::iphone(1), reqwest::Client::new());
//! phone.enroll(&profile).await?;          // verify, SCEP, Authenticate, TokenUpdate
//! let answered = phone.poll(Channel::Device).await?; // Idle, then each command
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod android;
mod api;
mod checkin;
mod commands;
mod device;
mod error;
mod facts;
mod keys;
pub mod measure;
mod profile;
mod scep;
mod session;
mod wire;

#[cfg(test)]
mod profile_tests;
#[cfg(test)]
mod testing;

pub use api::{AdminApi, Downloaded, fetch_profile};
pub use commands::{Effect, InstalledProfile, ProfileStore, Reply, answer};
pub use device::{Behaviour, Channel, Device, DeviceState, Handled};
pub use error::{ProfileError, SimError};
pub use facts::{DeviceFacts, MacUser, Platform};
pub use keys::{KeyPool, cached_key, warm_up};
pub use profile::{ManagementProfile, MdmConfig, ScepConfig};
pub use scep::{Issued, enroll as scep_enroll, subject_name};
pub use wire::{Answer, Identity, IdentityMode, Prepared, device_client, mdm_signature, xml};

pub use mdm_apple;
pub use reqwest;
