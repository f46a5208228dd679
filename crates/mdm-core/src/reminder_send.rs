//! Sending one reminder: the email from the tenant's `reminder` template
//! and the push to the client app, then one audit entry saying what went
//! out. A transient mail failure retries the job before anything was sent;
//! a push failure is recorded, not retried (the next reminder comes anyway),
//! and a token the provider says is gone is forgotten.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::CoreResult;
use crate::jobs::{Job, JobOutcome};
use crate::mail::{MailError, MailMessage};
use crate::mail_templates::{MailTemplate, TemplateView, html_escape, render};
use crate::push::{AndroidPush, AppAlert, PushOutcome};
use crate::registrations::{DevicePlatform, Registration};
use crate::reminders::{AppPushProvider, AppPushToken};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::User;

/// The reminder template's name.
pub const REMINDER: &str = "reminder";

/// Placeholders a reminder template may use.
pub const REMINDER_PLACEHOLDERS: [&str; 6] = [
    "name",
    "email",
    "tenant",
    "registration_url",
    "portal_url",
    "instructions",
];

/// What a push reminder says.
pub const PUSH_TITLE: &str = "Finish registering your device";

/// A registration to remind and where its client app can be reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReminderTarget {
    pub registration: Registration,
    pub push: Option<AppPushToken>,
}

impl MailTemplate {
    /// The built-in reminder template.
    pub fn default_reminder() -> Self {
        Self {
            subject: "Reminder: finish registering your device with {{ tenant }}".into(),
            text: DEFAULT_TEXT.into(),
            html: DEFAULT_HTML.into(),
        }
    }
}

const DEFAULT_TEXT: &str = "Hello {{ name }},

Your device is not registered with {{ tenant }} yet: the management profile was never installed.

Open this link on the device and start again:
{{ registration_url }}

{{ instructions }}
";

const DEFAULT_HTML: &str = "<!doctype html><html><body style=\"font-family: sans-serif\">
<p>Hello {{ name }},</p>
<p>Your device is not registered with {{ tenant }} yet: the management profile was never installed.</p>
<p>Open this link on the device and start again:<br><a href=\"{{ registration_url }}\">{{ registration_url }}</a></p>
{{ instructions }}
</body></html>
";

impl Core {
    pub(crate) async fn send_reminder(&self, job: &Job) -> CoreResult<JobOutcome> {
        let (Some(tenant_id), Some(id)) = (job.tenant_id, job.payload["registration"].as_str())
        else {
            return Ok(JobOutcome::Permanent(
                "registration.remind: bad payload".into(),
            ));
        };
        let n = job.payload["reminder"].as_i64().unwrap_or(0);
        // Completed, cancelled, superseded or deleted since it was queued.
        let Some(target) = self.store.reminder_target(tenant_id, id).await? else {
            return Ok(JobOutcome::Done);
        };
        let Some(tenant) = self.store.tenant(tenant_id).await? else {
            return Ok(JobOutcome::Done);
        };
        let user = match target.registration.user_id {
            Some(u) => self.store.user(tenant_id, u).await?,
            None => None,
        };
        let Some(user) = user.filter(|u| u.enabled) else {
            return Ok(JobOutcome::Done);
        };
        let settings = self.store.settings(tenant_id).await?;
        let mut details = serde_json::json!({ "reminder": n, "email": false });
        if settings.reminder_email {
            let message = self.reminder_message(&tenant, &user).await?;
            match self.mailer.send(&message).await {
                Ok(()) => details["email"] = true.into(),
                Err(MailError::Transient(e)) => return Ok(JobOutcome::retry(e)),
                Err(MailError::Permanent(e)) => details["email_error"] = e.into(),
            }
        }
        if let (true, Some(push)) = (settings.reminder_push, &target.push) {
            let outcome = self
                .push_reminder(&tenant, &target.registration, push)
                .await;
            if matches!(outcome, PushOutcome::TokenGone { .. }) {
                self.store.forget_app_push(tenant_id, id).await?;
            }
            details["push"] = push_outcome_name(&outcome).into();
            details["push_provider"] = push.provider.as_str().into();
        }
        let audit = AuditEntry::new(
            Some(tenant_id),
            self.now(),
            &Actor::System,
            AuditAction::RegistrationReminderSent,
            ("registration", id.to_string()),
        )
        .user(user.id)
        .details(details);
        self.store.append_audit(&audit).await?;
        Ok(JobOutcome::Done)
    }

