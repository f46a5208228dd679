//! `mdm`: the MDM device registration server and its administration commands.

mod cli;
mod cli_invite;
mod config;
mod device_cmd;
mod directory_cli;
mod mailer;
mod serve;
mod wiring;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
