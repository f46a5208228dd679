//! The domain of the MDM registration server.
//!
//! Tenants, administrators and API tokens, users, per-tenant user settings,
//! the versioned enrollment URL, the audit trail and background jobs. This
//! crate talks to the world only through the ports in [`ports`]: a
//! [`ports::Store`], a [`ports::Clock`] and a [`ports::Entropy`]. It never
//! names a database driver or a web framework.

pub mod app_register;
pub mod audit;
pub mod core;
pub mod enrollment;
pub mod error;
pub mod ids;
pub mod invite_mail;
pub mod invites;
pub mod jobs;
pub mod mail;
pub mod mail_templates;
pub mod pki;
pub mod ports;
pub mod profiles;
pub mod push;
pub mod registration;
pub mod regtokens;
pub mod scep;
pub mod secrets;
pub mod settings;
pub mod signin;
pub mod tenants;
pub mod throttle;
pub mod tokens;
pub mod users;
pub mod websession;

pub use crate::core::Core;
pub use error::{CoreError, StoreError};
pub use ids::{AdminId, CaId, ChallengeId, InvitationId, JobId, TenantId, TokenId, UserId};
