//! The server configuration: one typed struct, layered as defaults → TOML
//! file → `MDM_*` environment → command-line flags. Secrets may also come
//! from files (`secret_file`, `database_url_file`). Unknown keys are warned
//! about, never silently ignored.

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything the server reads from its environment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// URL devices and browsers use to reach the server (default `http://<listen>`).
    pub public_url: Option<String>,
    /// Where the SQLite database, the server secret and first-start credentials live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Read `database_url` from this file instead.
    pub database_url_file: Option<PathBuf>,
    /// Connections in the database pool.
    pub database_max_connections: u32,
    /// The server secret (64 hex characters) from which keys for encryption at
    /// rest are derived; default: generated into `data_dir/secret.key` on first start.
    pub secret: Option<String>,
    /// Read the server secret from this file instead.
    pub secret_file: Option<PathBuf>,
    /// Largest API request body, in bytes.
    pub max_body_bytes: usize,
    /// `text` or `json` logs.
    pub log_format: String,
    /// A tracing filter such as `info` or `mdm=debug,info`.
    pub log_level: String,
    /// Serve Prometheus metrics at `/metrics`.
    pub metrics: bool,
    /// Validity of issued device certificates, in days.
    pub cert_validity_days: i64,
    /// Validity of a new tenant CA, in days.
    pub ca_validity_days: i64,
    /// RSA key size of new tenant CAs (2048, 3072 or 4096).
    pub ca_key_bits: usize,
    /// The APNs topic of the Apple MDM push certificate (`com.apple.mgmt.…`),
    /// written into every management profile.
    pub mdm_topic: String,
    /// SMTP server for outgoing mail; unset: mail goes to `data_dir/outbox/`.
    pub smtp_host: Option<String>,
    /// Default 587 for `starttls`, 465 for `tls`, 25 for `none`.
    pub smtp_port: Option<u16>,
    /// `starttls` (required), `tls` (implicit TLS) or `none` (plain).
    pub smtp_security: SmtpSecurity,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    /// Read `smtp_password` from this file instead.
    pub smtp_password_file: Option<PathBuf>,
    /// PEM CA certificate to trust for the SMTP server (instead of the system's).
    pub smtp_ca_file: Option<PathBuf>,
    pub smtp_timeout_secs: u64,
    /// Sender of invitations, e.g. `MDM <mdm@example.com>`.
    pub mail_from: String,
    /// Server certificate chain (PEM, leaf first); with `tls_key_file`, serve HTTPS.
    pub tls_cert_file: Option<PathBuf>,
    /// The server certificate's private key (PEM).
    pub tls_key_file: Option<PathBuf>,
    /// APNs provider API base URL.
    pub apns_endpoint: String,
    /// The MDM push certificate (PEM) for APNs certificate authentication.
    pub apns_cert_file: Option<PathBuf>,
    /// The push certificate's private key (PEM).
    pub apns_cert_key_file: Option<PathBuf>,
    /// An APNs auth key (`.p8`) for token authentication, with `apns_key_id` and `apns_team_id`.
    pub apns_key_file: Option<PathBuf>,
    pub apns_key_id: Option<String>,
    pub apns_team_id: Option<String>,
    /// Trust only these CA certificates (PEM) for the APNs endpoint (a local test server).
    pub apns_ca_file: Option<PathBuf>,
    /// A Firebase service-account key file (JSON): enables FCM HTTP v1.
    pub fcm_service_account_file: Option<PathBuf>,
    /// FCM API base URL.
    pub fcm_endpoint: String,
    /// Replaces the service account's `token_uri`.
    pub fcm_token_uri: Option<String>,
    /// Trust only these CA certificates (PEM) for FCM and its token URI.
    pub fcm_ca_file: Option<PathBuf>,
    /// Push requests in flight at once, per provider.
    pub push_max_in_flight: usize,
    /// Timeout of one push request, in milliseconds.
    pub push_timeout_ms: u64,
    /// In-process retries of a push after 429/5xx/connection errors, before
    /// it goes back to the job queue.
    pub push_retries: u32,
    /// First back-off between those retries (doubled each time), in milliseconds.
    pub push_backoff_ms: u64,
    /// A TLS-terminating proxy sets RFC 9440 `Client-Cert` with the Apple
    /// device's certificate (and strips it from client requests). Only then
    /// is the header read; otherwise devices prove themselves with
    /// `Mdm-Signature` or mutual TLS to this server.
    pub trust_client_cert_header: bool,
    /// Manage macOS directory users: answer the registered user's
    /// `UserAuthenticate` instead of declining it (HTTP 410).
    pub apple_accept_user_authenticate: bool,
    /// What signs management profiles: `ecdsa` (a P-256 signer the tenant CA
    /// certifies) or `ca` (the CA's own RSA key).
    pub apple_profile_signer: mdm_core::profile_signer::ProfileSigning,
    /// Re-send the enrollment profile (renewing the device's identity
    /// certificate) when its certificate expires within this many hours.
    pub apple_renew_before_hours: i64,
    /// How long a re-sent profile's SCEP challenge stays valid, in hours
    /// (the InstallProfile waits in the queue until the device connects).
    pub apple_renewal_challenge_hours: i64,
    /// How often the server looks for certificates due for renewal, in seconds.
    pub apple_renewal_scan_secs: i64,
    /// How often the Android agent checks in, in seconds (60–86400).
    pub android_checkin_interval_secs: u32,
    /// The agent's device-admin component for QR provisioning
    /// (`com.example.agent/.AdminReceiver`).
    pub android_agent_component: Option<String>,
    /// Where a provisioning device downloads the agent APK (https://).
    pub android_agent_download_url: Option<String>,
    /// SHA-256 of the agent's signing certificate (64 hex digits, or URL-safe base64).
    pub android_agent_signature_checksum: Option<String>,
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    None,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("data"),
            database_url: None,
            database_url_file: None,
            database_max_connections: 16,
            secret: None,
            secret_file: None,
            max_body_bytes: 4 * 1024 * 1024,
            log_format: "text".into(),
            log_level: "info".into(),
            metrics: true,
            cert_validity_days: 365,
            ca_validity_days: 3650,
            ca_key_bits: 2048,
            mdm_topic: "com.apple.mgmt.External.unconfigured".into(),
            smtp_host: None,
            smtp_port: None,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: None,
            smtp_password: None,
            smtp_password_file: None,
            smtp_ca_file: None,
            smtp_timeout_secs: 30,
            mail_from: "MDM <mdm@localhost>".into(),
            tls_cert_file: None,
            tls_key_file: None,
            apns_endpoint: mdm_server::push::APNS_ENDPOINT.into(),
            apns_cert_file: None,
            apns_cert_key_file: None,
            apns_key_file: None,
            apns_key_id: None,
            apns_team_id: None,
            apns_ca_file: None,
            fcm_service_account_file: None,
            fcm_endpoint: mdm_android::FCM_BASE_URL.into(),
            fcm_token_uri: None,
            fcm_ca_file: None,
            push_max_in_flight: 64,
            push_timeout_ms: 10_000,
            push_retries: 2,
            push_backoff_ms: 200,
            trust_client_cert_header: false,
            apple_accept_user_authenticate: false,
            apple_profile_signer: mdm_core::profile_signer::ProfileSigning::Ecdsa,
            apple_renew_before_hours: 30 * 24,
            apple_renewal_challenge_hours: 72,
            apple_renewal_scan_secs: 3600,
            android_checkin_interval_secs: 900,
            android_agent_component: None,
            android_agent_download_url: None,
            android_agent_signature_checksum: None,
        }
    }
}

