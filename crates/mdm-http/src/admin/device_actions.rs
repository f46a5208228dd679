//! The device lifecycle actions — retire, wipe, lock, delete, re-send the
//! enrollment profile — each behind a confirmation page that says what will
//! happen, and each written to the audit trail by its use case.

use super::{Devices, FormData, Nav, Posted, Signed, fail, tenant_page};
use crate::AppState;
use crate::error::FORM_INVALID;
use crate::pages::{render, see_other};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use mdm_core::devices::EraseOptions;
use mdm_core::{CoreError, DeviceId};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/admin/t/{slug}/devices/{id}/{action}",
        get(confirm_page).post(run),
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Retire,
    Wipe,
    Lock,
    Delete,
    Resend,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "retire" => Action::Retire,
            "wipe" => Action::Wipe,
            "lock" => Action::Lock,
            "delete" => Action::Delete,
            "resend" => Action::Resend,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Action::Retire => "retire",
            Action::Wipe => "wipe",
            Action::Lock => "lock",
            Action::Delete => "delete",
            Action::Resend => "resend",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Action::Retire => "Retire device",
            Action::Wipe => "Wipe device",
            Action::Lock => "Lock device",
            Action::Delete => "Delete device record",
            Action::Resend => "Re-send enrollment profile",
        }
    }

    fn warning(self) -> &'static str {
        match self {
            Action::Retire => {
                "The device is told to remove its management profile, and with it every profile, app and certificate this server installed. The record is kept as Retired. The user can register the device again later."
            }
            Action::Wipe => {
                "The device is erased to factory settings: ALL data on it is lost, including the user's own. This cannot be undone."
            }
            Action::Lock => {
                "The device locks its screen at once; the user unlocks it with their passcode."
            }
            Action::Delete => {
                "The record is removed from the inventory with its channels and queued commands; its registrations, certificates and audit entries stay. Only a device that is no longer managed (retired, wiped, MDM disabled) can be deleted."
            }
            Action::Resend => {
                "A fresh enrollment profile for this device is sent over MDM (the same identifiers, so it replaces the installed one); installing it renews the device's identity certificate in place. If the device does not install it in time, nothing changes on the device and the server tries again before the certificate expires."
            }
        }
    }
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage {
    title: &'static str,
    nav: Nav,
    device: String,
    id: String,
    action: &'static str,
    warning: &'static str,
    options: bool,
    lock: bool,
    pin_error: Option<String>,
    message_error: Option<String>,
}

async fn confirm_page(
    State(s): State<AppState>,
    signed: Signed,
    Path((slug, id, action)): Path<(String, String, String)>,
) -> Response {
    let (tenant, nav) = match tenant_page(&s, &signed, &slug, "devices").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (Ok(id), Some(action)) = (id.parse::<DeviceId>(), Action::parse(&action)) else {
        return fail(CoreError::NotFound("device action"));
    };
    match s.core.device(&signed.actor(), &tenant, id).await {
        Ok(d) => render(StatusCode::OK, &confirm(nav, &d.device, action)),
        Err(e) => fail(e),
    }
}

fn confirm(nav: Nav, d: &mdm_core::devices::Device, action: Action) -> ConfirmPage {
    ConfirmPage {
        title: action.title(),
        nav,
        device: super::devices::device_name(d),
        id: d.id.to_string(),
        action: action.name(),
        warning: action.warning(),
        options: matches!(action, Action::Wipe | Action::Lock),
        lock: action == Action::Lock,
        pin_error: None,
        message_error: None,
    }
}

fn options(form: &FormData) -> EraseOptions {
    let opt = |k: &str| Some(form.get(k).to_string()).filter(|v| !v.is_empty());
    EraseOptions {
        pin: opt("pin"),
        message: opt("message"),
        phone_number: opt("phone_number"),
    }
}

async fn run(
    State(s): State<AppState>,
    Path((_, id, action)): Path<(String, String, String)>,
    Posted {
        signed,
        form,
        tenant,
        nav,
        ..
    }: Posted<Devices>,
) -> Response {
    let (Ok(id), Some(action)) = (id.parse::<DeviceId>(), Action::parse(&action)) else {
        return fail(CoreError::NotFound("device action"));
    };
    let actor = signed.actor();
    let device = match s.core.device(&actor, &tenant, id).await {
        Ok(d) => d.device,
        Err(e) => return fail(e),
    };
    if form.get("confirm") != "yes" {
        return render(FORM_INVALID, &confirm(nav, &device, action));
    }
    let opts = options(&form);
    let done = match action {
        Action::Retire => s.core.retire_device(&actor, &tenant, id).await.map(|_| ()),
        Action::Wipe => s
            .core
            .wipe_device(&actor, &tenant, id, &opts)
            .await
            .map(|_| ()),
        Action::Lock => s
            .core
            .lock_device(&actor, &tenant, id, &opts)
            .await
            .map(|_| ()),
        Action::Delete => s.core.delete_device(&actor, &tenant, id).await,
        Action::Resend => s.core.resend_profile(&actor, &tenant, id).await.map(|_| ()),
    };
    let base = format!("/admin/t/{}/devices", tenant.slug);
    match done {
        Ok(()) if action == Action::Delete => see_other(&format!("{base}?deleted=1"), None),
        Ok(()) => see_other(&format!("{base}/{id}?done={}", action.name()), None),
        Err(CoreError::Invalid { field, message }) => {
            let mut page = confirm(nav, &device, action);
            if field == "message" || field == "phone_number" {
                page.message_error = Some(message);
            } else {
                page.pin_error = Some(message);
            }
            render(FORM_INVALID, &page)
        }
        Err(e) => fail(e),
    }
}
