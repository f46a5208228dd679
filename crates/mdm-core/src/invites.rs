//! Invitations (R4–R7): an email to a user with the tenant's registration
//! link (`…/go`), a one-time PIN when the settings require one or the user
//! has no password yet, optionally a temporary password, and short
//! instructions. Inviting writes the invitation rows and their send jobs in
//! one transaction; the PIN (and a temporary password) are made by the send
//! job right before the mail goes out, so the clear values exist only in the
//! message. PINs are stored as a keyed hash ([`mdm_pki::Vault::mac`]) and
//! spent with one conditional update (ADR 0005).

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::{InvitationId, JobId, TenantId, UserId};
use crate::jobs::NewJob;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::{Page, User};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The job kind that sends one invitation.
pub const SEND_JOB: &str = "invitation.send";
/// Send attempts before an invitation is marked failed.
pub const SEND_ATTEMPTS: i32 = 8;
/// Digits of a registration PIN (ADR 0005).
pub const PIN_DIGITS: usize = 8;

/// Where the mail of an invitation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Waiting for (another) send attempt.
    Queued,
    /// Accepted by the mail server (or written to the outbox).
    Sent,
    /// Every attempt failed, or the mail server refused it for good.
    Failed,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(Self::Queued),
            "sent" => Some(Self::Sent),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// An invitation as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Invitation {
    pub id: InvitationId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// The user's email (read with the invitation, not stored in it).
    pub email: String,
    /// A temporary password is generated and sent with it (local users only).
    pub temporary_password: bool,
    pub delivery: Delivery,
    /// Send attempts so far.
    pub attempts: i32,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// Keyed hash of the PIN sent (set by the send job); never serialised.
    #[serde(skip)]
    pub pin_hash: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub pin_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub pin_used_at: Option<OffsetDateTime>,
    /// Replaced by a newer invitation of the same user; its PIN no longer works.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
}

/// Whom to invite.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// These users (at most 10,000).
    #[serde(default)]
    pub user_ids: Vec<UserId>,
    /// Every enabled user who has not downloaded a management profile yet.
    #[serde(default)]
    pub all_not_registered: bool,
    /// Generate and send a temporary password to local users (default: the
    /// tenant's `temporary_password` setting). Directory users are told to
    /// use their network credentials instead.
    pub temporary_password: Option<bool>,
}

/// Filters and paging for listing invitations (newest first).
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InvitationQuery {
    pub user_id: Option<UserId>,
    pub delivery: Option<Delivery>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Cursor: the `next` of the previous page.
    pub after: Option<String>,
}

/// What an invite call did.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct InviteReport {
    pub invited: usize,
    pub invitations: Vec<Invitation>,
}

/// An update of an invitation's delivery after a send attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryUpdate {
    pub delivery: Delivery,
    pub attempts: i32,
    pub error: Option<String>,
    pub at: OffsetDateTime,
}

/// Delay before send retry number `attempt` (1-based): 5 s doubling, at most an hour.
pub fn send_backoff(attempt: i32) -> time::Duration {
    let exp = attempt.clamp(1, 12) - 1;
    time::Duration::seconds((5i64 << exp).min(3600))
}

impl Core {
    /// Invites users: one invitation and one send job each, in one
    /// transaction; any older unused invitation of the same user is revoked.
    pub async fn invite_users(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        request: &InviteRequest,
    ) -> CoreResult<InviteReport> {
        actor.require_tenant(tenant.id)?;
        let users = self.invitees(tenant, request).await?;
        let settings = self.store.settings(tenant.id).await?;
        let temporary = request
            .temporary_password
            .unwrap_or(settings.temporary_password);
        self.invite(actor, tenant, &users, temporary).await
    }

    /// Sends a user a new invitation like `id` (a fresh PIN; the old one stops working).
    pub async fn resend_invitation(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: InvitationId,
    ) -> CoreResult<Invitation> {
        actor.require_tenant(tenant.id)?;
        let old = self
            .store
            .invitation(tenant.id, id)
            .await?
            .ok_or(CoreError::NotFound("invitation"))?;
        let user = self.user(actor, tenant, old.user_id).await?;
        let mut report = self
            .invite(actor, tenant, &[user], old.temporary_password)
            .await?;
        report
            .invitations
            .pop()
            .ok_or(CoreError::Store("no invitation created".into()))
    }

    /// Invitations of the tenant, newest first, with their delivery state.
    pub async fn invitations(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        query: &InvitationQuery,
    ) -> CoreResult<Page<Invitation>> {
        actor.require_tenant(tenant.id)?;
        if query.limit.is_some_and(|l| l == 0 || l > 1000) {
            return Err(CoreError::invalid("limit", "between 1 and 1000"));
        }
        Ok(self.store.invitations(tenant.id, query).await?)
    }

    /// One invitation.
    pub async fn invitation(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: InvitationId,
    ) -> CoreResult<Invitation> {
        actor.require_tenant(tenant.id)?;
        self.store
            .invitation(tenant.id, id)
            .await?
            .ok_or(CoreError::NotFound("invitation"))
    }

