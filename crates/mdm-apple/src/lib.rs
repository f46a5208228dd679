//! The Apple MDM protocol as bytes and types: check-in messages, the command
//! channel (reports and commands), the enrollment profile and its signing,
//! `Mdm-Signature` and forwarded client certificates, APNs payloads, and an
//! inspector for admins.
//!
//! No I/O, no async, no clock: times and identifiers (CommandUUIDs, profile
//! identifiers) are parameters. Every device plist is decoded within
//! [`MAX_BODY_LEN`], [`MAX_DEPTH`] and an expansion bound, and every message
//! keeps the bytes it was parsed from.
//!
//! Server flow: on the CheckInURL, [`verify_mdm_signature`] (or
//! [`parse_forwarded_client_cert`]) then [`CheckinMessage::parse`]; on the
//! ServerURL, [`CommandReport::parse`] and answer with [`Command::to_xml`] or
//! an empty body; wake devices with [`push_request`] and act on
//! [`classify_response`]; serve [`EnrollmentProfile::to_xml`] signed by
//! [`sign_profile`].
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod checkin;
mod client_cert;
mod codec;
mod command;
mod device_info;
mod enrollment;
mod error;
mod inspect;
mod profile;
mod push;
mod result;
mod signature;

pub use checkin::{
    Authenticate, CHECKIN_CONTENT_TYPE, CheckOut, CheckinMessage, DeclarativeManagement,
    GetBootstrapToken, GetToken, KNOWN_MESSAGE_TYPES, Raw, ReturnToService, SetBootstrapToken,
    TokenUpdate, UserAuthenticate, bootstrap_token_reply, user_authenticate_accept,
};
pub use client_cert::{
    CLIENT_CERT_HEADER, ClientCert, ClientCertError, MAX_CLIENT_CERT_HEADER_LEN,
    parse_forwarded_client_cert,
};
pub use codec::{MAX_BODY_LEN, MAX_CONTENT_BYTES, MAX_DEPTH, MAX_VALUES, decode_plist};
pub use command::{Command, CommandRequest};
pub use device_info::{DEFAULT_DEVICE_QUERIES, DeviceInfo};
pub use enrollment::{ChannelKind, Enrollment, EnrollmentId, SHARED_IPAD_USER_ID};
pub use error::{BuildError, ParseError, ParseErrorKind};
pub use inspect::{Inspection, inspect};
pub use profile::{
    ACCESS_RIGHTS_ALL, CAP_BOOTSTRAP_TOKEN, CAP_PER_USER_CONNECTIONS, EnrollmentProfile,
    MdmPayload, PROFILE_CONTENT_TYPE, PROFILE_UUID_NAMESPACE, Removal, ScepPayload,
    ServerCapabilities, ca_fingerprint, sign_profile,
};
pub use push::{
    APNS_HOST, PushError, PushExpiry, PushOutcome, PushRequest, alert_push_request,
    classify_response, push_request,
};
pub use result::{COMMAND_CONTENT_TYPE, CommandReport, CommandStatus, ErrorChainItem};
pub use signature::{
    MAX_SIGNATURE_HEADER_LEN, MDM_SIGNATURE_HEADER, SignatureError, SkewError, VerifiedDevice,
    check_skew, verify_mdm_signature,
};

/// Re-exported so callers name the same plist types.
pub use plist;
