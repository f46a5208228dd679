//! Builds the domain and its adapters from the configuration.

use crate::config::Config;
use anyhow::Context;
use mdm_core::Core;
use mdm_core::core::CoreSettings;
use mdm_core::pki::PkiSettings;
use mdm_core::ports::{SystemClock, SystemEntropy};
use mdm_core::profiles::AppleSettings;
use mdm_store::SqlStore;
use std::path::Path;
use std::sync::Arc;

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
        },
    };
    Ok(Core::new(
        Arc::new(store),
        Arc::new(SystemClock),
        Arc::new(SystemEntropy),
        vault,
        settings,
    )
    .with_directory(Arc::new(crate::ldap::LdapDirectory)))
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
