//! The send job of an invitation: makes the PIN (and a temporary password),
//! stores their hashes, renders the tenant's template and hands the message
//! to the [`crate::mail::Mailer`]. A failed attempt is recorded on the
//! invitation (attempts, last error) and retried with backoff.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::InvitationId;
use crate::invites::{Delivery, DeliveryUpdate, Invitation, send_backoff};
use crate::jobs::{Job, JobOutcome};
use crate::mail::{MailError, MailMessage};
use crate::mail_templates::{INVITATION, MailTemplate, html_escape, render};
use crate::settings::UserSettings;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::{User, UserSource};
use time::OffsetDateTime;

/// The secrets one send attempt puts in the mail.
struct Secrets {
    pin: Option<(String, OffsetDateTime)>,
    temporary_password: Option<String>,
}

/// Formats a time for people: `2026-12-08 10:00 UTC`.
pub fn human_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

impl Core {
    /// Runs one `invitation.send` job.
    pub(crate) async fn run_invitation_send(&self, job: &Job) -> JobOutcome {
        match self.send_invitation(job).await {
            Ok(outcome) => outcome,
            Err(e) => JobOutcome::Retry {
                error: e.to_string(),
                at: Some(self.now() + send_backoff(job.attempts + 1)),
            },
        }
    }

    async fn send_invitation(&self, job: &Job) -> CoreResult<JobOutcome> {
        let id = job.payload["invitation"]
            .as_str()
            .and_then(|s| s.parse::<InvitationId>().ok());
        let (Some(tenant_id), Some(id)) = (job.tenant_id, id) else {
            return Ok(JobOutcome::Permanent("not an invitation job".into()));
        };
        let Some(inv) = self.store.invitation(tenant_id, id).await? else {
            return Ok(JobOutcome::Permanent(
                "the invitation no longer exists".into(),
            ));
        };
        if inv.revoked_at.is_some() || inv.delivery != Delivery::Queued {
            return Ok(JobOutcome::Done);
        }
        let tenant = self
            .store
            .tenant(tenant_id)
            .await?
            .ok_or(CoreError::NotFound("tenant"))?;
        let Some(user) = self.store.user(tenant_id, inv.user_id).await? else {
            return Ok(JobOutcome::Permanent("the user no longer exists".into()));
        };
        let settings = self.store.settings(tenant_id).await?;
        let secrets = self.arm(&tenant, &inv, &user, &settings).await?;
        let message = self
            .invitation_message(&tenant, &user, &settings, &secrets)
            .await?;
        let attempt = job.attempts + 1;
        let now = self.now();
        let (delivery, error, outcome) = match self.mailer.send(&message).await {
            Ok(()) => (Delivery::Sent, None, JobOutcome::Done),
            Err(MailError::Transient(e)) if attempt < job.max_attempts => (
                Delivery::Queued,
                Some(e.clone()),
                JobOutcome::Retry {
                    error: e,
                    at: Some(now + send_backoff(attempt)),
                },
            ),
            Err(MailError::Transient(e) | MailError::Permanent(e)) => {
                (Delivery::Failed, Some(e.clone()), JobOutcome::Permanent(e))
            }
        };
        let action = match delivery {
            Delivery::Sent => Some(AuditAction::InvitationSent),
            Delivery::Failed => Some(AuditAction::InvitationFailed),
            Delivery::Queued => None,
        };
        let audit: Vec<AuditEntry> = action
            .map(|a| {
                AuditEntry::new(
                    Some(tenant.id),
                    now,
                    &Actor::System,
                    a,
                    ("invitation", inv.id.to_string()),
                )
                .user(user.id)
                .details(serde_json::json!({
                    "attempts": attempt,
                    "error": error,
                    "with_pin": secrets.pin.is_some(),
                    "with_temporary_password": secrets.temporary_password.is_some(),
                }))
            })
            .into_iter()
            .collect();
        let update = DeliveryUpdate {
            delivery,
            attempts: attempt,
            error,
            at: now,
        };
        self.store
            .record_delivery(tenant.id, inv.id, &update, &audit)
            .await?;
        Ok(outcome)
    }

