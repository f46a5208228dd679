//! Android Enterprise management modes, as the agent reports them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How the agent manages the device: which DevicePolicyManager role it holds
/// and who owns the hardware. Decides which identifiers the agent can read,
/// what "wipe" means and whether user CA certificates are purged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagementMode {
    /// BYOD: a work profile on a personally-owned device; the agent is
    /// profile owner of the work profile only.
    PersonalWorkProfile,
    /// WPCO/COPE: a work profile on a company-owned device; the agent is an
    /// organization-owned profile owner.
    CompanyOwnedWorkProfile,
    /// Work-managed: the agent is device owner, the device is work-only.
    FullyManaged,
    /// Dedicated (kiosk/COSU): device owner, userless or locked to a task.
    Dedicated,
}

impl ManagementMode {
    /// Every mode.
    pub const ALL: [ManagementMode; 4] = [
        Self::PersonalWorkProfile,
        Self::CompanyOwnedWorkProfile,
        Self::FullyManaged,
        Self::Dedicated,
    ];

    /// The wire name (`company_owned_work_profile`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PersonalWorkProfile => "personal_work_profile",
            Self::CompanyOwnedWorkProfile => "company_owned_work_profile",
            Self::FullyManaged => "fully_managed",
            Self::Dedicated => "dedicated",
        }
    }

    /// The organization owns the hardware (every mode but BYOD).
    pub fn is_company_owned(self) -> bool {
        self != Self::PersonalWorkProfile
    }

    /// The agent is device owner (fully managed and dedicated).
    pub fn is_device_owner(self) -> bool {
        matches!(self, Self::FullyManaged | Self::Dedicated)
    }

    /// The agent manages a work profile (personal or company-owned).
    pub fn has_work_profile(self) -> bool {
        matches!(
            self,
            Self::PersonalWorkProfile | Self::CompanyOwnedWorkProfile
        )
    }
}

impl fmt::Display for ManagementMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
