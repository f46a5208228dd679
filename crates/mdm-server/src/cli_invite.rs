//! `mdm invite` and `mdm invitation list|resend`: invitations from the
//! command line. The mail itself is sent by a running `mdm serve` (its job
//! worker), so these commands only queue and report.

use clap::{Args as ClapArgs, Subcommand};
use mdm_core::invites::{InvitationQuery, InviteRequest};
use mdm_core::tokens::Actor;
use mdm_core::{Core, CoreError, InvitationId};

/// Whom to invite.
#[derive(ClapArgs, Debug)]
pub struct InviteArgs {
    #[arg(long)]
    tenant: String,
    /// Users by email (repeat the flag for several).
    #[arg(long = "email")]
    emails: Vec<String>,
    /// Every enabled user who has not downloaded a management profile yet.
    #[arg(long, conflicts_with = "emails")]
    all_not_registered: bool,
    /// Generate and send temporary passwords to local users (default: the tenant setting).
    #[arg(long)]
    temporary_password: Option<bool>,
}

#[derive(Subcommand, Debug)]
pub enum InvitationCmd {
    /// List invitations with their delivery state, newest first.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Send a user a new invitation like this one (a fresh PIN).
    Resend {
        #[arg(long)]
        tenant: String,
        id: InvitationId,
    },
}

pub async fn invite(core: &Core, args: InviteArgs) -> Result<(), CoreError> {
    let cli = Actor::Cli;
    let tenant = core.tenant(&cli, &args.tenant).await?;
    let mut user_ids = Vec::new();
    for email in &args.emails {
        let email = mdm_core::users::normalize_email(email)?;
        let page = core
            .users(
                &cli,
                &tenant,
                &mdm_core::users::UserQuery {
                    q: Some(email.clone()),
                    ..Default::default()
                },
            )
            .await?;
        let user = page
            .items
            .into_iter()
            .find(|u| u.email == email)
            .ok_or_else(|| {
                CoreError::invalid("email", format!("no user {email} in {}", tenant.slug))
            })?;
        user_ids.push(user.id);
    }
    let req = InviteRequest {
        user_ids,
        all_not_registered: args.all_not_registered,
        temporary_password: args.temporary_password,
    };
    let report = core.invite_users(&cli, &tenant, &req).await?;
    println!(
        "queued {} invitation(s); a running `mdm serve` sends them (mdm invitation list --tenant {})",
        report.invited, tenant.slug
    );
    Ok(())
}

pub async fn invitations(core: &Core, cmd: InvitationCmd) -> Result<(), CoreError> {
    let cli = Actor::Cli;
    match cmd {
        InvitationCmd::List { tenant, limit } => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let q = InvitationQuery {
                limit: Some(limit.clamp(1, 1000)),
                ..Default::default()
            };
            for i in core.invitations(&cli, &tenant, &q).await?.items {
                println!(
                    "{}\t{}\t{}\tattempts={}\t{}{}",
                    i.id,
                    i.email,
                    i.delivery.as_str(),
                    i.attempts,
                    i.last_error.as_deref().unwrap_or("-"),
                    if i.revoked_at.is_some() {
                        "\t(replaced)"
                    } else {
                        ""
                    }
                );
            }
        }
        InvitationCmd::Resend { tenant, id } => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let i = core.resend_invitation(&cli, &tenant, id).await?;
            println!("queued invitation {} to {}", i.id, i.email);
        }
    }
    Ok(())
}