    /// Makes this attempt's PIN and temporary password and stores their hashes.
    async fn arm(
        &self,
        tenant: &Tenant,
        inv: &Invitation,
        user: &User,
        settings: &UserSettings,
    ) -> CoreResult<Secrets> {
        let now = self.now();
        let local = user.source == UserSource::Local;
        let temporary_password = (inv.temporary_password && local).then(|| self.token(9));
        let has_password = !local || user.has_password() || temporary_password.is_some();
        let pin = (settings.pin_required || !has_password).then(|| {
            (
                self.new_pin(),
                now + time::Duration::seconds(settings.pin_lifetime_secs),
            )
        });
        let pin_hash = pin
            .as_ref()
            .map(|(p, exp)| (self.pin_hash(tenant.id, user.id, p), *exp));
        let password_hash = temporary_password
            .as_deref()
            .map(|p| self.hash_password(p))
            .transpose()?;
        let audit: Vec<AuditEntry> = password_hash
            .iter()
            .map(|_| {
                AuditEntry::new(
                    Some(tenant.id),
                    now,
                    &Actor::System,
                    AuditAction::PasswordSet,
                    ("user", user.id.to_string()),
                )
                .user(user.id)
                .details(serde_json::json!({ "temporary": true, "invitation": inv.id }))
            })
            .collect();
        self.store
            .arm_invitation(
                tenant.id,
                inv.id,
                pin_hash.as_ref().map(|(h, e)| (h.as_str(), *e)),
                password_hash.as_deref().map(|h| (user.id, h)),
                &audit,
            )
            .await?;
        Ok(Secrets {
            pin,
            temporary_password,
        })
    }

    async fn invitation_message(
        &self,
        tenant: &Tenant,
        user: &User,
        settings: &UserSettings,
        secrets: &Secrets,
    ) -> CoreResult<MailMessage> {
        let template = self
            .store
            .mail_template(tenant.id, INVITATION)
            .await?
            .unwrap_or_else(MailTemplate::default_invitation);
        let url = self.store.current_enrollment_url(tenant.id).await?;
        let link = self.enrollment_url_view(tenant, &url).registration_url;
        let portal = format!("{}/portal/{}", self.public_url, tenant.slug);
        let minutes = settings.profile_validity_secs / 60;
        let pin = secrets.pin.as_ref();
        let (pin_text, pin_html) = match pin {
            Some((p, exp)) => (
                format!(
                    "Your one-time registration PIN: {p}\nIt works once and expires on {}.\n",
                    human_time(*exp)
                ),
                format!(
                    "<p>Your one-time registration PIN: <strong style=\"font-size: 1.3em; letter-spacing: 0.1em\">{p}</strong><br>It works once and expires on {}.</p>",
                    human_time(*exp)
                ),
            ),
            None => (
                "Sign in with your email address and password.\n".to_string(),
                "<p>Sign in with your email address and password.</p>".to_string(),
            ),
        };
        let password_text = match (&secrets.temporary_password, user.source) {
            (Some(p), _) => format!(
                "Your temporary password: {p}\nYou will choose your own password when you first sign in.\n"
            ),
            (None, UserSource::Ldap) => {
                "Sign in with your network (company) user name and password.\n".to_string()
            }
            (None, UserSource::Local) => String::new(),
        };
        let password_html = match password_text.is_empty() {
            true => String::new(),
            false => format!(
                "<p>{}</p>",
                html_escape(password_text.trim_end()).replace('\n', "<br>")
            ),
        };
        let instructions = [
            format!(
                "iPhone and iPad: open the link in Safari, sign in and download the management profile, then install it in Settings > Profile Downloaded within {minutes} minutes."
            ),
            format!(
                "Mac: open the link in Safari, or sign in to the self-service portal at {portal}, download the profile and install it in System Settings > Privacy & Security > Profiles within {minutes} minutes."
            ),
            "Android: open the link on the phone, install the client app and register in the app."
                .to_string(),
        ];
        let instructions_text = format!("{}\n", instructions.join("\n"));
        let instructions_html = format!(
            "<ul>{}</ul>",
            instructions
                .iter()
                .map(|i| format!("<li>{}</li>", html_escape(i)))
                .collect::<String>()
        );
        let plain = |name: &str| -> Option<String> {
            Some(match name {
                "name" => user.display_name.clone(),
                "email" => user.email.clone(),
                "tenant" => tenant.name.clone(),
                "registration_url" => link.clone(),
                "pin" => pin.map(|(p, _)| p.clone()).unwrap_or_default(),
                "pin_expires" => pin.map(|(_, e)| human_time(*e)).unwrap_or_default(),
                "pin_block" => pin_text.clone(),
                "password_block" => password_text.clone(),
                "instructions" => instructions_text.clone(),
                _ => return None,
            })
        };
        let html = |name: &str| -> Option<String> {
            match name {
                "pin_block" => Some(pin_html.clone()),
                "password_block" => Some(password_html.clone()),
                "instructions" => Some(instructions_html.clone()),
                other => plain(other).map(|v| html_escape(&v)),
            }
        };
        let subject = render(&template.subject, plain)
            .replace(['\r', '\n'], " ")
            .trim()
            .to_string();
        Ok(MailMessage {
            to: user.email.clone(),
            to_name: user.display_name.clone(),
            subject,
            text: render(&template.text, plain),
            html: render(&template.html, html),
        })
    }
}
