//! The domain of the MDM registration server.
//!
//! Tenants, administrators and API tokens, users, per-tenant user settings,
//! the versioned enrollment URL, the audit trail and background jobs. This
//! crate talks to the world only through the ports in [`ports`]: a
//! [`ports::Store`], a [`ports::Clock`] and a [`ports::Entropy`]. It never
//! names a database driver or a web framework.

pub mod app_register;
/// A fieldless enum stored and serialised as fixed lowercase text, with
/// `as_str` and `parse`.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored text form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the stored text form.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod admin_sessions;
pub mod android;
pub mod apple_push;
pub mod audit;
pub mod authenticate;
pub mod checkin;
pub mod command_queue;
pub mod commands;
pub mod core;
pub mod devices;
pub mod directory;
pub mod enrollment;
pub mod error;
pub mod facilities;
pub mod funnel;
pub mod identity;
pub mod ids;
pub mod invite_mail;
pub mod invites;
pub mod jobs;
pub mod mail;
pub mod mail_templates;
pub mod my_devices;
pub mod pki;
pub mod ports;
pub mod profile_signer;
pub mod profiles;
pub mod push;
pub mod registration;
pub mod registrations;
pub mod regtokens;
pub mod reminder_send;
pub mod reminders;
pub mod renewal;
pub mod scep;
pub mod secrets;
pub mod settings;
pub mod signin;
pub mod signing_identity;
pub mod tenant_setup;
pub mod tenants;
pub mod throttle;
pub mod tokens;
pub mod user_channel;
pub mod users;
pub mod websession;

pub use crate::core::Core;
pub use error::{CoreError, StoreError};
pub use ids::{
    AdminId, CaId, ChallengeId, DeviceId, InvitationId, JobId, SyncRunId, TenantId, TokenId, UserId,
};
