//! Newtyped identifiers. Every ID has its own type so a user id can never be
//! passed where a tenant id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered identifier (UUID v7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A tenant: the unit of isolation (R1).
    TenantId
);
uuid_id!(
    /// An end user who may register devices.
    UserId
);
uuid_id!(
    /// An administrator account (portal sign-in).
    AdminId
);
uuid_id!(
    /// An API token.
    TokenId
);
uuid_id!(
    /// A background job.
    JobId
);
uuid_id!(
    /// A certificate authority of a tenant.
    CaId
);
uuid_id!(
    /// A one-time SCEP challenge.
    ChallengeId
);
uuid_id!(
    /// One invitation email to one user (a resend is a new invitation).
    InvitationId
);
uuid_id!(
    /// One run of a directory sync.
    SyncRunId
);
uuid_id!(
    /// A device record (any platform); re-enrolments keep it.
    DeviceId
);
