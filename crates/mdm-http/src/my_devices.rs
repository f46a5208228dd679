//! The portal's "My devices" page (`/portal/<slug>/devices`): the signed-in
//! user's devices with their statuses in words, and the registrations they
//! have in progress with what to do next.

use crate::AppState;
use crate::pages::{error_page, render, see_other};
use crate::portal::{base, session, tenant};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mdm_core::devices::{Device, DeviceStatus};
use mdm_core::funnel::FunnelStage;
use mdm_core::invite_mail::human_time;
use mdm_core::my_devices::InProgress;
use mdm_core::registrations::DevicePlatform;

struct DeviceLine {
    name: String,
    platform: &'static str,
    status: &'static str,
    status_code: &'static str,
    os: Option<String>,
    serial: Option<String>,
    enrolled: Option<String>,
    last_seen: Option<String>,
}

struct RegistrationLine {
    stage: &'static str,
    stage_code: &'static str,
    since: String,
    platform: Option<&'static str>,
    next: &'static str,
}

#[derive(Template)]
#[template(path = "my_devices.html")]
struct MyDevicesPage<'a> {
    title: &'static str,
    email: &'a str,
    base: String,
    devices: Vec<DeviceLine>,
    in_progress: Vec<RegistrationLine>,
}

fn platform_name(p: DevicePlatform) -> &'static str {
    match p {
        DevicePlatform::Ios => "iPhone or iPad",
        DevicePlatform::Macos => "Mac",
        DevicePlatform::Android => "Android",
    }
}

fn status_name(s: DeviceStatus) -> &'static str {
    match s {
        DeviceStatus::Pending => "Registering",
        // R18: a reset device shows active until it registers again.
        DeviceStatus::Active | DeviceStatus::Reset => "Active",
        DeviceStatus::MdmDisabled => "Management turned off",
        DeviceStatus::Retired => "Retired",
        DeviceStatus::Wiped => "Wiped",
    }
}

fn device_line(d: &Device) -> DeviceLine {
    let name = [&d.device_name, &d.model_name, &d.product_name, &d.model]
        .into_iter()
        .find_map(|n| n.clone().filter(|n| !n.trim().is_empty()))
        .unwrap_or_else(|| platform_name(d.platform).to_string());
    let status = match d.status {
        DeviceStatus::Reset => DeviceStatus::Active,
        s => s,
    };
    DeviceLine {
        name,
        platform: platform_name(d.platform),
        status: status_name(d.status),
        status_code: status.as_str(),
        os: d.os_version.clone(),
        serial: d.serial_number.clone(),
        enrolled: d.enrolled_at.map(human_time),
        last_seen: d.last_seen_at.map(human_time),
    }
}

fn registration_line(r: &InProgress) -> RegistrationLine {
    let (stage, next) = match r.stage {
        FunnelStage::Invited => (
            "Invited",
            "Open the link in your invitation email on the device.",
        ),
        FunnelStage::PinUsed | FunnelStage::SignedIn => (
            "Signed in",
            "Download the management profile on the device (or in the client app).",
        ),
        FunnelStage::ProfileDownloaded => (
            "Profile downloaded",
            "Install the downloaded profile in Settings before it expires; after that, start again.",
        ),
        FunnelStage::CertificateIssued | FunnelStage::CheckedIn => {
            ("Installing", "The device is finishing its registration.")
        }
        FunnelStage::Active => ("Active", ""),
    };
    RegistrationLine {
        stage,
        stage_code: r.stage.as_str(),
        since: human_time(r.since),
        platform: r.registration.platform.map(platform_name),
        next,
    }
}

pub(crate) async fn page(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let t = match tenant(&s, &slug).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let user = match session(&s, &t, &headers).await {
        Ok(Some((sess, u))) if !sess.must_set_password => u,
        Ok(_) => return see_other(&base(&t), None),
        Err(r) => return r,
    };
    match s.core.my_devices(&t, &user).await {
        Ok(mine) => render(
            StatusCode::OK,
            &MyDevicesPage {
                title: "My devices",
                email: &user.email,
                base: base(&t),
                devices: mine.devices.iter().map(device_line).collect(),
                in_progress: mine.in_progress.iter().map(registration_line).collect(),
            },
        ),
        Err(e) => error_page(e),
    }
}