    async fn push_reminder(
        &self,
        tenant: &Tenant,
        reg: &Registration,
        push: &AppPushToken,
    ) -> PushOutcome {
        let body = format!(
            "Open the {} app to finish registering this device.",
            tenant.name
        );
        let outcomes = match push.provider {
            AppPushProvider::Apns => {
                let Ok(token) = hex::decode(&push.token) else {
                    return PushOutcome::Rejected {
                        reason: "the app's APNs token is not hex".into(),
                    };
                };
                let alert = AppAlert {
                    tenant_id: tenant.id,
                    registration_id: reg.id.clone(),
                    token,
                    topic: push.topic.clone().unwrap_or_default(),
                    title: PUSH_TITLE.into(),
                    body,
                };
                self.pusher.push_app_alert(&[alert]).await
            }
            AppPushProvider::Fcm => {
                let data = [
                    ("reason", "registration_reminder".to_string()),
                    ("registration", reg.id.clone()),
                    ("title", PUSH_TITLE.to_string()),
                    ("body", body),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                let wake = AndroidPush {
                    tenant_id: tenant.id,
                    device_id: reg.id.clone(),
                    token: push.token.clone(),
                    data,
                };
                self.pusher.push_android(&[wake]).await
            }
        };
        outcomes
            .into_iter()
            .next()
            .unwrap_or(PushOutcome::Rejected {
                reason: "the pusher answered nothing".into(),
            })
    }

    async fn reminder_message(&self, tenant: &Tenant, user: &User) -> CoreResult<MailMessage> {
        let template = self
            .store
            .mail_template(tenant.id, REMINDER)
            .await?
            .unwrap_or_else(MailTemplate::default_reminder);
        let url = self.store.current_enrollment_url(tenant.id).await?;
        let link = self.enrollment_url_view(tenant, &url).registration_url;
        let portal = format!("{}/portal/{}", self.public_url, tenant.slug);
        let minutes = self.store.settings(tenant.id).await?.profile_validity_secs / 60;
        let instructions = [
            format!(
                "iPhone and iPad: open the link in Safari (or the app), download the profile and install it in Settings > Profile Downloaded within {minutes} minutes."
            ),
            format!(
                "Mac: sign in to the self-service portal at {portal}, download the profile and install it within {minutes} minutes."
            ),
            "Android: open the client app and register.".to_string(),
        ];
        let text_instructions = format!("{}\n", instructions.join("\n"));
        let html_instructions = format!(
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
                "portal_url" => portal.clone(),
                "instructions" => text_instructions.clone(),
                _ => return None,
            })
        };
        let html = |name: &str| match name {
            "instructions" => Some(html_instructions.clone()),
            other => plain(other).map(|v| html_escape(&v)),
        };
        Ok(MailMessage {
            to: user.email.clone(),
            to_name: user.display_name.clone(),
            subject: render(&template.subject, plain)
                .replace(['\r', '\n'], " ")
                .trim()
                .to_string(),
            text: render(&template.text, plain),
            html: render(&template.html, html),
        })
    }

    /// The tenant's reminder template (the built-in one until changed).
    pub async fn reminder_template(
        &self,
        actor: &Actor,
        tenant: &Tenant,
    ) -> CoreResult<TemplateView> {
        actor.require_tenant(tenant.id)?;
        let stored = self.store.mail_template(tenant.id, REMINDER).await?;
        Ok(TemplateView {
            is_default: stored.is_none(),
            template: stored.unwrap_or_else(MailTemplate::default_reminder),
            placeholders: REMINDER_PLACEHOLDERS.to_vec(),
        })
    }

    /// Replaces the tenant's reminder template; `None` restores the default.
    pub async fn set_reminder_template(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        template: Option<MailTemplate>,
    ) -> CoreResult<TemplateView> {
        actor.require_tenant(tenant.id)?;
        if let Some(t) = &template {
            t.validate_with(&REMINDER_PLACEHOLDERS, &["registration_url"])?;
        }
        let audit = AuditEntry::new(
            Some(tenant.id),
            self.now(),
            actor,
            AuditAction::MailTemplateUpdated,
            ("mail_template", REMINDER.to_string()),
        )
        .details(serde_json::json!({ "reset_to_default": template.is_none() }));
        self.store
            .put_mail_template(tenant.id, REMINDER, template.as_ref(), self.now(), &audit)
            .await?;
        self.reminder_template(actor, tenant).await
    }

    /// Records the client app's platform and push address on the user's
    /// open registration (at client-app registration).
    pub(crate) async fn record_app_push(
        &self,
        tenant: &Tenant,
        user: &User,
        platform: DevicePlatform,
        push: Option<&AppPushToken>,
    ) -> CoreResult<()> {
        Ok(self
            .store
            .record_app_push(tenant.id, user.id, platform, push, self.now())
            .await?)
    }
}

fn push_outcome_name(o: &PushOutcome) -> &'static str {
    match o {
        PushOutcome::Sent { .. } => "sent",
        PushOutcome::Recorded => "recorded",
        PushOutcome::TokenGone { .. } => "token_gone",
        PushOutcome::Retry { .. } => "retry",
        PushOutcome::Rejected { .. } => "rejected",
    }
}
