//! `kapso dev`: a stand-in for Kapso on the developer's machine.
//!
//! It answers the send and mark-read calls of Kapso's Meta proxy as Kapso does
//! (same paths, bodies and errors), then posts signed `sent`, `delivered` and
//! `read` webhooks for each accepted send, so receipts flow through the whole
//! gateway. `kapso dev trigger received` plays the customer: it posts a signed
//! inbound webhook straight to the adapter, no server needed.
//!
//! Modules: [`api`] (the HTTP endpoint), [`request`] (what a call asks, checked
//! as Meta checks it), [`meta_error`] (Meta's error answers), [`misbehaviour`]
//! (failures on purpose), [`receipts`] (the status webhooks of a send),
//! [`webhooks`] (signed POSTs, retried as Kapso retries), [`conversation`] (the
//! conversation both directions share), [`trigger`] (inbound webhooks).

mod api;
mod conversation;
mod meta_error;
mod misbehaviour;
mod receipts;
mod request;
mod trigger;
mod webhooks;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use tokio::net::TcpListener;

use crate::cli::Secret;

/// Where the adapter of a gateway started with its defaults takes webhooks.
pub const DEFAULT_WEBHOOK_URL: &str = "http://127.0.0.1:8000/api/whatsapp/webhook";

/// `kapso dev --help`: what the server answers and how it misbehaves on purpose.
pub const LONG_ABOUT: &str = "\
Run a local stand-in for Kapso to develop against, or (kapso dev trigger) play a customer.

The server answers POST /meta/whatsapp/v24.0/{phone_number_id}/messages as Kapso's
Meta proxy does: sends of every kind get
{\"messaging_product\":\"whatsapp\",\"contacts\":[...],\"messages\":[{\"id\":\"wamid...\"}]},
read receipts {\"success\":true}, mistakes Meta's error object. After each accepted
send it posts signed whatsapp.message.sent, .delivered and .read webhooks for it to
--webhook-url, retrying a non-2xx answer with backoff. Point a core at it with
KAPSO_API_BASE_URL=http://LISTEN.

Misbehaviour, to see how callers cope:
  --burst-429 N   the first N calls get 429 with Meta's rate-limit error
                  (code 130429) and Retry-After: 1
  --fail-rate F   that share (0 to 1) of the calls after them get 503 with
                  Meta's \"service unavailable\" (code 131016): callers cannot
                  know whether such a send went out
  --latency-ms MS every answer waits MS milliseconds first
A call refused so gets no webhooks. The 24-hour window is not enforced here
(the core enforces it).";

/// `kapso dev`'s flags ([`LONG_ABOUT`] is its help); the settings that let
/// `kapso dev trigger` go without the server's `--secret` are on the command.
#[derive(Debug, Args)]
pub struct DevArgs {
    #[command(subcommand)]
    pub command: Option<DevCommand>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Post a signed inbound webhook to the adapter, as Kapso does when a customer writes.
    #[command(subcommand)]
    Trigger(trigger::TriggerCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to serve Kapso's API on.
    #[arg(long, env = "KAPSO_DEV_LISTEN_ADDR", default_value = "127.0.0.1:8001")]
    pub listen: SocketAddr,
    /// Where status webhooks go: the adapter's webhook URL.
    #[arg(long, env = "KAPSO_WEBHOOK_URL", default_value = DEFAULT_WEBHOOK_URL)]
    pub webhook_url: String,
    /// Secret the webhooks are signed with (the adapter's KAPSO_WEBHOOK_SECRET).
    // Required, but only without a subcommand: clap leaves it unset for `trigger`.
    #[arg(
        long,
        env = "KAPSO_WEBHOOK_SECRET",
        hide_env_values = true,
        required = true
    )]
    pub secret: Option<Secret>,
    /// The API key callers must present (X-API-Key); any key is taken when unset.
    #[arg(long, env = "KAPSO_API_TOKEN", hide_env_values = true)]
    pub api_key: Option<Secret>,
    /// Share of calls, 0 to 1, answered 503 (Meta code 131016) instead of taken.
    #[arg(long, default_value_t = 0.0, value_parser = misbehaviour::parse_rate)]
    pub fail_rate: f64,
    /// Milliseconds to wait before answering each call.
    #[arg(long, alias = "latency", default_value_t = 0)]
    pub latency_ms: u64,
    /// Answer the first N calls 429 (Meta code 130429, Retry-After: 1).
    #[arg(long = "burst-429", value_name = "N", default_value_t = 0)]
    pub burst_429: u64,
}

pub async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(DevCommand::Trigger(command)) => trigger::run(command).await,
        None => serve(args.serve).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let secret = args
        .secret
        .context("--secret (KAPSO_WEBHOOK_SECRET) is required")?;
    let webhooks = webhooks::Webhooks::new(
        args.webhook_url.clone(),
        secret,
        webhooks::KAPSO_LIKE_BACKOFF.to_vec(),
    )?;
    let state = api::DevKapso {
        api_key: args.api_key,
        misbehaviour: misbehaviour::Misbehaviour::new(
            args.fail_rate,
            Duration::from_millis(args.latency_ms),
            args.burst_429,
        ),
        webhooks: Arc::new(webhooks),
    };
    // The first line names the bound address (port 0 included), for scripts.
    println!("kapso dev listening on http://{addr}");
    println!("  point the core at it: KAPSO_API_BASE_URL=http://{addr}");
    println!("  receipts go to {}", args.webhook_url);
    axum::serve(listener, api::router(Arc::new(state)))
        .with_graceful_shutdown(kapso_process::shutdown::signal())
        .await
        .context("serving")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    /// One of the project's Kapso fixtures (`adapter/tests/fixtures/`), which
    /// the bodies `kapso dev` writes are held to.
    pub(super) fn fixture(name: &str) -> serde_json::Value {
        let path = format!(
            "{}/../adapter/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from([&["kapso", "dev"], args].concat())
    }

    #[test]
    fn a_trigger_goes_without_the_servers_flags() {
        let cli = parse(&[
            "trigger",
            "received",
            "--from",
            "+15551234567",
            "--text",
            "hola",
            "--secret",
            "s",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Dev(super::DevArgs {
                command: Some(super::DevCommand::Trigger(_)),
                ..
            })
        ));
        assert!(
            parse(&[
                "--secret", "s", "trigger", "received", "--from", "1", "--text", "x"
            ])
            .is_err()
        );
    }

    #[test]
    fn a_trigger_sends_exactly_one_kind_of_content() {
        let base = [
            "trigger",
            "received",
            "--from",
            "+15551234567",
            "--secret",
            "s",
        ];
        assert!(parse(&base).is_err());
        assert!(parse(&[&base[..], &["--text", "x", "--location", "1,2"]].concat()).is_err());
        assert!(parse(&[&base[..], &["--location", "-33.4,-70.6"]].concat()).is_ok());
        assert!(parse(&[&base[..], &["--button-reply", "no-title"]].concat()).is_err());
    }

    #[test]
    fn the_server_takes_its_misbehaviour_flags() {
        let cli = parse(&[
            "--secret",
            "s",
            "--fail-rate",
            "0.5",
            "--latency",
            "20",
            "--burst-429",
            "3",
        ])
        .unwrap();
        let Command::Dev(dev) = cli.command else {
            panic!("not dev")
        };
        assert_eq!(dev.serve.fail_rate, 0.5);
        assert_eq!(dev.serve.latency_ms, 20);
        assert_eq!(dev.serve.burst_429, 3);
        assert!(parse(&["--secret", "s", "--fail-rate", "2"]).is_err());
    }
}
