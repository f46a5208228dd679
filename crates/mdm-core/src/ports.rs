//! The ports through which the domain reaches the world.
//!
//! The store is split into small traits named for what they hold, combined
//! into [`Store`]. Every method that changes state takes the audit entries to
//! write and writes them in the same transaction as the change. Stores keep
//! times at millisecond precision: a value read back is truncated to the
//! millisecond.

use crate::admin_sessions::AdminSession;
use crate::audit::{AuditEntry, AuditQuery, AuditRecord};
use crate::commands::{AppleCommand, CommandQuery, Poll, ResultOutcome, ResultRecord};
use crate::devices::{AppleEnrollment, Device, DeviceQuery};
use crate::directory::{DirectoryConnector, SyncRun, UserChange};
use crate::enrollment::EnrollmentUrlVersion;
use crate::error::StoreError;
use crate::funnel::{StalledFilter, StalledRegistration};
use crate::ids::DeviceId;
use crate::ids::{AdminId, CaId, InvitationId, JobId, SyncRunId, TenantId, TokenId, UserId};
use crate::invites::{DeliveryUpdate, Invitation, InvitationQuery};
use crate::jobs::{Job, NewJob};
use crate::mail_templates::MailTemplate;
use crate::pki::{CaRecord, CertificateQuery, CertificateRecord, Redeem, ScepChallenge};
use crate::profile_signer::{ProfileSignerRecord, SignerStored};
use crate::registration::{Progress, Stage};
use crate::registrations::{DevicePlatform, EndRegistration, Registration, RegistrationQuery};
use crate::regtokens::{RegToken, Spend, TokenPurpose};
use crate::reminder_send::ReminderTarget;
use crate::reminders::{AppPushToken, DecideReminder};
use crate::settings::UserSettings;
use crate::tenants::Tenant;
use crate::tokens::{Admin, ApiToken, Scope};
use crate::users::{Page, User, UserQuery};
use crate::websession::WebSession;

use async_trait::async_trait;
use time::OffsetDateTime;

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// The current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Cryptographically secure random bytes.
pub trait Entropy: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's random source.
pub struct SystemEntropy;

impl Entropy for SystemEntropy {
    fn fill(&self, buf: &mut [u8]) {
        // The OS RNG failing is unrecoverable and must not yield predictable secrets.
        if getrandom::fill(buf).is_err() {
            std::process::abort();
        }
    }
}

