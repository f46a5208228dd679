//! A minimal Apple device for the server tests: it downloads a profile,
//! enrols its identity over SCEP, and speaks check-in and the command
//! channel with real plists signed by `Mdm-Signature` (detached CMS over
//! the exact body, made the way devices make it).

use crate::api::Fixture;
use crate::client::expect;
use crate::ensure;
use crate::support::Server;
use mdm_apple::plist::{Dictionary, Value};
use mdm_pki::RsaKey;
use mdm_pki::cms::content_info::ContentInfo;
use mdm_pki::cms::signed_data::SignedData;
use mdm_pki::der::{Any, Decode, Encode};
use mdm_pki::x509_cert::Certificate;
use serde_json::{Value as Json, json};

/// The shared test servers push to the local APNs, whose topic their profiles carry.
pub const TOPIC: &str = crate::fake_apns::TOPIC;

/// A downloaded profile: its registration and SCEP challenge.
pub struct Profile {
    pub registration: String,
    pub challenge: String,
}

/// Reads the SCEP challenge out of a signed profile.
fn challenge_of(signed: &[u8]) -> Result<String, String> {
    let content = mdm_pki::verify_signed_data(signed, None, &[]).map_err(|e| e.to_string())?;
    let root: Dictionary =
        mdm_apple::plist::from_bytes(&content.content).map_err(|e| e.to_string())?;
    root.get("PayloadContent")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter().filter_map(Value::as_dictionary).find(|p| {
                p.get("PayloadType").and_then(Value::as_string) == Some("com.apple.security.scep")
            })
        })
        .and_then(|p| p.get("PayloadContent"))
        .and_then(Value::as_dictionary)
        .and_then(|c| c.get("Challenge"))
        .and_then(Value::as_string)
        .map(str::to_string)
        .ok_or("no SCEP challenge in the profile".into())
}

async fn signed_profile(
    s: &Server,
    f: &Fixture,
    path: &str,
    body: Option<Json>,
) -> Result<Profile, String> {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", s.base))
        .bearer_auth(f.api.token.as_deref().unwrap_or_default());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    ensure!(
        res.status().as_u16() == 201,
        "profile {path}: HTTP {}",
        res.status()
    );
    let registration = res
        .headers()
        .get("x-registration")
        .and_then(|v| v.to_str().ok())
        .ok_or("no X-Registration")?
        .to_string();
    let signed = res.bytes().await.map_err(|e| e.to_string())?;
    Ok(Profile {
        registration,
        challenge: challenge_of(&signed)?,
    })
}

/// A fresh enrollment profile for `platform` (and `user`).
pub async fn profile(
    s: &Server,
    f: &Fixture,
    platform: &str,
    user: Option<&str>,
) -> Result<Profile, String> {
    let path = format!("/api/v1/tenants/{}/enrollment-profiles", f.slug);
    signed_profile(
        s,
        f,
        &path,
        Some(json!({ "platform": platform, "user_id": user })),
    )
    .await
}

/// The re-enrolment profile of a device (R17).
pub async fn reenroll_profile(s: &Server, f: &Fixture, device: &str) -> Result<Profile, String> {
    let path = format!("/api/v1/tenants/{}/devices/{device}/reenroll", f.slug);
    signed_profile(s, f, &path, None).await
}

/// A simulated device with its SCEP identity.
#[derive(Clone)]
pub struct Dev {
    pub base: String,
    pub slug: String,
    pub udid: String,
    pub key: std::sync::Arc<RsaKey>,
    pub cert: Certificate,
    /// `Some(user GUID)` to speak for the macOS user channel.
    pub user: Option<(String, String, String)>,
}

fn to_xml(d: &Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = mdm_apple::plist::to_writer_xml(&mut out, &Value::Dictionary(d.clone()));
    out
}