/// Flags that override every other layer.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

/// The loaded configuration and the warnings loading produced.
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Loads the configuration. `file` is the TOML file named by `--config` or
/// `MDM_CONFIG`; without one, `./mdm.toml` is read when it exists.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Loaded> {
    let default_file = Path::new("mdm.toml");
    let toml = match file {
        Some(f) if !f.exists() => bail!("configuration file {} does not exist", f.display()),
        Some(f) => Some(f),
        None => default_file.exists().then_some(default_file),
    };
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(f) = toml {
        fig = fig.merge(Toml::file(f));
    }
    // Text settings are taken verbatim: figment would otherwise read a hex
    // secret such as `0123…` as a number.
    let text: BTreeMap<String, String> = Env::prefixed("MDM_")
        .only(TEXT_KEYS)
        .iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let mut ignored = vec!["config", "log", "test_postgres_url"];
    ignored.extend_from_slice(TEXT_KEYS);
    let fig = fig
        .merge(Env::prefixed("MDM_").ignore(&ignored))
        .merge(Serialized::defaults(text))
        .merge(Serialized::defaults(overrides));
    let mut warnings = unknown_keys(&fig)?;
    let mut config: Config = fig.extract().context("invalid configuration")?;
    if let Some(path) = config.secret_file.take() {
        config.secret = Some(read_secret(&path)?);
    }
    if let Some(path) = config.smtp_password_file.take() {
        config.smtp_password = Some(read_secret(&path)?);
    }
    if let Some(path) = config.database_url_file.take() {
        config.database_url = Some(read_secret(&path)?);
    }
    if !["text", "json"].contains(&config.log_format.as_str()) {
        bail!(
            "log_format must be \"text\" or \"json\", not {:?}",
            config.log_format
        );
    }
    if ![2048, 3072, 4096].contains(&config.ca_key_bits) {
        bail!("ca_key_bits must be 2048, 3072 or 4096");
    }
    if !(1..=3650).contains(&config.cert_validity_days)
        || config.ca_validity_days <= config.cert_validity_days
    {
        bail!("cert_validity_days must be 1-3650 and shorter than ca_validity_days");
    }
    if config.apple_renew_before_hours < 1
        || config.apple_renew_before_hours >= config.cert_validity_days * 24
    {
        bail!(
            "apple_renew_before_hours must be at least 1 and shorter than cert_validity_days \
             ({} hours), or every renewed certificate would be due again at once",
            config.cert_validity_days * 24
        );
    }
    if config.apple_renewal_challenge_hours < 1 || config.apple_renewal_scan_secs < 1 {
        bail!("apple_renewal_challenge_hours and apple_renewal_scan_secs must be at least 1");
    }
    if !config.mdm_topic.starts_with("com.apple.mgmt.") {
        bail!("mdm_topic must be the push certificate's topic, starting with com.apple.mgmt.");
    }
    check_tls_and_push(&config)?;
    if config.database_max_connections == 0 {
        bail!("database_max_connections must be at least 1");
    }
    if let Some(url) = &config.public_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        bail!("public_url must start with http:// or https://");
    }
    if !config.listen.ip().is_loopback() && config.public_url.is_none() {
        warnings.push("listen is not a loopback address and public_url is unset: devices will be sent http:// URLs".into());
    }
    Ok(Loaded { config, warnings })
}

