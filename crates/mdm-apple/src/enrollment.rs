//! Who sent a message: the identity keys every check-in and report carries,
//! and the normalized enrollment ID derived from them.

use std::fmt;

use crate::codec::Fields;
use crate::error::ParseErrorKind;

/// The `UserID` a Shared iPad sends on the user channel; the user is then
/// named by `UserShortName` (the Managed Apple Account).
pub const SHARED_IPAD_USER_ID: &str = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF";

/// Which channel an [`EnrollmentId`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// A device channel named by its `UDID`.
    Device,
    /// The device channel of a User Enrollment (BYOD), named by `EnrollmentID`.
    UserEnrollmentDevice,
    /// A macOS user channel: `UDID:UserID`.
    User,
    /// A Shared iPad user: `UDID:UserShortName`.
    SharedIpadUser,
    /// The user channel of a User Enrollment: `EnrollmentID:EnrollmentUserID`.
    UserEnrollmentUser,
}

/// The normalized enrollment ID: one per MDM channel, stable for the life of
/// the enrollment. Device channel `UDID` (or `EnrollmentID` for User
/// Enrollment); user channel `<device>:<user>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnrollmentId {
    kind: ChannelKind,
    device: String,
    user: Option<String>,
}

impl EnrollmentId {
    /// Resolves the ID from a message's identity keys, or `None` when neither
    /// `UDID` nor `EnrollmentID` is present (or both are empty).
    pub fn resolve(e: &Enrollment) -> Option<Self> {
        let nonempty =
            |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
        let (device, ue) = match (nonempty(&e.udid), nonempty(&e.enrollment_id)) {
            (Some(udid), _) => (udid, false),
            (None, Some(eid)) => (eid, true),
            (None, None) => return None,
        };
        let user_id = nonempty(&e.user_id);
        let short = nonempty(&e.user_short_name);
        let (kind, user) = match (user_id, nonempty(&e.enrollment_user_id)) {
            (Some(uid), _) if uid.eq_ignore_ascii_case(SHARED_IPAD_USER_ID) && short.is_some() => {
                (ChannelKind::SharedIpadUser, short)
            }
            (Some(uid), _) => (ChannelKind::User, Some(uid)),
            (None, Some(euid)) => (ChannelKind::UserEnrollmentUser, Some(euid)),
            (None, None) if ue => (ChannelKind::UserEnrollmentDevice, None),
            (None, None) => (ChannelKind::Device, None),
        };
        Some(Self { kind, device, user })
    }

    /// A device-channel ID for `udid`.
    pub fn device(udid: impl Into<String>) -> Self {
        Self {
            kind: ChannelKind::Device,
            device: udid.into(),
            user: None,
        }
    }

    /// Which channel this is.
    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// The device part (`UDID` or `EnrollmentID`).
    pub fn device_part(&self) -> &str {
        &self.device
    }

    /// The user part of a user channel.
    pub fn user_part(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether this names a user channel.
    pub fn is_user_channel(&self) -> bool {
        self.user.is_some()
    }

    /// The ID of the device channel this channel belongs to (itself for a
    /// device channel).
    pub fn device_channel(&self) -> Self {
        let kind = match self.kind {
            ChannelKind::UserEnrollmentDevice | ChannelKind::UserEnrollmentUser => {
                ChannelKind::UserEnrollmentDevice
            }
            _ => ChannelKind::Device,
        };
        Self {
            kind,
            device: self.device.clone(),
            user: None,
        }
    }
}

impl fmt::Display for EnrollmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(user) => write!(f, "{}:{}", self.device, user),
            None => f.write_str(&self.device),
        }
    }
}

/// The identity keys of a check-in message or command report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrollment {
    /// The normalized ID, resolved when the message was parsed.
    pub id: EnrollmentId,
    /// `UDID` (absent for User Enrollment).
    pub udid: Option<String>,
    /// `EnrollmentID` (User Enrollment).
    pub enrollment_id: Option<String>,
    /// `UserID` (macOS user channel: the local or directory user's GUID).
    pub user_id: Option<String>,
    /// `UserShortName`.
    pub user_short_name: Option<String>,
    /// `UserLongName`.
    pub user_long_name: Option<String>,
    /// `EnrollmentUserID` (User Enrollment user channel).
    pub enrollment_user_id: Option<String>,
}

impl Enrollment {
    /// Reads the identity keys; `UDID` or `EnrollmentID` is required.
    pub(crate) fn take(f: &mut Fields) -> Result<Self, ParseErrorKind> {
        let mut e = Self {
            id: EnrollmentId::device(String::new()),
            udid: f.string("UDID")?,
            enrollment_id: f.string("EnrollmentID")?,
            user_id: f.string("UserID")?,
            user_short_name: f.string("UserShortName")?,
            user_long_name: f.string("UserLongName")?,
            enrollment_user_id: f.string("EnrollmentUserID")?,
        };
        e.id =
            EnrollmentId::resolve(&e).ok_or(ParseErrorKind::MissingKey("UDID or EnrollmentID"))?;
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(
        udid: Option<&str>,
        eid: Option<&str>,
        uid: Option<&str>,
        short: Option<&str>,
    ) -> Option<EnrollmentId> {
        let s = |v: Option<&str>| v.map(str::to_owned);
        EnrollmentId::resolve(&Enrollment {
            id: EnrollmentId::device(""),
            udid: s(udid),
            enrollment_id: s(eid),
            user_id: s(uid),
            user_short_name: s(short),
            user_long_name: None,
            enrollment_user_id: None,
        })
    }

    #[test]
    fn resolution_table() {
        let id = ids(Some("U1"), None, None, None).unwrap();
        assert_eq!(
            (id.to_string(), id.kind()),
            ("U1".into(), ChannelKind::Device)
        );
        let id = ids(Some("U1"), None, Some("G1"), Some("bob")).unwrap();
        assert_eq!(
            (id.to_string(), id.kind()),
            ("U1:G1".into(), ChannelKind::User)
        );
        assert_eq!(id.device_channel(), EnrollmentId::device("U1"));
        let id = ids(Some("U1"), None, Some(SHARED_IPAD_USER_ID), Some("a@b.c")).unwrap();
        assert_eq!(id.to_string(), "U1:a@b.c");
        let id = ids(None, Some("E1"), None, None).unwrap();
        assert_eq!(id.kind(), ChannelKind::UserEnrollmentDevice);
        assert!(ids(None, None, Some("G1"), None).is_none());
        assert!(ids(Some(""), None, None, None).is_none());
    }
}
