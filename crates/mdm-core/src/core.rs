//! The use cases, on one struct that holds the ports. The methods live in
//! the module of the thing they act on (`tenants.rs`, `users.rs`, …).

use crate::directory::{Directory, NoDirectory};
use crate::error::{CoreError, CoreResult};
use crate::ids::TenantId;
use crate::mail::{Mailer, NoMailer};
use crate::pki::{LoadedCa, PkiSettings};
use crate::ports::{Clock, Entropy, Store};
use crate::profiles::AppleSettings;
use crate::push::{LogPusher, Pusher};
use crate::secrets::{hash_password, random_token};
use crate::tenants::{NewTenant, Tenant};
use crate::tokens::{Actor, IssuedToken, NewToken, Scope};
use mdm_pki::Vault;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// The domain's entry point: every use case is a method on it. A handle on
/// shared parts: the HTTP layer clones it for every request (each extractor
/// takes the state), so a clone is one reference count, not a copy of the
/// settings' strings.
#[derive(Clone)]
pub struct Core(Arc<CoreParts>);

/// What a [`Core`] holds; reached through `Deref`.
#[derive(Clone)]
pub struct CoreParts {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) entropy: Arc<dyn Entropy>,
    /// Base URL devices and browsers reach the server at, without trailing `/`.
    pub(crate) public_url: String,
    /// Seals CA keys and other secrets at rest.
    pub(crate) vault: Arc<Vault>,
    pub(crate) pki: PkiSettings,
    pub(crate) apple: AppleSettings,
    /// Opened tenant CAs with the time they were last confirmed active. A CA
    /// never changes, so only rotation can make an entry stale, and an entry
    /// is re-confirmed against the store after [`HOT_CACHE_TTL`].
    pub(crate) ca_cache: Arc<HotCache<TenantId, Arc<LoadedCa>>>,
    /// Opened profile signers by tenant (see [`crate::profile_signer`]).
    pub(crate) signer_cache: Arc<HotCache<TenantId, Arc<crate::profile_signer::LoadedSigner>>>,
    /// Uploaded profile-signing identities by tenant, or that it has none
    /// (see [`crate::signing_identity`]).
    pub(crate) identity_cache:
        Arc<HotCache<TenantId, Option<Arc<crate::signing_identity::LoadedIdentity>>>>,
    /// Tenants by slug for the device-facing hot paths (slugs never change).
    pub(crate) slug_cache: Arc<HotCache<String, Tenant>>,
    /// Device identity certificates seen in `Mdm-Signature` headers, kept
    /// parsed (a certificate is immutable; trust in it is checked per request).
    pub(crate) signers: Arc<mdm_pki::SignerCache>,
    /// Wakes devices (APNs; later FCM). [`LogPusher`] until one is configured.
    pub(crate) pusher: Arc<dyn Pusher>,
    /// Delivers invitation mail. [`NoMailer`] (every send fails) until one is configured.
    pub(crate) mailer: Arc<dyn Mailer>,
    /// Reaches tenants' LDAP directories. [`NoDirectory`] until one is wired in.
    pub(crate) directory: Arc<dyn Directory>,
    /// Apple channels seen since the last flush, by (tenant, enrollment id).
    pub(crate) seen: Arc<Mutex<HashMap<(TenantId, String), OffsetDateTime>>>,
    /// The delivery settings as administrators see them.
    pub(crate) facilities: Arc<crate::facilities::Facilities>,
    /// Android agent and QR provisioning settings.
    pub(crate) android: crate::android::AndroidSettings,
}

/// How many device certificates [`Core::signers`] keeps (≈ 3 KiB each with
/// their parsed keys: about 60 MiB when full, for a fleet that large).
pub(crate) const SIGNER_CACHE_CAPACITY: usize = 20_000;

/// How long a cached tenant or CA is trusted before it is read again.
pub(crate) const HOT_CACHE_TTL: time::Duration = time::Duration::seconds(10);

/// A small per-process cache of values that are re-read from the store
/// after [`HOT_CACHE_TTL`]; only for data that changes rarely and whose
/// change may take that long to reach every replica.
pub(crate) struct HotCache<K, V> {
    entries: Mutex<HashMap<K, (OffsetDateTime, V)>>,
}

impl<K, V> Default for HotCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> HotCache<K, V> {
    /// The value and when it was stored, fresh or not.
    pub(crate) fn get(&self, key: &K) -> Option<(OffsetDateTime, V)> {
        self.entries.lock().ok().and_then(|e| e.get(key).cloned())
    }

    /// The value if it was stored less than [`HOT_CACHE_TTL`] before `now`.
    pub(crate) fn fresh(&self, key: &K, now: OffsetDateTime) -> Option<V> {
        self.get(key)
            .filter(|(at, _)| now - *at < HOT_CACHE_TTL)
            .map(|(_, v)| v)
    }