/// A dictionary of string keys.
pub fn dict(pairs: &[(&str, Value)]) -> Dictionary {
    let mut d = Dictionary::new();
    for (k, v) in pairs {
        d.insert((*k).to_string(), v.clone());
    }
    d
}

pub fn text(v: &str) -> Value {
    Value::String(v.to_string())
}

impl Dev {
    /// Takes a profile, enrols over SCEP (does not check in).
    pub async fn enrol(s: &Server, f: &Fixture, p: &Profile, udid: &str) -> Result<Self, String> {
        let (key, cert) = crate::scep::enroll_key(s, f, &p.challenge, &p.registration).await?;
        Ok(Self {
            base: s.base.clone(),
            slug: f.slug.clone(),
            udid: udid.to_string(),
            key: std::sync::Arc::new(key),
            cert,
            user: None,
        })
    }

    /// `Mdm-Signature` for `body`: sign attached, then drop the content.
    pub fn sign(&self, body: &[u8]) -> Result<String, String> {
        self.sign_at(body, time::OffsetDateTime::now_utc())
    }

    /// `Mdm-Signature` for `body` with signing time `now`.
    pub fn sign_at(&self, body: &[u8], now: time::OffsetDateTime) -> Result<String, String> {
        let attached = mdm_pki::sign_attached(body, &*self.key, &self.cert, &[], now)
            .map_err(|e| e.to_string())?;
        let mut ci = ContentInfo::from_der(&attached).map_err(|e| e.to_string())?;
        let mut sd: SignedData = ci
            .content
            .decode_as()
            .map_err(|e: mdm_pki::der::Error| e.to_string())?;
        sd.encap_content_info.econtent = None;
        ci.content = Any::encode_from(&sd).map_err(|e| e.to_string())?;
        Ok(crate::scep::base64_encode(
            &ci.to_der().map_err(|e| e.to_string())?,
        ))
    }

    /// PUTs `body` to `/mdm/<slug>/<endpoint>` with `signature`; returns status and body.
    pub async fn put(
        &self,
        endpoint: &str,
        body: Vec<u8>,
        signature: Option<String>,
    ) -> Result<(u16, Vec<u8>), String> {
        let mut req = reqwest::Client::new()
            .put(format!("{}/mdm/{}/{endpoint}", self.base, self.slug))
            .header("content-type", "application/x-apple-aspen-mdm-checkin")
            .body(body);
        if let Some(sig) = signature {
            req = req.header("Mdm-Signature", sig);
        }
        let res = req.send().await.map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        Ok((
            status,
            res.bytes().await.map_err(|e| e.to_string())?.to_vec(),
        ))
    }

    /// Adds the identity keys of this device (and its user channel).
    fn with_identity(&self, mut d: Dictionary) -> Dictionary {
        d.insert("UDID".into(), text(&self.udid));
        if let Some((guid, short, long)) = &self.user {
            d.insert("UserID".into(), text(guid));
            d.insert("UserShortName".into(), text(short));
            d.insert("UserLongName".into(), text(long));
        }
        d
    }

    /// A signed request of this device.
    pub async fn send(&self, endpoint: &str, d: Dictionary) -> Result<(u16, Vec<u8>), String> {
        let body = to_xml(&self.with_identity(d));
        let sig = self.sign(&body)?;
        self.put(endpoint, body, Some(sig)).await
    }

    pub async fn checkin(&self, message: &str, mut extra: Dictionary) -> Result<u16, String> {
        extra.insert("MessageType".into(), text(message));
        Ok(self.send("checkin", extra).await?.0)
    }

    pub async fn authenticate(&self) -> Result<u16, String> {
        let d = dict(&[
            ("Topic", text(TOPIC)),
            ("SerialNumber", text("C02TEST")),
            ("ProductName", text("iPhone15,2")),
            ("OSVersion", text("17.0")),
        ]);
        self.checkin("Authenticate", d).await
    }