    async fn invitees(&self, tenant: &Tenant, request: &InviteRequest) -> CoreResult<Vec<User>> {
        let ids = match (request.all_not_registered, request.user_ids.is_empty()) {
            (true, true) => self.store.not_registered_users(tenant.id).await?,
            (false, false) => request.user_ids.clone(),
            (true, false) => {
                return Err(CoreError::invalid(
                    "user_ids",
                    "give user_ids or all_not_registered, not both",
                ));
            }
            (false, true) => {
                return Err(CoreError::invalid(
                    "user_ids",
                    "name at least one user, or set all_not_registered",
                ));
            }
        };
        if ids.len() > crate::users::MAX_BATCH {
            return Err(CoreError::invalid(
                "user_ids",
                format!("at most {} users per request", crate::users::MAX_BATCH),
            ));
        }
        let mut users = Vec::with_capacity(ids.len());
        let mut seen = std::collections::HashSet::new();
        for (i, id) in ids.into_iter().enumerate() {
            if !seen.insert(id) {
                continue;
            }
            let user = self
                .store
                .user(tenant.id, id)
                .await?
                .ok_or_else(|| CoreError::invalid(format!("user_ids[{i}]"), "no such user"))?;
            if !user.enabled {
                return Err(CoreError::invalid(
                    format!("user_ids[{i}]"),
                    format!("{} is disabled", user.email),
                ));
            }
            users.push(user);
        }
        Ok(users)
    }

    /// Writes invitations and their send jobs for `users`.
    pub(crate) async fn invite(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        users: &[User],
        temporary_password: bool,
    ) -> CoreResult<InviteReport> {
        let now = self.now();
        let mut invitations = Vec::with_capacity(users.len());
        let mut jobs = Vec::with_capacity(users.len());
        let mut audit = Vec::with_capacity(users.len());
        for user in users {
            let inv = Invitation {
                id: InvitationId::new(),
                tenant_id: tenant.id,
                user_id: user.id,
                email: user.email.clone(),
                temporary_password: temporary_password
                    && user.source == crate::users::UserSource::Local,
                delivery: Delivery::Queued,
                attempts: 0,
                last_error: None,
                pin_hash: None,
                pin_expires_at: None,
                pin_used_at: None,
                revoked_at: None,
                created_at: now,
                sent_at: None,
            };
            jobs.push(NewJob {
                id: JobId::new(),
                tenant_id: Some(tenant.id),
                kind: SEND_JOB.into(),
                payload: serde_json::json!({ "invitation": inv.id }),
                run_at: now,
                dedupe_key: Some(format!("{SEND_JOB}:{}", inv.id)),
                max_attempts: SEND_ATTEMPTS,
            });
            audit.push(
                AuditEntry::new(
                    Some(tenant.id),
                    now,
                    actor,
                    AuditAction::InvitationCreated,
                    ("invitation", inv.id.to_string()),
                )
                .user(user.id)
                .details(serde_json::json!({
                    "email": user.email,
                    "temporary_password": inv.temporary_password,
                })),
            );
            invitations.push(inv);
        }
        if invitations.is_empty() {
            return Ok(InviteReport {
                invited: 0,
                invitations,
            });
        }
        self.store
            .create_invitations(&invitations, &jobs, &audit)
            .await?;
        Ok(InviteReport {
            invited: invitations.len(),
            invitations,
        })
    }

    /// The keyed hash under which a user's PIN is stored.
    pub(crate) fn pin_hash(&self, tenant: TenantId, user: UserId, pin: &str) -> String {
        hex::encode(
            self.vault
                .mac(format!("registration-pin\0{tenant}\0{user}\0{pin}").as_bytes()),
        )
    }

    /// A random PIN of [`PIN_DIGITS`] decimal digits (uniform: rejection sampling).
    pub(crate) fn new_pin(&self) -> String {
        const MODULUS: u64 = 100_000_000;
        let limit = u64::MAX - u64::MAX % MODULUS;
        loop {
            let mut b = [0u8; 8];
            self.entropy.fill(&mut b);
            let v = u64::from_le_bytes(b);
            if v < limit {
                return format!("{:08}", v % MODULUS);
            }
        }
    }
}

/// Options of adding users: invite them right away.
#[derive(Clone, Copy, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AddUsersOptions {
    /// Send each new user an invitation.
    #[serde(default)]
    pub invite: bool,
    /// With `invite`: generate and send temporary passwords (default: the tenant setting).
    pub temporary_password: Option<bool>,
}

impl Core {
    /// Adds users (all or none) and, when asked, invites them (R4: inviting
    /// as the last step of adding users). The invitations are a second
    /// transaction: if it fails the users exist and can be invited again.
    pub async fn add_users(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        batch: Vec<crate::users::NewUser>,
        options: AddUsersOptions,
    ) -> CoreResult<Vec<User>> {
        let users = self.create_users(actor, tenant, batch).await?;
        if options.invite {
            self.invite_created(actor, tenant, &users, options).await?;
        }
        Ok(users)
    }

    /// Imports users from CSV and, when asked, invites them.
    pub async fn import_users_inviting(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        csv: &[u8],
        options: AddUsersOptions,
    ) -> CoreResult<Result<crate::users::ImportReport, Vec<crate::users::ImportRowError>>> {
        let report = self.import_users_csv(actor, tenant, csv).await?;
        if let (Ok(r), true) = (&report, options.invite) {
            self.invite_created(actor, tenant, &r.users, options)
                .await?;
        }
        Ok(report)
    }

    async fn invite_created(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        users: &[User],
        options: AddUsersOptions,
    ) -> CoreResult<()> {
        let enabled: Vec<User> = users.iter().filter(|u| u.enabled).cloned().collect();
        let temporary = match options.temporary_password {
            Some(t) => t,
            None => self.store.settings(tenant.id).await?.temporary_password,
        };
        self.invite(actor, tenant, &enabled, temporary).await?;
        Ok(())
    }
}
