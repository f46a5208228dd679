//! Mail templates an administrator can change, per tenant, with a built-in
//! default. Templates use a deliberately small language: `{{ name }}`
//! placeholders from a fixed list, nothing else (no logic, no includes), so
//! an edited template can never run code or reach data it was not given.
//! In the HTML body every value is HTML-escaped; the `*_block` placeholders
//! are paragraphs the server writes itself from escaped values.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use serde::{Deserialize, Serialize};

/// The only template kind so far.
pub const INVITATION: &str = "invitation";

/// Placeholders an invitation template may use.
pub const PLACEHOLDERS: [&str; 9] = [
    "name",
    "email",
    "tenant",
    "registration_url",
    "pin",
    "pin_expires",
    "pin_block",
    "password_block",
    "instructions",
];

/// Placeholders both bodies must contain: without them the mail is useless.
pub const REQUIRED: [&str; 2] = ["registration_url", "pin_block"];

/// A subject, a plain-text body and an HTML body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailTemplate {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A tenant's template as shown to administrators.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    #[serde(flatten)]
    pub template: MailTemplate,
    /// True while the tenant uses the built-in template.
    pub is_default: bool,
    /// The placeholders the template may use.
    pub placeholders: Vec<&'static str>,
}

impl MailTemplate {
    /// The built-in invitation template.
    pub fn default_invitation() -> Self {
        Self {
            subject: "Register your device with {{ tenant }}".into(),
            text: DEFAULT_TEXT.into(),
            html: DEFAULT_HTML.into(),
        }
    }

    /// Checks sizes and placeholders of an invitation template.
    pub fn validate(&self) -> Result<(), CoreError> {
        self.validate_with(&PLACEHOLDERS, &REQUIRED)
    }

    /// Checks sizes, that only `known` placeholders are used and that both
    /// bodies hold every `required` one.
    pub fn validate_with(&self, known: &[&str], required: &[&str]) -> Result<(), CoreError> {
        if self.subject.trim().is_empty() || self.subject.chars().count() > 200 {
            return Err(CoreError::invalid("subject", "1-200 characters"));
        }
        for (field, body) in [("text", &self.text), ("html", &self.html)] {
            if body.len() > 64 * 1024 {
                return Err(CoreError::invalid(field, "at most 64 KiB"));
            }
            for name in placeholders(body) {
                if !known.contains(&name.as_str()) {
                    return Err(CoreError::invalid(
                        field,
                        format!(
                            "unknown placeholder {{{{ {name} }}}}; known: {}",
                            known.join(", ")
                        ),
                    ));
                }
            }
            for req in required {
                if !placeholders(body).iter().any(|n| n == req) {
                    return Err(CoreError::invalid(
                        field,
                        format!("must contain {{{{ {req} }}}}"),
                    ));
                }
            }
        }
        for name in placeholders(&self.subject) {
            if !known.contains(&name.as_str()) {
                return Err(CoreError::invalid(
                    "subject",
                    format!("unknown placeholder {{{{ {name} }}}}"),
                ));
            }
        }
        Ok(())
    }
}

/// The names of the `{{ … }}` placeholders in `src`, in order.
pub fn placeholders(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push(after[..end].trim().to_string());
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    out
}

/// Replaces every `{{ name }}` with `value(name)`; text outside placeholders
/// is copied as it is. Unknown names become empty (templates are validated
/// when saved).
pub fn render(src: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(src.len() + 256);
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push_str(&value(after[..end].trim()).unwrap_or_default());
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const DEFAULT_TEXT: &str = "Hello {{ name }},

{{ tenant }} invites you to register your phone, tablet or Mac for device management.

Open this link on the device you want to register:
{{ registration_url }}

{{ pin_block }}
{{ password_block }}
{{ instructions }}
If you lose this message, the same link still works; ask your administrator for a new PIN.
";

const DEFAULT_HTML: &str = "<!doctype html><html><body style=\"font-family: sans-serif\">
<p>Hello {{ name }},</p>
<p>{{ tenant }} invites you to register your phone, tablet or Mac for device management.</p>
<p>Open this link on the device you want to register:<br><a href=\"{{ registration_url }}\">{{ registration_url }}</a></p>
{{ pin_block }}
{{ password_block }}
{{ instructions }}
<p>If you lose this message, the same link still works; ask your administrator for a new PIN.</p>
</body></html>
";

impl Core {
    /// The tenant's invitation template (the built-in one until changed).
    pub async fn invitation_template(
        &self,
        actor: &Actor,
        tenant: &Tenant,
    ) -> CoreResult<TemplateView> {
        actor.require_tenant(tenant.id)?;
        let stored = self.store.mail_template(tenant.id, INVITATION).await?;
        Ok(TemplateView {
            is_default: stored.is_none(),
            template: stored.unwrap_or_else(MailTemplate::default_invitation),
            placeholders: PLACEHOLDERS.to_vec(),
        })
    }

    /// Replaces the tenant's invitation template; `None` restores the default.
    pub async fn set_invitation_template(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        template: Option<MailTemplate>,
    ) -> CoreResult<TemplateView> {
        actor.require_tenant(tenant.id)?;
        if let Some(t) = &template {
            t.validate()?;
        }
        let audit = AuditEntry::new(
            Some(tenant.id),
            self.now(),
            actor,
            AuditAction::MailTemplateUpdated,
            ("mail_template", INVITATION.to_string()),
        )
        .details(serde_json::json!({ "reset_to_default": template.is_none() }));
        self.store
            .put_mail_template(tenant.id, INVITATION, template.as_ref(), self.now(), &audit)
            .await?;
        self.invitation_template(actor, tenant).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_validates() {
        let t = MailTemplate::default_invitation();
        assert!(t.validate().is_ok());
        let out = render("Hi {{name}}, {{ x }}!{{ unclosed", |n| {
            (n == "name").then(|| "Ann".to_string())
        });
        assert_eq!(out, "Hi Ann, !{{ unclosed");
        let mut bad = t.clone();
        bad.text = "{{ registration_url }} {{ pin_block }} {{ secret }}".into();
        assert!(bad.validate().is_err());
        bad.text = "{{ pin_block }}".into();
        assert!(bad.validate().is_err(), "the link is required");
        assert_eq!(html_escape("<a&\"'>"), "&lt;a&amp;&quot;&#39;&gt;");
    }
}
