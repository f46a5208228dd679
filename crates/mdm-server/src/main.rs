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

/// mimalloc instead of the system allocator: a request allocates and frees
/// many small buffers (DER, plists, rows) across tokio's and SQLite's threads,
/// and glibc's malloc and free were ≈ 3.5 % of a SCEP enrollment's samples in a profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