/// Tenants, their settings and enrollment URL versions.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates a tenant with its settings and first enrollment URL version.
    /// `Conflict("tenant_slug")` when the slug is taken.
    async fn create_tenant(
        &self,
        tenant: &Tenant,
        settings: &UserSettings,
        url: &EnrollmentUrlVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>>;
    async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>>;
    /// All tenants, ordered by slug.
    async fn tenants(&self) -> StoreResult<Vec<Tenant>>;
    async fn settings(&self, tenant: TenantId) -> StoreResult<UserSettings>;
    async fn update_settings(
        &self,
        tenant: TenantId,
        settings: &UserSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// The current (highest) enrollment URL version.
    async fn current_enrollment_url(&self, tenant: TenantId) -> StoreResult<EnrollmentUrlVersion>;
    /// One version, current or retired.
    async fn enrollment_url_version(
        &self,
        tenant: TenantId,
        version: i64,
    ) -> StoreResult<Option<EnrollmentUrlVersion>>;
    /// Retires the current version (dropping its clear-text secret) and makes
    /// `next` current. `Conflict("enrollment_url_version")` when `next.version`
    /// is not exactly one above the current one (a concurrent regeneration won).
    async fn rotate_enrollment_url(
        &self,
        tenant: TenantId,
        next: &EnrollmentUrlVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
}

/// End users.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts all users or none. `Conflict("user_email")` on a duplicate email
    /// in the tenant (also within the batch). One audit entry per user or per batch.
    async fn create_users(&self, users: &[User], audit: &[AuditEntry]) -> StoreResult<()>;
    async fn user(&self, tenant: TenantId, id: UserId) -> StoreResult<Option<User>>;
    async fn user_by_email(&self, tenant: TenantId, email: &str) -> StoreResult<Option<User>>;
    /// Users ordered by email, filtered and paged by keyset.
    async fn users(&self, tenant: TenantId, query: &UserQuery) -> StoreResult<Page<User>>;
    async fn count_users(&self, tenant: TenantId) -> StoreResult<i64>;
    /// Replaces the stored user. `NotFound` when absent from the tenant,
    /// `Conflict("user_email")` when the new email is taken.
    async fn update_user(&self, user: &User, audit: &AuditEntry) -> StoreResult<()>;
    /// `NotFound` when absent from the tenant.
    async fn delete_user(
        &self,
        tenant: TenantId,
        id: UserId,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
}

/// API tokens and administrator accounts.
#[async_trait]
pub trait AccessStore: Send + Sync {
    async fn create_token(&self, token: &ApiToken, audit: &AuditEntry) -> StoreResult<()>;
    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>>;
    /// Tokens of one scope (operator tokens for `Scope::Operator`), newest first.
    async fn tokens(&self, scope: Scope) -> StoreResult<Vec<ApiToken>>;
    /// Sets `revoked_at`. `NotFound` when the token is not in `scope`.
    async fn revoke_token(
        &self,
        scope: Scope,
        id: TokenId,
        at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// `Conflict("admin_email")` when the email is taken in the scope.
    async fn create_admin(&self, admin: &Admin, audit: &AuditEntry) -> StoreResult<()>;
    async fn admin(&self, id: AdminId) -> StoreResult<Option<Admin>>;
    async fn admin_by_email(&self, scope: Scope, email: &str) -> StoreResult<Option<Admin>>;
    async fn count_admins(&self) -> StoreResult<i64>;
}

/// The audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry that accompanies no other change (a refused request).
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// Entries of `tenant` (operator-level entries for `None`), newest first,
    /// at most `query.limit` of them (default 100). The store caps the limit
    /// at 1001: a full page of 1000 plus the row that shows a next page exists.
    async fn audit(
        &self,
        tenant: Option<TenantId>,
        query: &AuditQuery,
    ) -> StoreResult<Vec<AuditRecord>>;
}

/// Background jobs and named leases.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Queues a job; returns false when a job with the same dedupe key exists.
    async fn enqueue_job(&self, job: &NewJob) -> StoreResult<bool>;
    /// Leases up to `limit` due jobs (queued, `run_at <= now`, lease absent or
    /// expired) to `worker` until `lease_until`, in one statement, so that no
    /// job is handed to two workers.
    async fn claim_jobs(
        &self,
        worker: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> StoreResult<Vec<Job>>;
    /// Marks a job done, if `worker` still holds its lease. Returns whether it did.
    async fn complete_job(&self, id: JobId, worker: &str, at: OffsetDateTime) -> StoreResult<bool>;
    /// Records a failed attempt, if `worker` still holds the lease: the job is
    /// queued again at `retry_at`, or marked failed after its last attempt.
    async fn fail_job(
        &self,
        id: JobId,
        worker: &str,
        error: &str,
        retry_at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Marks a job failed now, whatever attempts it has left, if `worker`
    /// still holds its lease (it can never succeed). Returns whether it did.
    async fn abandon_job(&self, id: JobId, worker: &str, error: &str) -> StoreResult<bool>;
    async fn job(&self, id: JobId) -> StoreResult<Option<Job>>;
    /// Takes or renews the named lease for `holder` until `until`; false when
    /// another holder has it and it has not expired at `now`.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool>;
}

/// Certificate authorities, issued certificates and SCEP challenges.
#[async_trait]
pub trait PkiStore: Send + Sync {
    /// Stores a tenant's new active CA. `Conflict("tenant_ca")` when the
    /// tenant already has an active CA.
    async fn create_ca(&self, ca: &CaRecord, audit: &AuditEntry) -> StoreResult<()>;
    /// The tenant's active CA.
    async fn active_ca(&self, tenant: TenantId) -> StoreResult<Option<CaRecord>>;
    /// The unrevoked profile signer of `ca` that lasts longest.
    async fn profile_signer(
        &self,
        tenant: TenantId,
        ca: CaId,
    ) -> StoreResult<Option<ProfileSignerRecord>>;
    /// Stores a new profile signer, its certificate record and audit entry in
    /// one transaction — unless the CA's current signer (as
    /// [`PkiStore::profile_signer`] reads it) exists and is not `replacing`
    /// (the serial the caller found current, `None` when it found none):
    /// then another request stored one first, nothing is written and that
    /// one is returned. Concurrent first uses of a tenant thus make one
    /// signer. `Conflict("certificate_serial")` when the serial exists.
    async fn create_profile_signer(
        &self,
        signer: &ProfileSignerRecord,
        cert: &CertificateRecord,
        audit: &AuditEntry,
        replacing: Option<&str>,
    ) -> StoreResult<SignerStored>;
    /// The tenant's uploaded profile-signing identity (ADR 0017).
    async fn signing_identity(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Option<crate::signing_identity::SigningIdentityRecord>>;
    /// Every tenant's uploaded signing identity as (tenant slug, not-after),
    /// for the server's expiry gauge and warnings: the one query over all
    /// tenants here, read by the server itself, never by a tenant's caller.
    async fn signing_identity_expiries(&self) -> StoreResult<Vec<(String, OffsetDateTime)>>;
    /// Stores the tenant's uploaded signing identity, replacing the one it
    /// had, with its audit entry, in one transaction.
    async fn put_signing_identity(
        &self,
        identity: &crate::signing_identity::SigningIdentityRecord,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Deletes the tenant's uploaded signing identity with its audit entry;
    /// `NotFound` (and nothing written) when it has none.
    async fn delete_signing_identity(
        &self,
        tenant: TenantId,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn create_challenge(
        &self,
        challenge: &ScepChallenge,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Marks the tenant's challenge with this hash used at `now` if it is
    /// unused and `expires_at > now`, in one statement (two concurrent
    /// redemptions: exactly one gets `Redeemed`); otherwise reports why not.
    async fn redeem_challenge(
        &self,
        tenant: TenantId,
        challenge_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Redeem>;
    /// The tenant's challenge with this hash, used or not.
    async fn challenge(
        &self,
        tenant: TenantId,
        challenge_hash: &str,
    ) -> StoreResult<Option<ScepChallenge>>;
    /// In one transaction: redeems the challenge as [`PkiStore::redeem_challenge`]
    /// does and, only when that succeeds, records the certificate and its
    /// audit entry. Otherwise nothing is written and the outcome says why.
    async fn record_certificate_redeeming(
        &self,
        cert: &CertificateRecord,
        challenge_hash: &str,
        now: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<Redeem>;
    /// `Conflict("certificate_serial")` when the serial exists in the tenant.
    async fn record_certificate(
        &self,
        cert: &CertificateRecord,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn certificate(
        &self,
        tenant: TenantId,
        serial: &str,
    ) -> StoreResult<Option<CertificateRecord>>;
    /// Newest first, keyset-paged by (issued_at, serial).
    async fn certificates(
        &self,
        tenant: TenantId,
        query: &CertificateQuery,
    ) -> StoreResult<Page<CertificateRecord>>;
    /// Sets `revoked_at`. `NotFound` when absent from the tenant.
    async fn revoke_certificate(
        &self,
        tenant: TenantId,
        serial: &str,
        at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
}

/// Invitations, registration progress and mail templates.
#[async_trait]
pub trait InviteStore: Send + Sync {
    /// In one transaction: revokes the unused invitations of these users,
    /// inserts `invitations`, queues `jobs` (one send job each), records the
    /// invited stage and writes `audit`.
    async fn create_invitations(
        &self,
        invitations: &[Invitation],
        jobs: &[NewJob],
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    async fn invitation(
        &self,
        tenant: TenantId,
        id: InvitationId,
    ) -> StoreResult<Option<Invitation>>;
    /// Newest first, keyset-paged by id (ids are time-ordered).
    async fn invitations(
        &self,
        tenant: TenantId,
        query: &InvitationQuery,
    ) -> StoreResult<Page<Invitation>>;
    /// Before a send attempt: stores the PIN's hash and expiry (or clears
    /// them) and, when given, the user's new temporary password, with `audit`.
    async fn arm_invitation(
        &self,
        tenant: TenantId,
        id: InvitationId,
        pin: Option<(&str, OffsetDateTime)>,
        temporary_password: Option<(UserId, &str)>,
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    /// After a send attempt: delivery state, attempts, last error.
    async fn record_delivery(
        &self,
        tenant: TenantId,
        id: InvitationId,
        update: &DeliveryUpdate,
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    /// Marks the user's unrevoked invitation with this PIN hash used at
    /// `now` if it is unused and unexpired, in one statement (of concurrent
    /// redemptions exactly one gets `Spent`), recording the stage and
    /// `audit` with it; otherwise reports why not and writes nothing.
    async fn redeem_pin(
        &self,
        tenant: TenantId,
        user: UserId,
        pin_hash: &str,
        now: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<Spend<()>>;
    /// Enabled users who have not downloaded a management profile yet.
    async fn not_registered_users(&self, tenant: TenantId) -> StoreResult<Vec<UserId>>;
    /// Records the first time a user reached `stage`, with `audit`.
    async fn record_stage(
        &self,
        tenant: TenantId,
        user: UserId,
        stage: Stage,
        at: OffsetDateTime,
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    async fn progress(&self, tenant: TenantId, user: UserId) -> StoreResult<Option<Progress>>;
    async fn mail_template(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> StoreResult<Option<MailTemplate>>;
    /// Stores a template; `None` removes it (back to the default).
    async fn put_mail_template(
        &self,
        tenant: TenantId,
        name: &str,
        template: Option<&MailTemplate>,
        at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
}

/// Sign-in attempts, browser sessions and one-time registration tokens.
#[async_trait]
pub trait SignInStore: Send + Sync {
    /// Records one failed attempt under each key (user, address), with the
    /// lockout `audit` entries it caused; forgets attempts older than a day.
    async fn record_failed_attempt(
        &self,
        tenant: TenantId,
        keys: &[String],
        at: OffsetDateTime,
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    /// Failed attempts under `key` after `since`.
    async fn failed_attempts(
        &self,
        tenant: TenantId,
        key: &str,
        since: OffsetDateTime,
    ) -> StoreResult<i64>;
    /// In one transaction: forgets the failures under `clear_key`, inserts
    /// the session when given, records the signed-in stage, writes `audit`.
    async fn record_sign_in(
        &self,
        tenant: TenantId,
        user: UserId,
        clear_key: &str,
        session: Option<&WebSession>,
        at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn web_session(&self, tenant: TenantId, id_hash: &str)
    -> StoreResult<Option<WebSession>>;
    async fn delete_web_session(&self, tenant: TenantId, id_hash: &str) -> StoreResult<()>;
    /// Sets the user's own (not temporary) password and clears the
    /// session's must-set-password flag, with `audit`.
    async fn set_own_password(
        &self,
        tenant: TenantId,
        user: UserId,
        password_hash: &str,
        session_id_hash: &str,
        at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn create_reg_token(&self, token: &RegToken, audit: &[AuditEntry]) -> StoreResult<()>;
    /// Marks the token used if it is unused and unexpired, in one statement.
    async fn redeem_reg_token(
        &self,
        tenant: TenantId,
        token_hash: &str,
        purpose: TokenPurpose,
        now: OffsetDateTime,
    ) -> StoreResult<Spend<RegToken>>;
}

/// Directory connectors, the users a sync reads and writes, and sync runs.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    async fn directory_connector(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Option<DirectoryConnector>>;
    /// Creates or replaces the tenant's connector.
    async fn put_directory_connector(
        &self,
        connector: &DirectoryConnector,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Every tenant's connector (for scheduling), ordered by tenant id.
    async fn directory_connectors(&self) -> StoreResult<Vec<DirectoryConnector>>;
    /// Every user of the tenant, local and directory, in no order.
    async fn tenant_users(&self, tenant: TenantId) -> StoreResult<Vec<User>>;
    /// In one transaction: inserts `creates`, applies `updates` (each only
    /// if the user's `updated_at` is still `before.updated_at`), stores the
    /// run and the audit entries. `Conflict("user_changed")` when a user
    /// changed since it was read, `Conflict("user_email")` on a duplicate
    /// email; then nothing is written.
    async fn apply_directory_sync(
        &self,
        creates: &[User],
        updates: &[UserChange],
        run: &SyncRun,
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    /// Sets the end of a stored run (a run is stored in its own sync's
    /// transaction, so its end is known only after the commit). `NotFound`
    /// when the run is not the tenant's.
    async fn finish_directory_run(
        &self,
        tenant: TenantId,
        id: SyncRunId,
        finished_at: OffsetDateTime,
        duration_ms: i64,
    ) -> StoreResult<()>;
    /// Stores a run that changed no user (a failed run) with its audit entry.
    async fn record_directory_run(&self, run: &SyncRun, audit: &AuditEntry) -> StoreResult<()>;
    /// The tenant's runs, newest first, at most `limit` (capped at 1000).
    async fn directory_runs(&self, tenant: TenantId, limit: i64) -> StoreResult<Vec<SyncRun>>;
}

/// Registration attempts (the funnel).
#[async_trait]
pub trait RegistrationStore: Send + Sync {
    /// Inserts the registration or replaces the stored one, with its audit entry.
    async fn save_registration(&self, reg: &Registration, audit: &AuditEntry) -> StoreResult<()>;
    /// What issuing a profile writes, in one transaction: its one-time
    /// challenge, the registration (inserted or replaced), the audit
    /// entries and the registration's expiry job (not inserted when one
    /// with its dedupe key is queued). Nothing of it when any part fails.
    async fn save_issued_profile(
        &self,
        challenge: &crate::pki::ScepChallenge,
        reg: &Registration,
        audit: &[AuditEntry],
        expiry: Option<&crate::jobs::NewJob>,
    ) -> StoreResult<()>;
    async fn registration(&self, tenant: TenantId, id: &str) -> StoreResult<Option<Registration>>;
    /// Newest first, filtered, keyset-paged by (created_at, id).
    async fn registrations(
        &self,
        tenant: TenantId,
        query: &RegistrationQuery,
    ) -> StoreResult<Page<Registration>>;
    /// In one transaction: when the registration exists and is open, sets its
    /// reason (and status, when given) and disables `disable_device` (status
    /// `mdm_disabled`, enrollments disabled), then writes `if_ended`. Writes
    /// `always` in any case. Returns whether the registration changed.
    async fn end_registration(
        &self,
        end: &EndRegistration,
        always: &[AuditEntry],
        if_ended: &[AuditEntry],
    ) -> StoreResult<bool>;
}

/// The funnel across registrations (ADR 0011). The invitation, PIN and
/// sign-in stages are stamped by [`InviteStore`] and [`SignInStore`] in
/// their own transactions, on the user's open registration.
#[async_trait]
pub trait FunnelStore: Send + Sync {
    /// The user's newest first-enrolment registration that is still pending
    /// or has a downloaded profile: what a new profile or stage attaches to.
    async fn open_registration(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> StoreResult<Option<Registration>>;
    /// Registrations created in `[from, to)`, at most
    /// [`crate::funnel::FUNNEL_MAX_ROWS`].
    async fn funnel_registrations(
        &self,
        tenant: TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        platform: Option<DevicePlatform>,
    ) -> StoreResult<Vec<Registration>>;
    /// Registrations stuck at their furthest stage since before
    /// `filter.before`: open ones, and expired first enrolments of a user
    /// with no newer registration. Newest first, keyset-paged.
    async fn stalled_registrations(
        &self,
        filter: &StalledFilter,
    ) -> StoreResult<Page<StalledRegistration>>;
    /// In one transaction, when the registration is still remindable (a
    /// first enrolment with a user, no certificate, not cancelled, not
    /// followed by a newer attempt): counts one more reminder at `at`,
    /// queues `job` and writes `audit`. False when it is not remindable.
    async fn queue_reminder(
        &self,
        tenant: TenantId,
        id: &str,
        job: &NewJob,
        audit: &AuditEntry,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// In one transaction over every tenant: locks up to `limit`
    /// remindable, not given up registrations whose interval has passed
    /// since their last progress or reminder (skipping rows another server
    /// holds), and applies `decide`'s step to each: a counted reminder with
    /// its job, or given up with its audit entry. Returns how many.
    async fn claim_due_reminders(
        &self,
        now: OffsetDateTime,
        limit: i64,
        decide: &DecideReminder,
    ) -> StoreResult<usize>;
    /// The registration when it is still remindable, with the client app's
    /// push address.
    async fn reminder_target(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> StoreResult<Option<ReminderTarget>>;
    /// Sets the platform and push address (when given) on the user's open
    /// registration, opening one when there is none.
    async fn record_app_push(
        &self,
        tenant: TenantId,
        user: UserId,
        platform: DevicePlatform,
        push: Option<&AppPushToken>,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Forgets the push address of a registration (the provider said it is gone).
    async fn forget_app_push(&self, tenant: TenantId, id: &str) -> StoreResult<()>;
}

/// Devices of every platform.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    async fn device(&self, tenant: TenantId, id: DeviceId) -> StoreResult<Option<Device>>;
    async fn device_by_udid(
        &self,
        tenant: TenantId,
        platform: DevicePlatform,
        udid: &str,
    ) -> StoreResult<Option<Device>>;
    /// Newest first, filtered, keyset-paged by (created_at, id).
    async fn devices(&self, tenant: TenantId, query: &DeviceQuery) -> StoreResult<Page<Device>>;
    /// Records when channels were last seen (batched off the request path):
    /// each enrollment and its device.
    async fn touch_enrollments(
        &self,
        seen: &[(TenantId, String, OffsetDateTime)],
    ) -> StoreResult<()>;
}

/// Apple MDM enrollments and their command queues.
#[async_trait]
pub trait AppleStore: Send + Sync {
    async fn apple_enrollment(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> StoreResult<Option<AppleEnrollment>>;
    /// Every channel of a device, device channel first.
    async fn apple_enrollments(
        &self,
        tenant: TenantId,
        device: DeviceId,
    ) -> StoreResult<Vec<AppleEnrollment>>;
    /// The enrollment an identity certificate is bound to.
    async fn apple_enrollment_by_cert(
        &self,
        tenant: TenantId,
        fingerprint: &str,
    ) -> StoreResult<Option<AppleEnrollment>>;
    /// The issued certificate with this SHA-256 fingerprint (hex).
    async fn certificate_by_fingerprint(
        &self,
        tenant: TenantId,
        fingerprint: &str,
    ) -> StoreResult<Option<CertificateRecord>>;
    /// Applies one check-in or admin change in one transaction with `audit`.
    /// `Conflict("enrollment_certificate")` when the certificate is bound to
    /// another enrollment; nothing is written then.
    async fn apply_enrollment_change(
        &self,
        change: &EnrollmentChange,
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    /// An Idle poll in one read: the channel's identity binding and its next
    /// command (`queued`, and `not_now` too when `include_not_now`).
    async fn apple_poll(
        &self,
        tenant: TenantId,
        enrollment: &str,
        device_channel: &str,
        include_not_now: bool,
    ) -> StoreResult<Option<Poll>>;
    /// A command result in one transaction: refused without a write unless
    /// the identity is bound and enabled; otherwise records it (once: a
    /// command that already has a final result is left alone) and returns
    /// the next `queued` command.
    async fn record_apple_result(&self, result: &ResultRecord) -> StoreResult<ResultOutcome>;
    /// A device's commands, newest first, keyset-paged by (created_at, uuid).
    async fn apple_commands(
        &self,
        tenant: TenantId,
        device: DeviceId,
        query: &CommandQuery,
    ) -> StoreResult<Page<AppleCommand>>;
    /// Records push attempts, each on its enrollment (`token_dead` marks
    /// the token dead until the next TokenUpdate), with their audit entries
    /// and, with `done`, marks their jobs done (while the lease is held): all
    /// in one transaction, so a pass of the job worker is one commit.
    async fn record_pushes(&self, pushes: &[crate::apple_push::PushRecord<'_>]) -> StoreResult<()>;
    /// Devices whose device channel is live (enabled, device active) and
    /// bound to an unrevoked certificate that expires before `before`, with
    /// no renewal registration open: (tenant, device), soonest expiry first.
    async fn apple_renewal_candidates(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<(TenantId, DeviceId)>>;
}

/// Rows a check-in or an admin action writes together.
#[derive(Clone, Debug, Default)]
pub struct EnrollmentChange {
    /// The device to insert (`true`) or update (`false`).
    pub device: Option<(Device, bool)>,
    /// The enrollment to insert or replace.
    pub enrollment: Option<AppleEnrollment>,
    /// Advances an open registration: the status, its stage time (`at`) and
    /// the device it enrols.
    pub registration: Option<RegistrationStep>,
    /// Cancels the queued commands of this device (a re-enrolment).
    pub cancel_queue_of: Option<(TenantId, DeviceId)>,
    /// Names the device of an issued certificate (tenant, serial, device).
    pub certificate_device: Option<(TenantId, String, DeviceId)>,
    /// Disables the user channels of this device (its device channel checked out).
    pub disable_user_channels_of: Option<(TenantId, DeviceId)>,
    /// Commands to queue.
    pub commands: Vec<AppleCommand>,
    /// Jobs to queue with the change (one whose dedupe key is already queued
    /// is not inserted again): the push that tells the device to fetch them.
    pub jobs: Vec<crate::jobs::NewJob>,
}

/// An advance of a registration through the funnel.
#[derive(Clone, Debug)]
pub struct RegistrationStep {
    pub tenant_id: TenantId,
    pub id: String,
    pub status: crate::registrations::RegistrationStatus,
    pub device_id: DeviceId,
    pub at: OffsetDateTime,
}

/// The admin web portal: administrator sessions and their sign-in
/// throttle, the startup wizard, and the reads and writes only its pages need.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Every administrator with this (normalised) email, operators first.
    async fn admins_by_email(&self, email: &str) -> StoreResult<Vec<Admin>>;
    /// Stores a new session, clears the failures under `clear_key` and
    /// removes expired sessions, with the audit entry, in one transaction.
    async fn create_admin_session(
        &self,
        session: &AdminSession,
        clear_key: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn admin_session(&self, id_hash: &str) -> StoreResult<Option<AdminSession>>;
    /// Moves the idle deadline on: sets `last_seen_at`.
    async fn touch_admin_session(&self, id_hash: &str, at: OffsetDateTime) -> StoreResult<()>;
    /// Ends a session (sign-out or idle timeout); the audit entry only when given.
    async fn delete_admin_session(
        &self,
        id_hash: &str,
        audit: Option<&AuditEntry>,
    ) -> StoreResult<()>;
    /// Records one failed administrator sign-in under each key (and drops
    /// failures older than a day), with the lockout entries that reach a limit.
    async fn record_admin_failure(
        &self,
        keys: &[String],
        at: OffsetDateTime,
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    async fn admin_failures(&self, key: &str, since: OffsetDateTime) -> StoreResult<i64>;
    /// Renames a tenant (its slug never changes). `NotFound` when absent.
    async fn rename_tenant(
        &self,
        tenant: TenantId,
        name: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// When the startup wizard of the tenant was finished, if it was.
    async fn setup_completed(&self, tenant: TenantId) -> StoreResult<Option<OffsetDateTime>>;
    /// Marks the wizard finished (again: keeps the first time).
    async fn complete_setup(
        &self,
        tenant: TenantId,
        at: OffsetDateTime,
        by: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// The users of `ids` in the tenant (absent ones are left out).
    async fn users_by_ids(&self, tenant: TenantId, ids: &[UserId]) -> StoreResult<Vec<User>>;
    /// Deletes a device record with its Apple channels and their commands;
    /// registrations, certificates and audit entries keep its id as history.
    /// `NotFound` when absent from the tenant.
    async fn delete_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
}

/// Database health.
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Refreshes the planner statistics of tables that changed much since
    /// they were last analysed (PostgreSQL: `ANALYZE`, which also replaces
    /// the generic plans built on the old statistics); the tables refreshed.
    async fn refresh_statistics(&self) -> StoreResult<Vec<String>>;
}

/// Android agent devices, their command queue and signed-request nonces.
#[async_trait]
pub trait AndroidStore: Send + Sync {
    async fn android_device(
        &self,
        tenant: TenantId,
        device: DeviceId,
    ) -> StoreResult<Option<crate::android::AndroidDevice>>;
    /// The entries of the first key (in the given priority order) that finds any.
    async fn android_correlate(
        &self,
        tenant: TenantId,
        keys: &[crate::android::AndroidKey],
    ) -> StoreResult<Option<crate::android::Correlation>>;
    /// A registration in one transaction (see [`crate::android::AndroidRegistration`]).
    async fn apply_android_registration(
        &self,
        reg: &crate::android::AndroidRegistration,
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    /// An agent request or admin action in one transaction with `audit`.
    async fn apply_android_change(
        &self,
        change: &crate::android::AndroidChange,
        audit: &[AuditEntry],
    ) -> StoreResult<crate::android::AndroidChangeOutcome>;
    async fn android_command(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> StoreResult<Option<crate::android::AndroidCommand>>;
    /// A device's commands, newest first, keyset-paged by (created_at, id).
    async fn android_commands(
        &self,
        tenant: TenantId,
        device: DeviceId,
        query: &CommandQuery,
    ) -> StoreResult<Page<crate::android::AndroidCommand>>;
    /// Deletes the entry, its Android rows, commands and nonces (the audit
    /// trail stays). Returns whether it existed.
    async fn delete_android_device(
        &self,
        tenant: TenantId,
        device: DeviceId,
        audit: &AuditEntry,
    ) -> StoreResult<bool>;
}

/// Everything the domain needs from storage.
pub trait Store:
    TenantStore
    + UserStore
    + AccessStore
    + AuditStore
    + JobStore
    + PkiStore
    + InviteStore
    + SignInStore
    + DirectoryStore
    + RegistrationStore
    + DeviceStore
    + AppleStore
    + HealthStore
    + FunnelStore
    + AdminStore
    + AndroidStore
{
}

impl<T> Store for T where
    T: TenantStore
        + UserStore
        + AccessStore
        + AuditStore
        + JobStore
        + PkiStore
        + InviteStore
        + SignInStore
        + DirectoryStore
        + RegistrationStore
        + DeviceStore
        + AppleStore
        + HealthStore
        + FunnelStore
        + AdminStore
        + AndroidStore
{
}
