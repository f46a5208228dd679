//! `mdm device …`: list a tenant's devices, retire or wipe one.

use clap::Subcommand;
use mdm_core::devices::{DeviceQuery, DeviceStatus, EraseOptions};
use mdm_core::registrations::DevicePlatform;
use mdm_core::tokens::Actor;
use mdm_core::{Core, CoreError, DeviceId};

#[derive(Subcommand, Debug)]
pub enum DeviceCmd {
    /// List devices, newest first.
    List {
        #[arg(long)]
        tenant: String,
        /// pending, active, mdm_disabled, retired, wiped, reset
        #[arg(long)]
        status: Option<String>,
        /// ios, macos, android
        #[arg(long)]
        platform: Option<String>,
    },
    /// Retire a device: remove management from it (RemoveProfile of the enrollment profile).
    Retire {
        #[arg(long)]
        tenant: String,
        id: DeviceId,
    },
    /// Wipe a device (EraseDevice); it shows as wiped once it acknowledges.
    Wipe {
        #[arg(long)]
        tenant: String,
        id: DeviceId,
        /// Six-digit Find My PIN (macOS).
        #[arg(long)]
        pin: Option<String>,
    },
    /// Re-send the enrollment profile (InstallProfile): the device renews its
    /// identity certificate in place. The server also does this by itself
    /// before certificates expire (`apple_renew_before_hours`).
    ResendProfile {
        #[arg(long)]
        tenant: String,
        id: DeviceId,
    },
}

pub async fn run(core: &Core, cmd: DeviceCmd) -> Result<(), CoreError> {
    let cli = Actor::Cli;
    match cmd {
        DeviceCmd::List {
            tenant,
            status,
            platform,
        } => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let mut q = DeviceQuery {
                status: status
                    .map(|s| {
                        DeviceStatus::parse(&s)
                            .ok_or(CoreError::invalid("status", "unknown status"))
                    })
                    .transpose()?,
                platform: platform
                    .map(|p| {
                        DevicePlatform::parse(&p)
                            .ok_or(CoreError::invalid("platform", "ios, macos or android"))
                    })
                    .transpose()?,
                limit: Some(1000),
                ..DeviceQuery::default()
            };
            println!("id\tplatform\tstatus\tudid\tserial\tname\tlast_seen");
            loop {
                let page = core.devices(&cli, &tenant, &q).await?;
                for d in &page.items {
                    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                    let seen = d.last_seen_at.map_or("-".to_string(), |t| t.to_string());
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{seen}",
                        d.id,
                        d.platform,
                        d.status,
                        or(&d.udid),
                        or(&d.serial_number),
                        or(&d.device_name)
                    );
                }
                match page.next {
                    Some(n) => q.after = Some(n),
                    None => break,
                }
            }
        }
        DeviceCmd::Retire { tenant, id } => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let cmd = core.retire_device(&cli, &tenant, id).await?;
            println!("device {id} retired; {} {} queued", cmd.kind(), cmd.id());
        }
        DeviceCmd::Wipe { tenant, id, pin } => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let options = EraseOptions {
                pin,
                ..EraseOptions::default()
            };
            let cmd = core.wipe_device(&cli, &tenant, id, &options).await?;
            println!("{} {} queued for device {id}", cmd.kind(), cmd.id());
        }
        DeviceCmd::ResendProfile { tenant, id } => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let cmd = core.resend_profile(&cli, &tenant, id).await?;
            println!(
                "InstallProfile {} queued for device {id} (a fresh enrollment profile)",
                cmd.command_uuid
            );
        }
    }
    Ok(())
}
