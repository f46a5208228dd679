//! `mdm directory …`: a tenant's LDAP / Active Directory connector from the
//! command line (configure, show, test, sync, runs, check a password).

use clap::{Args as ClapArgs, Subcommand};
use mdm_core::directory::{
    AttributeMap, ConnectorSettings, DirectorySecurity, SyncRun, SyncTrigger,
};
use mdm_core::signin::PasswordCheck;
use mdm_core::tokens::Actor;
use mdm_core::{Core, CoreError};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum DirectoryCmd {
    /// Create or replace the tenant's connector.
    Set(Box<SetArgs>),
    /// Show the connector (never the bind password).
    Show {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Test the connection step by step; exits non-zero when a step fails.
    Test {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Sync the directory into the tenant's users now (all or nothing).
    Sync {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// The latest sync runs, newest first.
    Runs {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Check a user's network credentials (search for the DN, then bind).
    CheckPassword {
        #[arg(long)]
        tenant: String,
        /// The user's email.
        #[arg(long)]
        email: String,
        /// File holding the password.
        #[arg(long)]
        password_file: PathBuf,
    },
}

#[derive(ClapArgs, Debug)]
pub struct SetArgs {
    #[arg(long)]
    tenant: String,
    /// ldap://host[:port] or ldaps://host[:port].
    #[arg(long)]
    url: String,
    /// none, starttls or ldaps (default: ldaps for ldaps://, else starttls).
    #[arg(long, value_parser = parse_security)]
    security: Option<DirectorySecurity>,
    /// The service account that searches the directory.
    #[arg(long)]
    bind_dn: String,
    /// File holding the service account's password (required the first time).
    #[arg(long)]
    bind_password_file: Option<PathBuf>,
    #[arg(long)]
    base_dn: String,
    /// Default (objectClass=inetOrgPerson).
    #[arg(long)]
    user_filter: Option<String>,
    /// A group DN (members through memberOf) or a filter in parentheses.
    #[arg(long)]
    group_filter: Option<String>,
    #[arg(long, default_value = "mail")]
    email_attr: String,
    #[arg(long, default_value = "cn")]
    name_attr: String,
    /// uid (OpenLDAP) or sAMAccountName (Active Directory).
    #[arg(long, default_value = "uid")]
    login_attr: String,
    /// entryUUID (OpenLDAP) or objectGUID (Active Directory).
    #[arg(long, default_value = "entryUUID")]
    id_attr: String,
    #[arg(long)]
    page_size: Option<u32>,
    /// Seconds between scheduled syncs; 0 turns them off (default 3600).
    #[arg(long)]
    sync_interval_secs: Option<i64>,
    #[arg(long)]
    timeout_secs: Option<u32>,
    /// PEM file with the CA certificate(s) of the directory's TLS certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Store the connector disabled (no sync, no sign-in).
    #[arg(long)]
    disabled: bool,
}

fn parse_security(s: &str) -> Result<DirectorySecurity, String> {
    DirectorySecurity::parse(s).ok_or_else(|| format!("'{s}': expected none, starttls or ldaps"))
}

fn read_secret(field: &str, path: &Path) -> Result<String, CoreError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|e| CoreError::invalid(field, format!("{}: {e}", path.display())))
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn print_run(run: &SyncRun) {
    let at = run
        .started_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    println!(
        "{at}\t{}\t{}\tentries {}\tcreated {}\tupdated {}\tdisabled {}\tunchanged {}\terrors {}\t{} ms{}",
        run.trigger.as_str(),
        run.status.as_str(),
        run.entries,
        run.created,
        run.updated,
        run.disabled,
        run.unchanged,
        run.error_count,
        run.duration_ms,
        run.error
            .as_deref()
            .map(|e| format!("\t{e}"))
            .unwrap_or_default()
    );
    for e in &run.errors {
        println!("  {}: {}", e.dn, e.message);
    }
}

/// Runs one `mdm directory` command as the `cli` actor.
pub async fn run(core: &Core, cmd: DirectoryCmd) -> Result<(), CoreError> {
    let cli = Actor::Cli;
    match cmd {
        DirectoryCmd::Set(a) => {
            let a = *a;
            let tenant = core.tenant(&cli, &a.tenant).await?;
            let bind_password = a
                .bind_password_file
                .as_deref()
                .map(|p| read_secret("bind_password_file", p))
                .transpose()?;
            let ca_pem = a
                .ca_file
                .as_deref()
                .map(|p| read_secret("ca_file", p))
                .transpose()?;
            let settings = ConnectorSettings {
                url: a.url,
                security: a.security,
                bind_dn: a.bind_dn,
                bind_password,
                base_dn: a.base_dn,
                user_filter: a.user_filter,
                group_filter: a.group_filter,
                attributes: AttributeMap {
                    email: a.email_attr,
                    display_name: a.name_attr,
                    login_name: a.login_attr,
                    stable_id: a.id_attr,
                },
                page_size: a.page_size,
                sync_interval_secs: a.sync_interval_secs,
                timeout_secs: a.timeout_secs,
                ca_pem,
                enabled: Some(!a.disabled),
            };
            let c = core
                .set_directory_connector(&cli, &tenant, settings)
                .await?;
            println!(
                "directory connector of {} set: {} ({})",
                tenant.slug,
                c.url,
                c.security.as_str()
            );
        }
        DirectoryCmd::Show { tenant, json: j } => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let c = core.directory_connector(&cli, &tenant).await?;
            if j {
                println!("{}", json(&c));
            } else {
                println!(
                    "url\t{}\nsecurity\t{}\nbind_dn\t{}\nbase_dn\t{}\nuser_filter\t{}\ngroup_filter\t{}",
                    c.url,
                    c.security.as_str(),
                    c.bind_dn,
                    c.base_dn,
                    c.user_filter,
                    c.group_filter.as_deref().unwrap_or("-")
                );
                let m = &c.attributes;
                println!(
                    "attributes\temail={} display_name={} login_name={} stable_id={}",
                    m.email, m.display_name, m.login_name, m.stable_id
                );
                println!(
                    "page_size\t{}\nsync_interval_secs\t{}\ntimeout_secs\t{}\nca\t{}\nenabled\t{}",
                    c.page_size,
                    c.sync_interval_secs,
                    c.timeout_secs,
                    if c.ca_pem.is_some() {
                        "custom"
                    } else {
                        "system roots"
                    },
                    c.enabled
                );
            }
        }
        DirectoryCmd::Test { tenant, json: j } => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let report = core.test_directory(&cli, &tenant).await?;
            if j {
                println!("{}", json(&report));
            } else {
                for s in &report.steps {
                    println!(
                        "{}\t{}\t{}",
                        if s.ok { "ok" } else { "FAILED" },
                        s.step,
                        s.message
                    );
                }
                for dn in &report.sample_dns {
                    println!("sample\t{dn}");
                }
            }
            if !report.ok {
                return Err(CoreError::Upstream {
                    code: "directory_test_failed",
                    message: format!(
                        "the connection test failed ({})",
                        report.error_code.as_deref().unwrap_or("unknown")
                    ),
                });
            }
        }
        DirectoryCmd::Sync { tenant, json: j } => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let run = core
                .sync_directory(&cli, &tenant, SyncTrigger::Manual)
                .await?;
            if j {
                println!("{}", json(&run));
            } else {
                print_run(&run);
            }
        }
        DirectoryCmd::Runs {
            tenant,
            limit,
            json: j,
        } => {
            let tenant = core.tenant(&cli, &tenant).await?;
            for run in core.directory_runs(&cli, &tenant, Some(limit)).await? {
                if j {
                    println!("{}", serde_json::to_string(&run).unwrap_or_default());
                } else {
                    print_run(&run);
                }
            }
        }
        DirectoryCmd::CheckPassword {
            tenant,
            email,
            password_file,
        } => {
            let tenant = core.tenant(&cli, &tenant).await?;
            let password = read_secret("password_file", &password_file)?;
            match core
                .check_user_password(&cli, &tenant, &email, &password)
                .await?
            {
                PasswordCheck::Valid => println!("valid"),
                PasswordCheck::Invalid => {
                    return Err(CoreError::invalid(
                        "password",
                        "invalid credentials (or the user is disabled)",
                    ));
                }
                PasswordCheck::DirectoryUnavailable => {
                    return Err(CoreError::Upstream {
                        code: "directory_unavailable",
                        message: "the directory could not be asked".into(),
                    });
                }
            }
        }
    }
    Ok(())
}
