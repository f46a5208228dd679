//! Registration: `POST /android/v1/register`, the one unsigned request. The
//! agent proves who the user is (password or one-time token), describes the
//! device, and hands over its public key; the server answers with a device
//! id, a certificate from the tenant CA and where to go next.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::device::DeviceFacts;
use crate::error::ValidationError;
use crate::identity::removes_user_cas;
use crate::message::Message;
use crate::mode::ManagementMode;
use crate::public_key::DevicePublicKey;
use crate::validate::{base64_bytes, is_url_safe, text, to_base64, token};
use crate::version::{ApiVersion, Endpoint};

/// Shortest check-in interval the server may ask for.
pub const MIN_CHECKIN_INTERVAL_SECS: u32 = 60;
/// Longest check-in interval the server may ask for (one day).
pub const MAX_CHECKIN_INTERVAL_SECS: u32 = 86_400;
/// Largest decoded certificate.
const MAX_DER_LEN: usize = 16 * 1024;
/// Most CA certificates in a chain.
const MAX_CHAIN_LEN: usize = 8;

/// The registration request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Chosen by the agent per registration attempt and re-sent unchanged on
    /// retries, so a retry after a lost response does not create a second
    /// entry (Android 10+ creates one per registration).
    pub attempt_id: Uuid,
    /// The tenant slug (from the QR extras or the app's configuration).
    pub tenant: String,
    /// Who registers.
    pub credentials: Credentials,
    /// The device.
    pub device: DeviceFacts,
    /// The FCM registration token, when the device has Google services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fcm_token: Option<String>,
    /// The key the device will sign every later request with.
    pub public_key: DevicePublicKey,
}

impl Message for RegisterRequest {
    const MAX_BODY_LEN: usize = 64 * 1024;

    fn validate(&self) -> Result<(), ValidationError> {
        tenant_slug(&self.tenant)?;
        self.credentials.kind()?;
        self.device.check()?;
        if let Some(fcm) = &self.fcm_token {
            fcm_token("fcm_token", fcm)?;
        }
        self.public_key.spki_der().map(|_| ())
    }
}

/// Checks a tenant slug as the core does: 2–63 characters of `a-z`, `0-9`
/// and `-`, starting with a letter, not ending with `-`.
pub(crate) fn tenant_slug(slug: &str) -> Result<(), ValidationError> {
    let ok = (2..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && slug.starts_with(|c: char| c.is_ascii_lowercase())
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::BadFormat {
            field: "tenant",
            reason: "2-63 characters of a-z, 0-9 and '-', starting with a letter",
        })
    }
}

/// Checks an FCM registration token: 1..=4096 bytes of `A-Za-z0-9-_:.~`.
pub(crate) fn fcm_token(field: &'static str, value: &str) -> Result<(), ValidationError> {
    token(
        field,
        value,
        4096,
        |b| is_url_safe(b) || b == b':',
        "FCM token characters are A-Z a-z 0-9 - _ : . ~",
    )
}

/// Email and password, or a one-time enrollment token: exactly one kind.
///
/// On the wire the three fields sit side by side so that "both" can be
/// detected and refused rather than silently preferring one.
/// `Debug` never shows the password or the token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The user's email (username), with [`Credentials::password`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's password (local or directory), with the email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A one-time enrollment token (QR extras, self-service QR, invitation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_token: Option<String>,
}

/// The credential a [`Credentials`] carries, once checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// Email and password.
    Password {
        /// The email as sent (the core normalises it).
        email: &'a str,
        /// The password.
        password: &'a str,
    },
    /// A one-time enrollment token.
    EnrollmentToken(&'a str),
}

impl Credentials {
    /// Email and password.
    pub fn password(email: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            email: Some(email.into()),
            password: Some(password.into()),
            enrollment_token: None,
        }
    }

    /// A one-time enrollment token.
    pub fn enrollment_token(token: impl Into<String>) -> Self {
        Self {
            enrollment_token: Some(token.into()),
            ..Self::default()
        }
    }

    /// The one credential carried, after checking lengths and characters:
    /// email at most 254 bytes with an `@`, password 1..=1024 bytes,
    /// token 1..=512 URL-safe characters.
    pub fn kind(&self) -> Result<Credential<'_>, ValidationError> {
        let has_password = self.email.is_some() || self.password.is_some();
        match (has_password, self.enrollment_token.as_deref()) {
            (true, Some(_)) => Err(ValidationError::BothCredentials),
            (false, None) => Err(ValidationError::NoCredentials),
            (false, Some(t)) => {
                token(
                    "credentials.enrollment_token",
                    t,
                    512,
                    is_url_safe,
                    "URL-safe characters only",
                )?;
                Ok(Credential::EnrollmentToken(t))
            }
            (true, None) => {
                let email = self.email.as_deref().ok_or(ValidationError::Missing {
                    field: "credentials.email",
                })?;
                let password = self.password.as_deref().ok_or(ValidationError::Missing {
                    field: "credentials.password",
                })?;
                text("credentials.email", email, 254)?;
                if !email.contains('@') || email.contains(char::is_whitespace) {
                    return Err(ValidationError::BadFormat {
                        field: "credentials.email",
                        reason: "expected an email address",
                    });
                }
                if password.is_empty() || password.len() > 1024 {
                    return Err(ValidationError::OutOfRange {
                        field: "credentials.password",
                        value: password.len().try_into().unwrap_or(i64::MAX),
                        min: 1,
                        max: 1024,
                    });
                }
                Ok(Credential::Password { email, password })
            }
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "enrollment_token",
                &self.enrollment_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password { email, .. } => f
                .debug_struct("Password")
                .field("email", email)
                .finish_non_exhaustive(),
            Self::EnrollmentToken(_) => f.write_str("EnrollmentToken(<redacted>)"),
        }
    }
}