    pub(crate) fn forget(&self, key: &K) {
        if let Ok(mut e) = self.entries.lock() {
            e.remove(key);
        }
    }

    pub(crate) fn put(&self, key: K, now: OffsetDateTime, value: V) {
        if let Ok(mut e) = self.entries.lock() {
            e.insert(key, (now, value));
        }
    }
}

impl std::ops::Deref for Core {
    type Target = CoreParts;

    fn deref(&self) -> &CoreParts {
        &self.0
    }
}

/// Settings the domain takes from the configuration.
#[derive(Clone, Debug)]
pub struct CoreSettings {
    /// Base URL devices and browsers reach the server at.
    pub public_url: String,
    pub pki: PkiSettings,
    pub apple: AppleSettings,
}

/// What the first start of an empty server created, to show the operator once.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub tenant: Tenant,
    pub admin_email: String,
    pub admin_password: String,
    pub operator_token: IssuedToken,
}

impl Core {
    /// Wires the domain to its ports.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
        vault: Vault,
        settings: CoreSettings,
    ) -> Self {
        Self(Arc::new(CoreParts {
            store,
            clock,
            entropy,
            public_url: settings.public_url.trim_end_matches('/').to_string(),
            vault: Arc::new(vault),
            pki: settings.pki,
            apple: settings.apple,
            ca_cache: Arc::default(),
            signer_cache: Arc::default(),
            identity_cache: Arc::default(),
            slug_cache: Arc::default(),
            signers: Arc::new(mdm_pki::SignerCache::new(SIGNER_CACHE_CAPACITY)),
            pusher: Arc::new(LogPusher),
            mailer: Arc::new(NoMailer),
            directory: Arc::new(NoDirectory),
            seen: Arc::default(),
            facilities: Arc::default(),
            android: crate::android::AndroidSettings::default(),
        }))
    }

    /// The parts, to replace one before the core is shared.
    pub(crate) fn parts_mut(&mut self) -> &mut CoreParts {
        Arc::make_mut(&mut self.0)
    }

    /// Uses these Android agent settings instead of the defaults.
    pub fn with_android(mut self, android: crate::android::AndroidSettings) -> Self {
        self.parts_mut().android = android;
        self
    }

    /// Uses `pusher` to wake devices instead of logging pushes.
    pub fn with_pusher(mut self, pusher: Arc<dyn Pusher>) -> Self {
        self.parts_mut().pusher = pusher;
        self
    }

    /// Uses `mailer` to deliver mail.
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.parts_mut().mailer = mailer;
        self
    }

    /// Uses `directory` to reach tenants' LDAP servers (sync and sign-in).
    pub fn with_directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.parts_mut().directory = directory;
        self
    }

    /// The current time from the clock port.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The public base URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Succeeds when the store answers (readiness).
    pub async fn ready(&self) -> CoreResult<()> {
        Ok(self.store.ping().await?)
    }

    /// Refreshes stale planner statistics (see `HealthStore::refresh_statistics`);
    /// the tables refreshed.
    pub async fn refresh_statistics(&self) -> CoreResult<Vec<String>> {
        Ok(self.store.refresh_statistics().await?)
    }

    pub(crate) fn token(&self, bytes: usize) -> String {
        random_token(self.entropy.as_ref(), bytes)
    }

    pub(crate) fn hash_password(&self, password: &str) -> CoreResult<String> {
        hash_password(self.entropy.as_ref(), password).map_err(CoreError::Store)
    }

    /// On a server with no administrator yet: creates the operator
    /// administrator `admin@mdm.local` with a random password, an operator API
    /// token and a `default` tenant, and returns them so they can be shown
    /// once. Returns `None` when an administrator exists.
    pub async fn bootstrap(&self) -> CoreResult<Option<Bootstrap>> {
        if self.store.count_admins().await? > 0 {
            return Ok(None);
        }
        let actor = Actor::System;
        let admin_password = self.token(18);
        let admin = self
            .create_admin(&actor, Scope::Operator, "admin@mdm.local", &admin_password)
            .await?;
        let operator_token = self
            .create_token(
                &actor,
                Scope::Operator,
                NewToken {
                    name: "bootstrap operator token".into(),
                    expires_in_days: None,
                },
            )
            .await?;
        let tenant = match self.store.tenant_by_slug("default").await? {
            Some(t) => t,
            None => {
                let new = NewTenant {
                    slug: "default".into(),
                    name: "Default".into(),
                };
                self.create_tenant(&actor, new).await?
            }
        };
        Ok(Some(Bootstrap {
            tenant,
            admin_email: admin.email,
            admin_password,
            operator_token,
        }))
    }
}
