//! What a simulated device is: its platform and the facts it reports in
//! `Authenticate` and `DeviceInformation`.

use mdm_apple::plist::{Dictionary, Value};

/// Which kind of device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// An iPhone (iOS): IMEI/MEID, UnlockToken, no user channel.
    Iphone,
    /// A Mac (macOS): a user channel for its one managed user.
    Mac,
}

/// The local user a Mac manages on its user channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacUser {
    /// `UserID`: the user's GUID.
    pub user_id: String,
    /// `UserShortName`.
    pub short_name: String,
    /// `UserLongName`.
    pub long_name: String,
}

/// Hardware and software facts of one device.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceFacts {
    /// iPhone or Mac.
    pub platform: Platform,
    /// `UDID`.
    pub udid: String,
    /// `SerialNumber`.
    pub serial_number: String,
    /// `DeviceName`.
    pub device_name: String,
    /// `Model` (`MQ8L2LL/A`, `Mac14,7`).
    pub model: String,
    /// `ModelName` (`iPhone`, `MacBook Pro`).
    pub model_name: String,
    /// `ProductName` (`iPhone15,2`, `Mac14,7`).
    pub product_name: String,
    /// `OSVersion`.
    pub os_version: String,
    /// `BuildVersion`.
    pub build_version: String,
    /// `IMEI` (iPhone).
    pub imei: Option<String>,
    /// `MEID` (iPhone).
    pub meid: Option<String>,
    /// `WiFiMAC`.
    pub wifi_mac: String,
    /// `BluetoothMAC`.
    pub bluetooth_mac: String,
    /// `DeviceCapacity` in GB.
    pub capacity_gb: f64,
    /// The managed user (Mac).
    pub user: Option<MacUser>,
}

fn serial(seed: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789CDFGHJKLMNPQRTVWXY";
    let mut n = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
    (0..10)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            n ^= seed.rotate_left(17);
            c
        })
        .collect()
}

fn mac_address(seed: u64, salt: u8) -> String {
    let b = seed.to_be_bytes();
    format!("f0:18:{salt:02x}:{:02x}:{:02x}:{:02x}", b[5], b[6], b[7])
}

fn upper_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase()
}

impl DeviceFacts {
    /// An iPhone 14 Pro on iOS 18.1; `seed` makes serial, IMEI and MACs distinct.
    pub fn iphone(seed: u64) -> Self {
        let udid = format!("00008120-{:016X}", uuid::Uuid::new_v4().as_u128() as u64);
        Self {
            platform: Platform::Iphone,
            udid,
            serial_number: serial(seed),
            device_name: format!("iPhone {seed}"),
            model: "MQ0D3LL/A".into(),
            model_name: "iPhone".into(),
            product_name: "iPhone15,2".into(),
            os_version: "18.1".into(),
            build_version: "22B83".into(),
            imei: Some(format!(
                "35 {:06} {:06} 1",
                seed % 1_000_000,
                (seed / 7) % 1_000_000
            )),
            meid: Some(format!("35{:012}", seed % 1_000_000_000_000)),
            wifi_mac: mac_address(seed, 0x01),
            bluetooth_mac: mac_address(seed, 0x02),
            capacity_gb: 128.0,
            user: None,
        }
    }

    /// A MacBook Pro on macOS 15.1 with one local user.
    pub fn mac(seed: u64) -> Self {
        Self {
            platform: Platform::Mac,
            udid: upper_uuid(),
            serial_number: serial(seed ^ 0xAC),
            device_name: format!("Mac {seed}"),
            model: "Mac14,7".into(),
            model_name: "MacBook Pro".into(),
            product_name: "Mac14,7".into(),
            os_version: "15.1".into(),
            build_version: "24B83".into(),
            imei: None,
            meid: None,
            wifi_mac: mac_address(seed, 0x11),
            bluetooth_mac: mac_address(seed, 0x12),
            capacity_gb: 512.0,
            user: Some(MacUser {
                user_id: upper_uuid(),
                short_name: format!("user{seed}"),
                long_name: format!("User {seed}"),
            }),
        }
    }

    /// The `User-Agent` its MDM client sends.
    pub fn user_agent(&self) -> &'static str {
        match self.platform {
            Platform::Iphone => "MDM/1.0",
            Platform::Mac => "MDM-OSX/1.0 mdmclient/1.0",
        }
    }

    /// The answer to one `DeviceInformation` query, `None` when this device
    /// does not know it (a real device leaves such queries out).
    pub fn query(&self, key: &str) -> Option<Value> {
        let s = |v: &str| Some(Value::String(v.to_owned()));
        match key {
            "UDID" => s(&self.udid),
            "SerialNumber" => s(&self.serial_number),
            "DeviceName" => s(&self.device_name),
            "Model" => s(&self.model),
            "ModelName" => s(&self.model_name),
            "ProductName" => s(&self.product_name),
            "OSVersion" => s(&self.os_version),
            "BuildVersion" => s(&self.build_version),
            "IMEI" => self.imei.as_deref().and_then(s),
            "MEID" => self.meid.as_deref().and_then(s),
            "WiFiMAC" => s(&self.wifi_mac),
            "BluetoothMAC" => s(&self.bluetooth_mac),
            "DeviceCapacity" => Some(Value::Real(self.capacity_gb)),
            "AvailableDeviceCapacity" => Some(Value::Real(self.capacity_gb * 0.6)),
            "IsSupervised" => Some(Value::Boolean(false)),
            "IsActivationLockEnabled" => Some(Value::Boolean(false)),
            "HostName" if self.platform == Platform::Mac => {
                s(&format!("{}.local", self.device_name.replace(' ', "-")))
            }
            _ => None,
        }
    }

    /// `QueryResponses` for `queries`.
    pub fn query_responses(&self, queries: &[String]) -> Dictionary {
        let mut d = Dictionary::new();
        for q in queries {
            if let Some(v) = self.query(q) {
                d.insert(q.clone(), v);
            }
        }
        d
    }
}
