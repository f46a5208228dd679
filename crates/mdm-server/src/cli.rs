//! The command line: `serve` and the administration commands, which act on
//! the database directly as the `cli` actor (full access, audited as such).

use crate::config::{self, Overrides};
use crate::{serve, wiring};
use anyhow::Context;
use clap::{Args as ClapArgs, Parser, Subcommand};
use mdm_core::audit::AuditQuery;
use mdm_core::invites::AddUsersOptions;
use mdm_core::tokens::{Actor, NewToken, Scope};
use mdm_core::users::{NewUser, UserQuery, UserSource};
use mdm_core::{Core, CoreError};
use std::net::SocketAddr;
use std::path::PathBuf;

/// MDM device registration server.
#[derive(Parser, Debug)]
#[command(name = "mdm", version, about, long_about = None)]
pub struct Args {
    /// TOML configuration file (default: ./mdm.toml when present).
    #[arg(long, global = true, env = "MDM_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL (`sqlite://…` or `postgres://…`); overrides the configuration.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Data directory; overrides the configuration.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// URL devices and browsers reach the server at.
        #[arg(long)]
        public_url: Option<String>,
        /// Print the effective configuration (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Copy a whole database into another, freshly created one (e.g. SQLite into PostgreSQL).
    ConvertDb {
        /// Source database URL.
        #[arg(long)]
        from: String,
        /// Target database URL; it must be empty.
        #[arg(long)]
        to: String,
    },
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Manage users of a tenant.
    #[command(subcommand)]
    User(UserCmd),
    /// Invite users: an email with the registration link and a one-time PIN.
    Invite(crate::cli_invite::InviteArgs),
    /// List or resend invitations.
    #[command(subcommand)]
    Invitation(crate::cli_invite::InvitationCmd),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Manage administrators (portal sign-in).
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Read a tenant's audit trail, newest first.
    Audit(AuditArgs),
    /// Devices of a tenant: list, retire, wipe.
    #[command(subcommand)]
    Device(crate::device_cmd::DeviceCmd),
    /// SCEP tools: inspect a message, mint a one-time challenge.
    #[command(subcommand)]
    Scep(ScepCmd),
    /// Apple tools: print what the server understands of a check-in message,
    /// command result or command (XML or binary plist), and which keys it ignores.
    #[command(subcommand)]
    Apple(AppleCmd),
    /// A tenant's LDAP / Active Directory connector: set, show, test, sync, runs.
    #[command(subcommand)]
    Directory(crate::directory_cli::DirectoryCmd),
    /// Print the OpenAPI document of the REST API.
    Openapi,
}

#[derive(Subcommand, Debug)]
enum TenantCmd {
    /// Create a tenant.
    Create {
        /// Short name used in URLs (a-z, 0-9, '-').
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Add a local user.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Read an initial (temporary) password from this file.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Send the new user an invitation.
        #[arg(long)]
        invite: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        tenant: String,
        /// Substring of email or name.
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Import users from a CSV file (columns: email, display_name, password, enabled).
    Import {
        #[arg(long)]
        tenant: String,
        file: PathBuf,
        /// Send every imported user an invitation.
        #[arg(long)]
        invite: bool,
    },
}

/// `--tenant T` or `--operator`: what a token or administrator may act on.
#[derive(ClapArgs, Debug)]
struct ScopeArgs {
    /// Scope to this tenant (id or slug).
    #[arg(
        long,
        conflicts_with = "operator",
        required_unless_present = "operator"
    )]
    tenant: Option<String>,
    /// Operator scope: every tenant, and creating tenants.
    #[arg(long)]
    operator: bool,
}

impl ScopeArgs {
    async fn resolve(&self, core: &Core) -> Result<Scope, CoreError> {
        match (&self.tenant, self.operator) {
            (_, true) => Ok(Scope::Operator),
            (Some(t), false) => Ok(Scope::Tenant(core.tenant(&Actor::Cli, t).await?.id)),
            (None, false) => Err(CoreError::invalid("tenant", "give --tenant or --operator")),
        }
    }
}

