//! The domain of the MDM registration server.
//!
//! Tenants, administrators and API tokens, users, per-tenant user settings,
//! the versioned enrollment URL, the audit trail and background jobs. This
//! crate talks to the world only through the ports in [`ports`]: a
//! [`ports::Store`], a [`ports::Clock`] and a [`ports::Entropy`]. It never
//! names a database driver or a web framework.

pub mod audit;
pub mod core;
pub mod directory;
pub mod enrollment;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod pki;
pub mod ports;
pub mod profiles;
pub mod push;
pub mod scep;
pub mod secrets;
pub mod settings;
pub mod signin;
pub mod tenants;
pub mod tokens;
pub mod users;

pub use crate::core::Core;
pub use error::{CoreError, StoreError};
pub use ids::{AdminId, CaId, ChallengeId, JobId, SyncRunId, TenantId, TokenId, UserId};
