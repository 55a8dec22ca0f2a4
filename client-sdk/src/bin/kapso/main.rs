//! `kapso`: the gateway from a terminal. Send and read messages through the
//! core, follow its event log as JSON lines, send signed test webhooks to
//! the adapter the way Kapso does, and stand in for Kapso itself.
//!
//! Modules: [`cli`] (flags and dispatch), [`messaging`] (commands against the
//! core), [`consumers`] (`kapso consumer ...`), [`send`] (`kapso send KIND`),
//! [`media`] (`kapso media upload|download`), [`webhook`] (`kapso webhook send`),
//! [`dev`] (`kapso dev`, a local Kapso).

mod cli;
mod consumers;
mod dev;
mod media;
mod messaging;
mod send;
mod webhook;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` keeps the cause chain on the one line.
            eprintln!("kapso: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
