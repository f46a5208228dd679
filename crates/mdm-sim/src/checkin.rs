//! The check-in messages a device sends: `Authenticate`, `TokenUpdate` (the
//! device channel and a Mac's user channel) with what a device puts in them.

use mdm_apple::plist::{Dictionary, Value};

use crate::device::{Channel, Device, Enrolled};
use crate::facts::Platform;

impl Device {
    pub(crate) fn identity_keys(&self, channel: Channel) -> Dictionary {
        let mut d = Dictionary::new();
        d.insert("UDID".into(), self.facts.udid.as_str().into());
        if let (Channel::User, Some(u)) = (channel, &self.facts.user) {
            d.insert("UserID".into(), u.user_id.as_str().into());
            d.insert("UserShortName".into(), u.short_name.as_str().into());
            d.insert("UserLongName".into(), u.long_name.as_str().into());
        }
        d
    }

    pub(crate) fn authenticate_message(&self, e: &Enrolled) -> Dictionary {
        let f = &self.facts;
        let mut d = self.identity_keys(Channel::Device);
        d.insert("MessageType".into(), "Authenticate".into());
        d.insert("Topic".into(), e.profile.mdm.topic.as_str().into());
        for (k, v) in [
            ("BuildVersion", Some(&f.build_version)),
            ("OSVersion", Some(&f.os_version)),
            ("ProductName", Some(&f.product_name)),
            ("SerialNumber", Some(&f.serial_number)),
            ("DeviceName", Some(&f.device_name)),
            ("Model", Some(&f.model)),
            ("ModelName", Some(&f.model_name)),
            ("IMEI", f.imei.as_ref()),
            ("MEID", f.meid.as_ref()),
        ] {
            if let Some(v) = v {
                d.insert(k.into(), v.as_str().into());
            }
        }
        d
    }

    pub(crate) fn token_update_message(&self, e: &Enrolled, channel: Channel) -> Dictionary {
        let mut d = self.identity_keys(channel);
        d.insert("MessageType".into(), "TokenUpdate".into());
        d.insert("Topic".into(), e.profile.mdm.topic.as_str().into());
        d.insert("PushMagic".into(), e.push_magic.as_str().into());
        let token = match channel {
            Channel::Device => e.token.clone(),
            Channel::User => e.user_token.clone().unwrap_or_default(),
        };
        d.insert("Token".into(), Value::Data(token));
        match (channel, self.facts.platform) {
            (Channel::Device, Platform::Iphone) => {
                if let Some(t) = &e.unlock_token {
                    d.insert("UnlockToken".into(), Value::Data(t.clone()));
                }
            }
            (Channel::Device, Platform::Mac) => {
                d.insert("AwaitingConfiguration".into(), Value::Boolean(false));
            }
            (Channel::User, _) => {
                d.insert("NotOnConsole".into(), Value::Boolean(false));
            }
        }
        d
    }
}
