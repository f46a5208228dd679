//! "My devices" in the self-service portal (R11): the signed-in user's own
//! devices with their statuses, and their registrations still in progress.
//! Only the user's own records, in their own tenant.

use crate::core::Core;
use crate::devices::{Device, DeviceQuery};
use crate::error::CoreResult;
use crate::funnel::FunnelStage;
use crate::registrations::{Registration, RegistrationQuery, RegistrationStatus};
use crate::tenants::Tenant;
use crate::users::User;
use time::OffsetDateTime;

/// A registration of the user that a device may still complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InProgress {
    pub registration: Registration,
    /// The furthest stage reached and when.
    pub stage: FunnelStage,
    pub since: OffsetDateTime,
}

/// What the "My devices" page shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MyDevices {
    /// Newest first.
    pub devices: Vec<Device>,
    /// Open registrations, newest first.
    pub in_progress: Vec<InProgress>,
}

/// How many devices and registrations the page lists.
const SHOWN: u32 = 100;

impl Core {
    /// The signed-in user's devices and open registrations.
    pub async fn my_devices(&self, tenant: &Tenant, user: &User) -> CoreResult<MyDevices> {
        let devices = self
            .store
            .devices(
                tenant.id,
                &DeviceQuery {
                    user_id: Some(user.id),
                    limit: Some(SHOWN),
                    ..DeviceQuery::default()
                },
            )
            .await?
            .items;
        let regs = self
            .store
            .registrations(
                tenant.id,
                &RegistrationQuery {
                    user_id: Some(user.id),
                    limit: Some(SHOWN),
                    ..RegistrationQuery::default()
                },
            )
            .await?
            .items;
        let in_progress = regs
            .into_iter()
            .filter(|r| r.status.is_open() && r.status != RegistrationStatus::Active)
            .map(|r| {
                let (stage, since) = FunnelStage::furthest(&r);
                InProgress {
                    registration: r,
                    stage,
                    since,
                }
            })
            .collect();
        Ok(MyDevices {
            devices,
            in_progress,
        })
    }
}