#[derive(Subcommand, Debug)]
enum TokenCmd {
    /// Create an API token and print its secret (shown once).
    Create {
        #[command(flatten)]
        scope: ScopeArgs,
        #[arg(long)]
        name: String,
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
enum AdminCmd {
    /// Create an administrator; the password is read from a file.
    Create {
        #[command(flatten)]
        scope: ScopeArgs,
        #[arg(long)]
        email: String,
        /// File holding the password (at least 8 characters).
        #[arg(long)]
        password_file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum AppleCmd {
    /// Inspect a check-in message, command result or command file.
    Inspect { file: PathBuf },
}

#[derive(Subcommand, Debug)]
enum ScepCmd {
    /// Print what a SCEP message (DER or base64 file) contains: message type,
    /// transactionID, nonces, algorithms, signer; with --tenant, also the CSR
    /// (decrypted with that tenant's CA key). The challenge is never printed.
    Inspect {
        file: PathBuf,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Mint a one-time challenge for a third-party SCEP client.
    Challenge {
        #[arg(long)]
        tenant: String,
        /// What the certificate is for.
        #[arg(long, default_value = "manual")]
        registration: String,
    },
}

#[derive(ClapArgs, Debug)]
struct AuditArgs {
    #[arg(long)]
    tenant: String,
    /// Action, or a prefix ending in '.' (e.g. `user.`).
    #[arg(long)]
    action: Option<String>,
    #[arg(long)]
    actor: Option<String>,
    #[arg(long)]
    user: Option<mdm_core::UserId>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the parsed command.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut overrides = Overrides {
        database_url: args.database_url.clone(),
        data_dir: args.data_dir.clone(),
        ..Default::default()
    };
    if let Command::Serve {
        listen, public_url, ..
    } = &args.command
    {
        overrides.listen = *listen;
        overrides.public_url = public_url.clone();
    }
    let loaded = config::load(args.config.as_deref(), &overrides)?;
    init_logging(&loaded.config);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let config = loaded.config;
    match args.command {
        Command::Serve {
            print_config: true, ..
        } => {
            print!("{}", config.redacted_toml());
            Ok(())
        }
        Command::Serve { .. } => serve::run(config).await,
        Command::Migrate => {
            wiring::open_store(&config).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::ConvertDb { from, to } => convert(&from, &to).await,
        Command::Apple(AppleCmd::Inspect { file }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            match mdm_apple::inspect(&bytes) {
                Ok(i) => {
                    print!("{i}");
                    Ok(())
                }
                Err(e) => anyhow::bail!("{}: {e}", file.display()),
            }
        }
        Command::Openapi => {
            println!("{}", mdm_http::openapi::document_json());
            Ok(())
        }
        cmd => {
            let core = wiring::core(wiring::open_store(&config).await?, &config)?;
            admin(&core, cmd).await.map_err(explain)
        }
    }
}

async fn convert(from: &str, to: &str) -> anyhow::Result<()> {
    let source = wiring::open_url(from, 4).await?;
    let target = wiring::open_url(to, 4).await?;
    let report = mdm_store::copy_all(&source, &target)
        .await
        .context("conversion failed; the target is unchanged")?;
    println!("{report}");
    Ok(())
}

async fn admin(core: &Core, cmd: Command) -> Result<(), CoreError> {
    let cli = Actor::Cli;
    match cmd {
        Command::Invite(args) => crate::cli_invite::invite(core, args).await?,
        Command::Invitation(c) => crate::cli_invite::invitations(core, c).await?,
        Command::Tenant(TenantCmd::Create { slug, name }) => {
            let name = name.unwrap_or_else(|| slug.clone());
            let t = core
                .create_tenant(&cli, mdm_core::tenants::NewTenant { slug, name })
                .await?;
            let url = core.enrollment_url(&cli, &t).await?;
            println!(
                "created tenant {} ({})\nregistration URL: {}",
                t.slug, t.id, url.registration_url
            );
        }
        Command::Tenant(TenantCmd::List) => {
            for t in core.tenants(&cli).await? {
                println!("{}\t{}\t{}", t.slug, t.id, t.name);
            }
        }
        Command::User(UserCmd::Add {
            tenant,
            email,
            name,
            password_file,
            invite,
        }) => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let password = password_file
                .map(|p| {
                    std::fs::read_to_string(&p)
                        .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                })
                .transpose()
                .map_err(|e| CoreError::invalid("password_file", e.to_string()))?;
            let new = NewUser {
                email,
                display_name: name,
                password,
                enabled: true,
            };
            let options = AddUsersOptions {
                invite,
                temporary_password: None,
            };
            for u in core.add_users(&cli, &tenant, vec![new], options).await? {
                println!(
                    "created user {} ({}){}",
                    u.email,
                    u.id,
                    if invite { ", invitation queued" } else { "" }
                );
            }
        }
        Command::User(UserCmd::List {
            tenant,
            search,
            limit,
        }) => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let mut q = UserQuery {
                q: search,
                limit: Some(limit.clamp(1, 1000)),
                ..Default::default()
            };
            loop {
                let page = core.users(&cli, &tenant, &q).await?;
                for u in &page.items {
                    let source = if u.source == UserSource::Ldap {
                        "ldap"
                    } else {
                        "local"
                    };
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        u.email,
                        u.display_name,
                        source,
                        if u.enabled { "enabled" } else { "disabled" },
                        u.id
                    );
                }
                match page.next {
                    Some(next) => q.after = Some(next),
                    None => break,
                }
            }
        }
        Command::User(UserCmd::Import {
            tenant,
            file,
            invite,
        }) => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let data = std::fs::read(&file)
                .map_err(|e| CoreError::invalid("file", format!("{}: {e}", file.display())))?;
            let options = AddUsersOptions {
                invite,
                temporary_password: None,
            };
            match core
                .import_users_inviting(&cli, &tenant, &data, options)
                .await?
            {
                Ok(report) => println!(
                    "imported {} users{}",
                    report.created,
                    if invite { ", invitations queued" } else { "" }
                ),
                Err(rows) => {
                    for r in &rows {
                        eprintln!("line {}: {}: {}", r.line, r.field, r.message);
                    }
                    return Err(CoreError::invalid(
                        "file",
                        format!("{} invalid row(s); nothing was imported", rows.len()),
                    ));
                }
            }
        }
        Command::Token(TokenCmd::Create {
            scope,
            name,
            expires_in_days,
        }) => {
            let scope = scope.resolve(core).await?;
            let issued = core
                .create_token(
                    &cli,
                    scope,
                    NewToken {
                        name,
                        expires_in_days,
                    },
                )
                .await?;
            println!("{}", issued.secret);
            eprintln!(
                "token {} created; the secret above is shown only once",
                issued.token.id
            );
        }
        Command::Audit(a) => audit(core, a).await?,
        Command::Directory(cmd) => crate::directory_cli::run(core, cmd).await?,
        Command::Device(d) => crate::device_cmd::run(core, d).await?,
        Command::Admin(AdminCmd::Create {
            scope,
            email,
            password_file,
        }) => {
            let scope = scope.resolve(core).await?;
            let password = std::fs::read_to_string(&password_file).map_err(|e| {
                CoreError::invalid("password_file", format!("{}: {e}", password_file.display()))
            })?;
            let admin = core
                .create_admin(&cli, scope, &email, password.trim_end_matches(['\r', '\n']))
                .await?;
            println!("created administrator {} ({})", admin.email, admin.id);
        }
        Command::Scep(ScepCmd::Inspect { file, tenant }) => {
            let bytes = std::fs::read(&file)
                .map_err(|e| CoreError::invalid("file", format!("{}: {e}", file.display())))?;
            let tenant = match tenant {
                Some(t) => Some(core.tenant(&cli, &t).await?),
                None => None,
            };
            print!(
                "{}",
                core.inspect_scep_message(&cli, tenant.as_ref(), &bytes)
                    .await?
            );
        }
        Command::Scep(ScepCmd::Challenge {
            tenant,
            registration,
        }) => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let ch = core.mint_challenge(&cli, &tenant, &registration).await?;
            println!("{}", ch.challenge);
            eprintln!(
                "one-time challenge for {}; valid until {}; SCEP URL {}",
                ch.registration,
                ch.expires_at,
                core.scep_url(&tenant)
            );
        }
        Command::Serve { .. }
        | Command::Migrate
        | Command::ConvertDb { .. }
        | Command::Openapi
        | Command::Apple(_) => {}
    }
    Ok(())
}

async fn audit(core: &Core, a: AuditArgs) -> Result<(), CoreError> {
    let cli = Actor::Cli;
    let tenant = core.tenant(&cli, &a.tenant).await?;
    let q = AuditQuery {
        action: a.action,
        actor: a.actor,
        user_id: a.user,
        limit: Some(a.limit),
        ..Default::default()
    };
    let page = core.audit(&cli, Some(&tenant), &q).await?;
    for r in page.items {
        if a.json {
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
        } else {
            let at =
                r.at.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
            println!(
                "{at}\t{}\t{}\t{}:{}\t{}",
                r.action, r.actor_label, r.subject_type, r.subject_id, r.details
            );
        }
    }
    Ok(())
}

fn explain(e: CoreError) -> anyhow::Error {
    match e {
        CoreError::NotFound(what) => anyhow::anyhow!("{what} not found"),
        other => anyhow::anyhow!("{other}"),
    }
}

fn init_logging(config: &config::Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("MDM_LOG").unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
