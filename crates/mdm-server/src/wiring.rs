//! Builds the domain and its adapters from the configuration.

use crate::config::Config;
use anyhow::Context;
use mdm_core::Core;
use mdm_core::core::CoreSettings;
use mdm_core::pki::PkiSettings;
use mdm_core::ports::{SystemClock, SystemEntropy};
use mdm_core::profiles::AppleSettings;
use mdm_core::renewal::RenewalSettings;
use mdm_server::push::{
    ApnsAuth, ApnsClient, ApnsSettings, Delivery, FcmClient, FcmSettings, ProviderPusher,
    ProviderToken,
};
use mdm_server::tls::ServerTls;
use mdm_store::SqlStore;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Opens the database named by the configuration and applies migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<SqlStore> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
    }
    open_url(&url, config.database_max_connections).await
}

/// Opens and migrates the database at `url`.
pub async fn open_url(url: &str, max_connections: u32) -> anyhow::Result<SqlStore> {
    let shown = crate::config::redact_url(url);
    let store = SqlStore::connect(url, max_connections)
        .await
        .with_context(|| format!("cannot open database {shown}"))?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate database {shown}"))?;
    Ok(store)
}

/// The domain on a store, with the vault keyed by the server secret.
pub fn core(store: SqlStore, config: &Config) -> anyhow::Result<Core> {
    let vault = mdm_pki::Vault::from_secret(&server_secret(config)?)
        .map_err(|e| anyhow::anyhow!("vault: {e}"))?;
    let settings = CoreSettings {
        public_url: config.public_url(),
        pki: PkiSettings {
            cert_validity_days: config.cert_validity_days,
            ca_validity_days: config.ca_validity_days,
            ca_key_bits: config.ca_key_bits,
        },
        apple: AppleSettings {
            mdm_topic: config.mdm_topic.clone(),
            tls_anchor_der: tls_anchor(config)?,
            accept_user_authenticate: config.apple_accept_user_authenticate,
            profile_signing: config.apple_profile_signer,
            renewal: RenewalSettings {
                renew_before: time::Duration::hours(config.apple_renew_before_hours),
                challenge_lifetime: time::Duration::hours(config.apple_renewal_challenge_hours),
                scan_every: time::Duration::seconds(config.apple_renewal_scan_secs),
            },
        },
    };
    Ok(Core::new(
        Arc::new(store),
        Arc::new(SystemClock),
        Arc::new(SystemEntropy),
        vault,
        settings,
    )
    .with_android(android_settings(config)?)
    .with_mailer(crate::mailer::from_config(config)?)
    .with_directory(Arc::new(mdm_server::ldap::LdapDirectory)))
}

/// The Android agent settings; the agent package only when all three keys are set.
fn android_settings(config: &Config) -> anyhow::Result<mdm_core::android::AndroidSettings> {
    let interval = config.android_checkin_interval_secs;
    if !(mdm_android::MIN_CHECKIN_INTERVAL_SECS..=mdm_android::MAX_CHECKIN_INTERVAL_SECS)
        .contains(&interval)
    {
        anyhow::bail!("android_checkin_interval_secs must be between 60 and 86400");
    }
    let agent = match (
        &config.android_agent_component,
        &config.android_agent_download_url,
        &config.android_agent_signature_checksum,
    ) {
        (None, None, None) => None,
        (Some(component), Some(url), Some(checksum)) => {
            let signature_checksum = mdm_android::SignatureChecksum::from_hex(checksum)
                .or_else(|_| mdm_android::SignatureChecksum::parse(checksum))
                .map_err(|e| anyhow::anyhow!("android_agent_signature_checksum: {e}"))?;
            Some(mdm_android::AgentPackage {
                component_name: component.clone(),
                download_url: url.clone(),
                signature_checksum,
            })
        }
        _ => anyhow::bail!(
            "android_agent_component, android_agent_download_url and \
             android_agent_signature_checksum go together: set all three or none"
        ),
    };
    Ok(mdm_core::android::AndroidSettings {
        checkin_interval_secs: interval,
        agent,
        ..mdm_core::android::AndroidSettings::default()
    })
}

/// The HTTPS listener's certificate, when `tls_cert_file` is set.
pub fn server_tls(config: &Config) -> anyhow::Result<Option<ServerTls>> {
    match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Ok(Some(ServerTls::load(cert, key)?)),
        _ => Ok(None),
    }
}

/// The anchor profiles carry: the server chain's self-signed root, if any.
fn tls_anchor(config: &Config) -> anyhow::Result<Option<Vec<u8>>> {
    match &config.tls_cert_file {
        Some(cert) => mdm_server::tls::anchor_of_file(cert),
        None => Ok(None),
    }
}

