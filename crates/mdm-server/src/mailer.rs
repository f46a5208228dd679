//! The two [`Mailer`] adapters: SMTP (plain, STARTTLS or implicit TLS, with
//! optional authentication and a custom CA) and, when no SMTP server is
//! configured, an outbox directory of `.eml` files.

use crate::config::{Config, SmtpSecurity};
use anyhow::Context;
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mdm_core::mail::{MailError, MailMessage, Mailer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Builds the MIME message (multipart/alternative: text, then HTML).
pub fn compose(from: &Mailbox, m: &MailMessage) -> Result<Message, MailError> {
    let to: Mailbox = format!(
        "{} <{}>",
        m.to_name.replace(['"', '<', '>', '\r', '\n'], ""),
        m.to
    )
    .parse()
    .or_else(|_| m.to.parse())
    .map_err(|e| MailError::Permanent(format!("recipient {}: {e}", m.to)))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(m.subject.replace(['\r', '\n'], " "))
        .multipart(MultiPart::alternative_plain_html(
            m.text.clone(),
            m.html.clone(),
        ))
        .map_err(|e| MailError::Permanent(format!("composing the message: {e}")))
}

/// Delivers over SMTP with a connection pool.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(config: &Config, host: &str) -> anyhow::Result<Self> {
        let security = config.smtp_security;
        let port = config.smtp_port.unwrap_or(match security {
            SmtpSecurity::None => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        });
        let mut tls = TlsParameters::builder(host.to_string());
        if let Some(ca) = &config.smtp_ca_file {
            let pem = std::fs::read(ca)
                .with_context(|| format!("cannot read smtp_ca_file {}", ca.display()))?;
            let cert =
                Certificate::from_pem(&pem).context("smtp_ca_file is not a PEM certificate")?;
            // Only this CA is trusted for the mail server.
            tls = tls
                .certificate_store(CertificateStore::None)
                .add_root_certificate(cert);
        }
        let tls = tls.build_rustls().context("SMTP TLS settings")?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(Duration::from_secs(config.smtp_timeout_secs)))
            .pool_config(PoolConfig::new().max_size(4))
            .tls(match security {
                SmtpSecurity::None => Tls::None,
                SmtpSecurity::Starttls => Tls::Required(tls),
                SmtpSecurity::Tls => Tls::Wrapper(tls),
            });
        if let Some(user) = &config.smtp_username {
            let password = config.smtp_password.clone().unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Self {
            transport: builder.build(),
            from: mail_from(config)?,
        })
    }
}

fn mail_from(config: &Config) -> anyhow::Result<Mailbox> {
    config.mail_from.parse().with_context(|| {
        format!(
            "mail_from {:?} is not an address like 'MDM <mdm@example.com>'",
            config.mail_from
        )
    })
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, message: &MailMessage) -> Result<(), MailError> {
        let msg = compose(&self.from, message)?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Permanent(format!("SMTP: {e}"))),
            Err(e) => Err(MailError::Transient(format!("SMTP: {e}"))),
        }
    }
}

/// Writes each message to `<dir>/<time>-<id>.eml`.
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, message: &MailMessage) -> Result<(), MailError> {
        let bytes = compose(&self.from, message)?.formatted();
        let name = format!(
            "{}-{}.eml",
            time::OffsetDateTime::now_utc().unix_timestamp(),
            uuid::Uuid::now_v7()
        );
        let (dir, tmp) = (self.dir.clone(), format!(".{name}.tmp"));
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(&tmp), bytes)?;
            std::fs::rename(dir.join(&tmp), dir.join(name))
        })
        .await
        .map_err(|e| MailError::Transient(format!("outbox: {e}")))?
        .map_err(|e| MailError::Transient(format!("outbox {}: {e}", self.dir.display())))
    }
}

/// The configured mailer: SMTP when `smtp_host` is set, else the outbox.
pub fn from_config(config: &Config) -> anyhow::Result<Arc<dyn Mailer>> {
    Ok(match &config.smtp_host {
        Some(host) => Arc::new(SmtpMailer::new(config, host)?),
        None => Arc::new(OutboxMailer {
            dir: config.data_dir.join("outbox"),
            from: mail_from(config)?,
        }),
    })
}
