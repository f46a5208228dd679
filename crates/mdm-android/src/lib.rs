//! The Android agent API as bytes and types: our own device-policy agent
//! protocol (JSON over HTTPS under `/android/<version>/…`), its request
//! signatures, the QR provisioning payload, and the FCM HTTP v1 wake-up.
//!
//! No I/O, no async, no clock: times are parameters. Every JSON body is
//! size-bounded before parsing and validated after ([`Message`]); errors
//! never quote passwords, tokens or other values from a body.
//!
//! Server flow: [`route`] the request; for [`Endpoint::Register`] read a
//! [`RegisterRequest`], authenticate its [`Credential`], correlate with
//! [`identity_correlation`] and [`reuses_entry`], issue a certificate and
//! answer [`RegisterResponse::new`]. For every other endpoint parse
//! [`SignatureHeaders`], look up the device key, [`verify_request`] and
//! check the nonce, then read [`Checkin`], [`CommandResult`] or
//! [`EventsRequest`], or answer [`CommandsResponse`]. Wake devices with
//! [`wake_message`] and act on [`classify_fcm_response`]. Print
//! [`ProvisioningQr::to_json`] for company-owned devices.
//!
//! The domain stays free of this protocol: nothing here names Google's
//! Android Management API, so an AMAPI adapter can sit beside it.
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod agent;
mod command;
mod device;
mod error;
mod fcm;
mod fcm_error;
mod fingerprint;
mod identity;
mod message;
mod mode;
mod public_key;
mod qr;
mod qr_parse;
mod register;
mod signing;
mod validate;
mod version;

pub use agent::{
    CaCertificate, Checkin, CheckinResponse, DeviceEvent, DeviceStatus, EventKind, EventsRequest,
    InstalledApp, Inventory, MAX_APPS, MAX_CA_CERTIFICATES, MAX_EVENTS, ResetCause,
};
pub use command::{
    CaSelection, Command, CommandKind, CommandResult, CommandsResponse, MAX_COMMANDS_PER_FETCH,
    ResultStatus, WipeParams, WipeScope,
};
pub use device::{DeviceFacts, Identifiers, MAX_API_LEVEL, MIN_API_LEVEL, OsInfo};
pub use error::{MessageError, ValidationError};
pub use fcm::{
    AndroidConfig, FCM_BASE_URL, FCM_SCOPE, FcmMessage, FcmPriority, GOOGLE_TOKEN_URI,
    JWT_BEARER_GRANT, MAX_FCM_TTL, MAX_JWT_LIFETIME, SendRequest, ServiceAccountClaims,
    WAKE_COLLAPSE_KEY, WAKE_TYPE, jwt_assertion, send_path, token_request_body, wake_message,
};
pub use fcm_error::{FcmErrorCode, FcmOutcome, MAX_FCM_BACKOFF, RetryAfter, classify_fcm_response};
pub use fingerprint::{BadFingerprint, Fingerprint};
pub use identity::{
    API_ANDROID_9, API_ANDROID_10, API_ANDROID_12, API_ANDROID_13, CorrelationKey, CorrelationKind,
    can_read, identity_correlation, qr_registration_supported, removes_user_cas, reuses_entry,
    unreadable_identifiers,
};
pub use message::Message;
pub use mode::ManagementMode;
pub use public_key::{DevicePublicKey, MAX_DEVICE_KEY_BITS, MIN_DEVICE_KEY_BITS};
pub use qr::{
    AdminExtras, AgentPackage, MAX_QR_PAYLOAD_LEN, ProvisioningOptions, ProvisioningQr, QrError,
    SignatureChecksum, Wifi, WifiSecurity,
};
pub use register::{
    Credential, Credentials, Endpoints, MAX_CHECKIN_INTERVAL_SECS, MIN_CHECKIN_INTERVAL_SECS,
    RegisterRequest, RegisterResponse,
};
pub use signing::{
    DEFAULT_MAX_SKEW, DEVICE_HEADER, NONCE_HEADER, Nonce, RequestParts, RequestSigner,
    SIGNATURE_HEADER, SignatureHeaders, SigningError, TENANT_HEADER, TIMESTAMP_HEADER,
    VerifiedRequest, verify_request,
};
pub use version::{ApiVersion, Endpoint, PATH_ROOT, RouteError, UnknownVersion, route};