/// Keys whose environment values are text, never numbers or booleans.
const TEXT_KEYS: &[&str] = &[
    "listen",
    "mdm_topic",
    "apple_profile_signer",
    "public_url",
    "data_dir",
    "database_url",
    "database_url_file",
    "secret",
    "secret_file",
    "log_format",
    "log_level",
    "smtp_host",
    "smtp_security",
    "smtp_username",
    "smtp_password",
    "smtp_password_file",
    "smtp_ca_file",
    "mail_from",
    "tls_cert_file",
    "tls_key_file",
    "apns_endpoint",
    "apns_cert_file",
    "apns_cert_key_file",
    "apns_key_file",
    "apns_key_id",
    "apns_team_id",
    "apns_ca_file",
    "fcm_service_account_file",
    "fcm_endpoint",
    "fcm_token_uri",
    "fcm_ca_file",
    "android_agent_component",
    "android_agent_download_url",
    "android_agent_signature_checksum",
];

/// TLS and push settings that only make sense together.
fn check_tls_and_push(config: &Config) -> anyhow::Result<()> {
    if config.tls_cert_file.is_some() != config.tls_key_file.is_some() {
        bail!("tls_cert_file and tls_key_file go together: set both or neither");
    }
    if config.apns_cert_file.is_some() != config.apns_cert_key_file.is_some() {
        bail!("apns_cert_file and apns_cert_key_file go together: set both or neither");
    }
    if config.apns_cert_file.is_some() && config.apns_key_file.is_some() {
        bail!(
            "choose one APNs authentication: apns_cert_file (push certificate) or apns_key_file (.p8 token key)"
        );
    }
    if config.apns_key_file.is_some()
        && (config.apns_key_id.is_none() || config.apns_team_id.is_none())
    {
        bail!("apns_key_file needs apns_key_id (the key's 10-character id) and apns_team_id");
    }
    for (key, url) in [
        ("apns_endpoint", &config.apns_endpoint),
        ("fcm_endpoint", &config.fcm_endpoint),
    ] {
        if !url.starts_with("https://") {
            bail!("{key} must be an https:// URL");
        }
    }
    if config.push_max_in_flight == 0 || config.push_timeout_ms == 0 {
        bail!("push_max_in_flight and push_timeout_ms must be at least 1");
    }
    Ok(())
}

fn unknown_keys(fig: &Figment) -> anyhow::Result<Vec<String>> {
    let known: BTreeSet<String> = match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => BTreeSet::new(),
    };
    let merged: figment::value::Dict = fig.extract().context("invalid configuration")?;
    Ok(merged
        .keys()
        .filter(|k| !known.contains(k.as_str()))
        .map(|k| format!("unknown configuration key '{k}' is ignored (from the TOML file or an MDM_{} variable)", k.to_uppercase()))
        .collect())
}

fn read_secret(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.trim().to_string())
}

impl Config {
    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("mdm.db").display()
            ),
        }
    }

    /// The public base URL, defaulting to `http(s)://<listen>`.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("{}://{}", self.scheme(), self.listen))
    }

    /// `https` when the server terminates TLS itself.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert_file.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The configuration as TOML with secrets (and passwords in URLs) redacted.
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.secret.is_some() {
            shown.secret = Some("<redacted>".into());
        }
        if shown.smtp_password.is_some() {
            shown.smtp_password = Some("<redacted>".into());
        }
        shown.database_url = Some(redact_url(&self.database_url()));
        shown.public_url = Some(self.public_url());
        toml::to_string_pretty(&shown)
            .unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

/// Replaces the password of `scheme://user:password@host…` with `<redacted>`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:pw@h/db"),
            "postgres://u:<redacted>@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://data/mdm.db"), "sqlite://data/mdm.db");
    }
}