    pub async fn token_update(&self) -> Result<u16, String> {
        let d = dict(&[
            ("Topic", text(TOPIC)),
            ("Token", Value::Data(vec![0xab; 32])),
            ("PushMagic", text("4E2C6F1A-PUSH-MAGIC")),
            ("UnlockToken", Value::Data(vec![7; 64])),
        ]);
        self.checkin("TokenUpdate", d).await
    }

    /// Sends a command report; returns the status and the next command (if any).
    pub async fn report(
        &self,
        status: &str,
        uuid: Option<&str>,
        mut extra: Dictionary,
    ) -> Result<(u16, Option<mdm_apple::Command>), String> {
        extra.insert("Status".into(), text(status));
        if let Some(u) = uuid {
            extra.insert("CommandUUID".into(), text(u));
        }
        let (code, body) = self.send("connect", extra).await?;
        let cmd = if code == 200 && !body.is_empty() {
            Some(mdm_apple::Command::parse(&body).map_err(|e| format!("command: {e}"))?)
        } else {
            None
        };
        Ok((code, cmd))
    }

    pub async fn idle(&self) -> Result<(u16, Option<mdm_apple::Command>), String> {
        self.report("Idle", None, Dictionary::new()).await
    }

    /// Acknowledges `uuid`; returns the next command.
    pub async fn ack(&self, uuid: &str) -> Result<Option<mdm_apple::Command>, String> {
        let (code, next) = self
            .report("Acknowledged", Some(uuid), Dictionary::new())
            .await?;
        ensure!(code == 200, "ack {uuid}: {code}");
        Ok(next)
    }
}

/// A device taken through profile → SCEP → Authenticate → TokenUpdate; its
/// device id.
pub async fn enrolled(
    s: &Server,
    f: &Fixture,
    platform: &str,
    user: Option<&str>,
) -> Result<(Dev, String), String> {
    let p = profile(s, f, platform, user).await?;
    let udid = format!(
        "{:08X}-0000-4000-8000-{}",
        rand_u32(),
        crate::support::uuid_hex().to_uppercase()
    );
    let dev = Dev::enrol(s, f, &p, &udid).await?;
    ensure!(dev.authenticate().await? == 200, "Authenticate refused");
    ensure!(dev.token_update().await? == 200, "TokenUpdate refused");
    let id = device_id(f, &udid).await?;
    Ok((dev, id))
}

fn rand_u32() -> u32 {
    let h = crate::support::uuid_hex();
    u32::from_str_radix(&h[..8], 16).unwrap_or(7)
}

/// The device id of `udid` in the tenant.
pub async fn device_id(f: &Fixture, udid: &str) -> Result<String, String> {
    let page = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/devices?limit=1000", f.slug))
            .await?,
        200,
        "devices",
    )?;
    page["items"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["udid"] == udid))
        .and_then(|d| d["id"].as_str())
        .map(str::to_string)
        .ok_or(format!("no device with UDID {udid}"))
}

/// GET of a device (with its enrollments).
pub async fn device(f: &Fixture, id: &str) -> Result<Json, String> {
    expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/devices/{id}", f.slug))
            .await?,
        200,
        "device",
    )
}

/// Runs one SQL statement with text parameters against the server's database.
pub async fn exec_sql(s: &Server, sql: &str, params: &[&str]) -> Result<(), String> {
    use sqlx::Connection;
    if s.database_url.starts_with("sqlite") {
        let mut c = sqlx::sqlite::SqliteConnection::connect(&s.database_url)
            .await
            .map_err(|e| e.to_string())?;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
        for p in params {
            q = q.bind(*p);
        }
        q.execute(&mut c).await.map_err(|e| e.to_string())?;
    } else {
        let mut c = sqlx::postgres::PgConnection::connect(&s.database_url)
            .await
            .map_err(|e| e.to_string())?;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
        for p in params {
            q = q.bind(*p);
        }
        q.execute(&mut c).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
