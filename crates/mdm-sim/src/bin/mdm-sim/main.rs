//! `mdm-sim`: simulated Apple devices for demos and load.
//!
//!   mdm-sim enroll --url URL --token T [--tenant SLUG] [--platform ios|macos]
//!                  [--profile FILE | --profile-url URL] [--mtls]
//!       one device, every step printed, then one command-channel session.
//!   mdm-sim load --url URL --token T [--modes register,idle,roundtrip] [--enrolled 10000]
//!                [-n N] [--polls M] [--roundtrips R] [-c C] [--pid PID] [--key-cache DIR]
//!       registrations, idle polls and command round trips against any
//!       server, with its CPU per operation from /proc and p50/p99 latency.
//!   mdm-sim android-load --url URL --token T --modes register,checkin [--enrolled 10000]
//!                [-n N] [--polls M] [-c C] [--pid PID]
//!       Android agent registrations and signed check-ins (see scripts/bench-android).

mod android_load;
mod channel;
mod load;
mod wrk;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use mdm_sim::{AdminApi, Device, DeviceFacts, IdentityMode, Platform};

#[derive(Parser)]
#[command(
    name = "mdm-sim",
    about = "Simulated iPhones and Macs that speak the Apple MDM wire protocols"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Enrol one device, printing every step, then answer its queued commands.
    Enroll(EnrollArgs),
    /// Measure registrations, idle polls and command round trips.
    Load(load::LoadArgs),
    /// Measure Android agent registrations and signed check-ins
    /// (`--modes register,checkin`; `--enrolled` devices, `--polls` check-ins).
    AndroidLoad(load::LoadArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum PlatformArg {
    Ios,
    Macos,
}

#[derive(clap::Args)]
struct EnrollArgs {
    /// Base URL of the server (http://127.0.0.1:8080).
    #[arg(long)]
    url: String,
    /// API token (to issue the profile through the admin API, or for --profile-url).
    #[arg(long, env = "MDM_TOKEN")]
    token: Option<String>,
    #[arg(long, default_value = "default")]
    tenant: String,
    #[arg(long, value_enum, default_value_t = PlatformArg::Ios)]
    platform: PlatformArg,
    /// A signed .mobileconfig on disk instead of issuing one.
    #[arg(long, conflicts_with = "profile_url")]
    profile: Option<std::path::PathBuf>,
    /// Download the profile from this URL (GET, bearer token when given).
    #[arg(long)]
    profile_url: Option<String>,
    /// Present the identity as the TLS client certificate (https ServerURL).
    #[arg(long)]
    mtls: bool,
    /// Trust this PEM certificate for the profile download (a self-signed
    /// server); afterwards the device trusts the profile's own anchors.
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
}

fn print_step(line: &str) {
    println!("  {line}");
}

async fn enroll(a: EnrollArgs) -> anyhow::Result<()> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = &a.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    let http = builder.build()?;
    let platform = match a.platform {
        PlatformArg::Ios => Platform::Iphone,
        PlatformArg::Macos => Platform::Mac,
    };
    let signed = match (&a.profile, &a.profile_url) {
        (Some(path), _) => std::fs::read(path).with_context(|| format!("{}", path.display()))?,
        (None, Some(url)) => {
            mdm_sim::fetch_profile(&http, url, a.token.as_deref())
                .await?
                .signed
        }
        (None, None) => {
            let token = a
                .token
                .as_deref()
                .context("--token (or MDM_TOKEN) is needed to issue a profile")?;
            let got = AdminApi::new(&a.url, &a.tenant, token)
                .issue_profile(&http, platform, None)
                .await?;
            println!(
                "profile issued: registration {}",
                got.registration.as_deref().unwrap_or("?")
            );
            got.signed
        }
    };
    let facts = match platform {
        Platform::Iphone => DeviceFacts::iphone(1),
        Platform::Mac => DeviceFacts::mac(1),
    };
    println!(
        "device: {} {} UDID {} serial {}",
        facts.model_name, facts.product_name, facts.udid, facts.serial_number
    );
    let mode = if a.mtls {
        IdentityMode::Mtls
    } else {
        IdentityMode::Signature
    };
    let mut device = Device::new(facts, http)
        .with_identity_mode(mode)
        .with_trace(print_step);
    device.enroll(&signed).await?;
    println!("enrolled; command channel:");
    let handled = device.wake().await?;
    if handled.is_empty() {
        println!("  no commands queued");
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let result = match Cli::parse().cmd {
        Cmd::Enroll(a) => enroll(a).await,
        Cmd::Load(a) => load::run(a).await,
        Cmd::AndroidLoad(a) => android_load::run(a).await,
    };
    if let Err(e) = result {
        eprintln!("mdm-sim: {e:#}");
        std::process::exit(1);
    }
}