/// Where a registered device talks to next (paths on the same origin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// `POST` check-ins.
    pub checkin: String,
    /// `GET` pending commands.
    pub commands: String,
    /// `POST` command results.
    pub command_result: String,
    /// `POST` device events.
    pub events: String,
    /// `GET` the policy.
    pub policy: String,
}

impl Endpoints {
    /// The paths of `version`.
    pub fn for_version(version: ApiVersion) -> Self {
        Self {
            checkin: Endpoint::Checkin.path(version),
            commands: Endpoint::Commands.path(version),
            command_result: Endpoint::CommandResult.path(version),
            events: Endpoint::Events.path(version),
            policy: Endpoint::Policy.path(version),
        }
    }

    fn check(&self) -> Result<(), ValidationError> {
        for (field, path) in [
            ("endpoints.checkin", &self.checkin),
            ("endpoints.commands", &self.commands),
            ("endpoints.command_result", &self.command_result),
            ("endpoints.events", &self.events),
            ("endpoints.policy", &self.policy),
        ] {
            text(field, path, 256)?;
            if !path.starts_with('/') {
                return Err(ValidationError::BadFormat {
                    field,
                    reason: "expected an absolute path",
                });
            }
        }
        Ok(())
    }
}

/// The answer to a successful registration.
///
/// Unknown fields are tolerated (unlike in requests), so a server can add
/// optional fields within a version without breaking installed agents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// The API version the device must use from now on.
    pub api_version: ApiVersion,
    /// The server-issued device id: the `X-MDM-Device` header from now on.
    pub device_id: Uuid,
    /// The device certificate from the tenant CA (base64 DER).
    pub certificate: String,
    /// The CA chain, issuing CA first (base64 DER each).
    pub ca_chain: Vec<String>,
    /// Seconds between periodic check-ins.
    pub checkin_interval_secs: u32,
    /// Where to go next.
    pub endpoints: Endpoints,
    /// Uninstall every user-installed CA certificate now and report the
    /// removed fingerprints (R16).
    pub remove_user_ca_certificates: bool,
}

impl RegisterResponse {
    /// The response for a device in `mode`: endpoints of the current
    /// version and the CA-removal instruction from [`removes_user_cas`].
    pub fn new(
        device_id: Uuid,
        certificate_der: &[u8],
        chain_der: &[Vec<u8>],
        checkin_interval_secs: u32,
        mode: ManagementMode,
    ) -> Self {
        Self {
            api_version: ApiVersion::CURRENT,
            device_id,
            certificate: to_base64(certificate_der),
            ca_chain: chain_der.iter().map(|c| to_base64(c)).collect(),
            checkin_interval_secs,
            endpoints: Endpoints::for_version(ApiVersion::CURRENT),
            remove_user_ca_certificates: removes_user_cas(mode),
        }
    }

    /// The device certificate's DER.
    pub fn certificate_der(&self) -> Result<Vec<u8>, ValidationError> {
        base64_bytes("certificate", &self.certificate, MAX_DER_LEN)
    }

    /// The chain's DER, issuing CA first.
    pub fn ca_chain_der(&self) -> Result<Vec<Vec<u8>>, ValidationError> {
        self.ca_chain
            .iter()
            .map(|c| base64_bytes("ca_chain", c, MAX_DER_LEN))
            .collect()
    }
}

impl Message for RegisterResponse {
    const MAX_BODY_LEN: usize = 256 * 1024;

    fn validate(&self) -> Result<(), ValidationError> {
        let cert = self.certificate_der()?;
        mdm_pki::cert_from_der(&cert).map_err(|_| ValidationError::BadFormat {
            field: "certificate",
            reason: "not a DER X.509 certificate",
        })?;
        crate::validate::count("ca_chain", self.ca_chain.len(), MAX_CHAIN_LEN)?;
        for der in self.ca_chain_der()? {
            mdm_pki::cert_from_der(&der).map_err(|_| ValidationError::BadFormat {
                field: "ca_chain",
                reason: "not a DER X.509 certificate",
            })?;
        }
        crate::validate::range(
            "checkin_interval_secs",
            i64::from(self.checkin_interval_secs),
            i64::from(MIN_CHECKIN_INTERVAL_SECS),
            i64::from(MAX_CHECKIN_INTERVAL_SECS),
        )?;
        self.endpoints.check()
    }
}