/// The push adapters the configuration asks for (none: every push is logged).
pub fn pusher(config: &Config) -> anyhow::Result<ProviderPusher> {
    let delivery = Delivery {
        max_in_flight: config.push_max_in_flight,
        timeout: Duration::from_millis(config.push_timeout_ms),
        retries: config.push_retries,
        backoff: Duration::from_millis(config.push_backoff_ms),
        ..Delivery::default()
    };
    let read = |path: &Path, what: &str| {
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
    };
    let optional = |path: &Option<std::path::PathBuf>, what: &str| {
        path.as_deref().map(|p| read(p, what)).transpose()
    };
    let auth = match (
        &config.apns_cert_file,
        &config.apns_cert_key_file,
        &config.apns_key_file,
    ) {
        (Some(cert), Some(key), _) => Some(ApnsAuth::Certificate {
            cert_pem: read(cert, "apns_cert_file")?,
            key_pem: read(key, "apns_cert_key_file")?,
        }),
        (_, _, Some(p8)) => Some(ApnsAuth::Token(ProviderToken::from_p8(
            &read(p8, "apns_key_file")?,
            config.apns_key_id.as_deref().unwrap_or_default(),
            config.apns_team_id.as_deref().unwrap_or_default(),
        )?)),
        _ => None,
    };
    let apns = match auth {
        Some(auth) => Some(ApnsClient::new(ApnsSettings {
            endpoint: config.apns_endpoint.clone(),
            auth,
            ca_pem: optional(&config.apns_ca_file, "apns_ca_file")?,
            delivery: delivery.clone(),
        })?),
        None => None,
    };
    if let Some(topic) = apns
        .as_ref()
        .and_then(|a| a.certificate())
        .and_then(|c| c.topic.as_deref())
        && topic != config.mdm_topic
    {
        tracing::warn!(certificate_topic = topic, mdm_topic = %config.mdm_topic,
            "the push certificate's topic differs from mdm_topic: APNs will refuse every push; set mdm_topic to the certificate's topic");
    }
    let fcm = match &config.fcm_service_account_file {
        Some(file) => Some(FcmClient::new(FcmSettings {
            service_account_json: read(file, "fcm_service_account_file")?,
            endpoint: config.fcm_endpoint.clone(),
            token_uri: config.fcm_token_uri.clone(),
            ca_pem: optional(&config.fcm_ca_file, "fcm_ca_file")?,
            delivery,
        })?),
        None => None,
    };
    Ok(ProviderPusher { apns, fcm })
}

/// The server secret: from the configuration, or `data_dir/secret.key`,
/// generated (256 random bits, mode 0600) on first start.
pub fn server_secret(config: &Config) -> anyhow::Result<[u8; 32]> {
    let text = match &config.secret {
        Some(s) => s.clone(),
        None => {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("cannot create data directory {}", config.data_dir.display())
            })?;
            let path = config.data_dir.join("secret.key");
            if !path.exists() {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
                write_private(&path, &format!("{}\n", hex::encode(key)))?;
            }
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
        }
    };
    let bytes = hex::decode(text.trim()).context("the server secret must be 64 hex characters")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("the server secret must be 64 hex characters (32 bytes)"))
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What the admin settings page shows of mail and push delivery.
pub fn facilities(config: &Config, pusher: &ProviderPusher) -> mdm_core::facilities::Facilities {
    use mdm_core::facilities::{Facilities, PushCredential};
    let mail = match &config.smtp_host {
        Some(host) => format!(
            "SMTP {host}:{} ({:?}{})",
            config
                .smtp_port
                .map_or_else(|| "default port".into(), |p| p.to_string()),
            config.smtp_security,
            if config.smtp_username.is_some() {
                ", authenticated"
            } else {
                ""
            }
        ),
        None => format!(
            "no SMTP server: messages are written to {}",
            config.data_dir.join("outbox").display()
        ),
    };
    let apns = match &pusher.apns {
        Some(a) => match a.certificate() {
            Some(cert) => PushCredential {
                kind: Some("push certificate".into()),
                detail: cert.topic.clone().unwrap_or_else(|| cert.subject.clone()),
                expires_at: Some(cert.not_after),
            },
            None => PushCredential {
                kind: Some("provider token (.p8 key; such keys do not expire)".into()),
                detail: format!(
                    "key {} of team {}",
                    config.apns_key_id.as_deref().unwrap_or("?"),
                    config.apns_team_id.as_deref().unwrap_or("?")
                ),
                expires_at: None,
            },
        },
        None => PushCredential::default(),
    };
    let fcm = match &pusher.fcm {
        Some(f) => PushCredential {
            kind: Some("service account (the key file states no expiry)".into()),
            detail: format!("project {}", f.project_id()),
            expires_at: None,
        },
        None => PushCredential::default(),
    };
    Facilities {
        mail_configured: config.smtp_host.is_some(),
        mail,
        mail_from: config.mail_from.clone(),
        apns,
        fcm,
    }
}
