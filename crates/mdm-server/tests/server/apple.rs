//! Apple enrolment end to end with the device simulator (`mdm-sim`): it
//! speaks only the wire protocols (signed profile, SCEP, check-in, command
//! channel) against the real `mdm serve`.

use crate::api::{Fixture, fixture};
use crate::client::expect;
use crate::ensure;
use crate::support::{Server, TestResult};
use mdm_sim::{AdminApi, Device, DeviceFacts, DeviceState, Platform, SimError};
use std::sync::Arc;

fn admin(s: &Server, f: &Fixture) -> AdminApi {
    AdminApi::new(&s.base, &f.slug, f.api.token.as_deref().unwrap_or_default())
}

/// A profile installed after its validity: the simulator gets a FAILURE
/// CertRep ("The SCEP server returned an invalid response", failInfo
/// badRequest), keeps nothing, and the audit trail names the registration
/// and why.
pub async fn late_profile_fails_at_scep(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let http = reqwest::Client::new();
    let late = admin(&s, &f)
        .issue_profile(&http, Platform::Iphone, None)
        .await
        .map_err(|e| e.to_string())?;
    let registration = late.registration.clone().ok_or("no X-Registration")?;
    crate::scep::expire_challenges(&s, &registration).await?;
    let mut phone = Device::new(DeviceFacts::iphone(1), http);
    let err = match phone.enroll(&late.signed).await {
        Ok(()) => return Err("a profile installed too late must be refused".into()),
        Err(e) => e,
    };
    ensure!(
        matches!(
            err,
            SimError::ScepFailure {
                fail_info: Some(mdm_scep::FailInfo::BadRequest)
            }
        ),
        "expected a FAILURE CertRep with badRequest, got {err:?}"
    );
    ensure!(
        err.to_string()
            .starts_with("The SCEP server returned an invalid response"),
        "message: {err}"
    );
    ensure!(
        phone.state() == DeviceState::Fresh && phone.identity_cert_der().is_none(),
        "nothing kept"
    );
    let audit = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?action=scep.refused",
                f.slug
            ))
            .await?,
        200,
        "audit",
    )?;
    let entry = audit["items"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["details"]["registration"] == registration.as_str())
        })
        .ok_or(format!("no refusal names {registration}: {audit}"))?;
    ensure!(
        entry["details"]["reason"] == "profile_expired",
        "reason: {entry}"
    );
    Ok(())
}
