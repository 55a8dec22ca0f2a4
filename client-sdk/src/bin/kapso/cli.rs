//! The `kapso` command line: every flag, its environment variable and default,
//! and the dispatch to the commands.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use kapso_client::Client;
// A secret from a flag or the environment; `Debug` never shows it.
pub use kapso_process::Secret;

use crate::{consumers, dev, media, messaging, send, webhook};

/// Talk to the kapso-gateway core and send signed test webhooks to its adapter.
///
/// Messages and events print as JSON (one object per line): proto field names,
/// enums by their proto names (e.g. MESSAGE_STATUS_READ), payloads embedded as JSON.
#[derive(Debug, Parser)]
#[command(name = "kapso", version)]
pub struct Cli {
    /// Address of the gateway core: `host:port`, `http://host:port` or `https://host:port`.
    #[arg(
        long,
        env = "KAPSO_CORE_URL",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub core_url: String,

    /// Token for the core's gRPC API, sent as `authorization: Bearer <token>`.
    #[arg(long, env = "GATEWAY_API_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<Secret>,

    /// Deadline in seconds of each call to the core (not of `watch`).
    #[arg(long, env = "KAPSO_TIMEOUT_SECS", default_value_t = 30, global = true)]
    pub timeout_secs: u64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send a text message; prints the stored message as JSON.
    SendText(SendTextArgs),
    /// Send a template, media, interactive, reaction or location message;
    /// prints the stored message as JSON.
    #[command(subcommand)]
    Send(send::SendCommand),
    /// Upload or download media files through the core.
    #[command(subcommand)]
    Media(media::MediaCommand),
    /// Mark an inbound message read (blue ticks).
    MarkRead {
        /// The wamid of the inbound message.
        message_id: String,
        /// Also show "typing…" to the customer.
        #[arg(long)]
        typing: bool,
    },
    /// Print a message (by wamid, gateway id or idempotency key) as JSON.
    Get {
        /// wamid, gateway id or idempotency key.
        id: String,
    },
    /// Print every message of a conversation, oldest first, one JSON object per line.
    List {
        /// The Kapso conversation id.
        conversation_id: String,
    },
    /// Follow the event log: one JSON object per line, replay first, then live.
    Watch(WatchArgs),
    /// Record that a consumer processed everything up to SEQUENCE.
    Ack {
        /// Consumer name.
        #[arg(long)]
        consumer: String,
        /// Last processed sequence.
        sequence: u64,
    },
    /// Move named consumers and see where they stand.
    #[command(subcommand)]
    Consumer(ConsumerCommand),
    /// Act as Kapso towards the adapter.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Run a local stand-in for Kapso to develop against, or play a customer.
    #[command(
        long_about = dev::LONG_ABOUT,
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true
    )]
    Dev(dev::DevArgs),
}

#[derive(Debug, Args)]
pub struct SendTextArgs {
    #[command(flatten)]
    pub recipient: RecipientArgs,
    /// Message text, 1 to 4096 characters.
    #[arg(long)]
    pub text: String,
    /// wamid of the message to reply to.
    #[arg(long)]
    pub reply_to: Option<String>,
    /// Makes a retry safe: the core sends at most once per key.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Sending business number id (default: the core's or the conversation's).
    #[arg(long)]
    pub phone_number_id: Option<String>,
    /// Let WhatsApp render a preview of the first link.
    #[arg(long)]
    pub preview_url: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RecipientArgs {
    /// Recipient phone number (digits, leading + accepted).
    #[arg(long)]
    pub to: Option<String>,
    /// Send to the contact of this conversation id.
    #[arg(long)]
    pub conversation: Option<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Start after this sequence (0: the beginning, or the consumer's position).
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    /// Only this event type; repeat for several.
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Only this conversation id.
    #[arg(long)]
    pub conversation: Option<String>,
    /// Only this business phone number id.
    #[arg(long)]
    pub phone_number_id: Option<String>,
    /// Watch as this named consumer (resumes from its acknowledged position).
    #[arg(long)]
    pub consumer: Option<String>,
    /// Acknowledge each event for --consumer after printing it.
    #[arg(long, requires = "consumer")]
    pub ack: bool,
    /// With no position to resume from, start at the log's end: only new events.
    #[arg(long)]
    pub from_end: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConsumerCommand {
    /// Move a consumer to SEQUENCE, backwards included (to replay what follows).
    Seek {
        /// Consumer name.
        name: String,
        /// Its new position: its next watch starts after it.
        sequence: u64,
    },
    /// Move a consumer back to 0: its next watch replays everything retained.
    Reset {
        /// Consumer name.
        name: String,
    },
    /// Print each named consumer's position and lag, one JSON object per line.
    List,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Sign a body file's exact bytes and POST it with Kapso's headers; prints
    /// the HTTP status and response body, exits 1 unless the answer is 2xx.
    Send(WebhookSendArgs),
}

#[derive(Debug, Args)]
pub struct WebhookSendArgs {
    /// Body file, or - for standard input.
    #[arg(default_value = "-", value_name = "FILE")]
    pub file: String,
    /// Webhook secret shared with the adapter (as text, never hex-decoded).
    #[arg(long, env = "KAPSO_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Secret,
    /// The adapter's webhook URL.
    #[arg(
        long,
        env = "KAPSO_WEBHOOK_URL",
        default_value = "http://127.0.0.1:8000/api/whatsapp/webhook"
    )]
    pub url: String,
    /// X-Webhook-Event (default: the body's `type`, else whatsapp.message.received).
    #[arg(long)]
    pub event: Option<String>,
    /// X-Webhook-Payload-Version.
    #[arg(long, default_value = kapso_client::webhook::PAYLOAD_VERSION)]
    pub payload_version: String,
    /// An extra header, `NAME:VALUE`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<crate::webhook::ExtraHeader>,
    /// X-Idempotency-Key (default: a new UUID v4); reuse one to replay a delivery.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Send as a batch (X-Webhook-Batch: true, X-Batch-Size).
    #[arg(long)]
    pub batch: bool,
    /// X-Batch-Size (implies --batch; default: the number of items in data[] or the top-level array).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Print an equivalent curl command instead of sending.
    #[arg(long)]
    pub print_curl: bool,
    /// Seconds to wait for the answer (Kapso itself waits 10).
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
}

/// Runs the command; `Ok` carries the exit code of a command that ran to its end.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let builder = || {
        let mut builder = Client::builder(&cli.core_url)
            .timeout(Duration::from_secs(cli.timeout_secs))
            .connect_timeout(Duration::from_secs(5));
        if let Some(token) = &cli.token {
            builder = builder.token(token.expose());
        }
        builder
    };
    let connect = || async { builder().connect().await };
    match cli.command {
        Command::Webhook(WebhookCommand::Send(args)) => webhook::send(args).await,
        Command::Dev(args) => dev::run(args).await,
        Command::SendText(args) => messaging::send_text(&connect().await?, args).await,
        Command::Send(command) => send::run(&connect().await?, command).await,
        Command::Media(command) => media::run(&connect().await?, command).await,
        Command::MarkRead { message_id, typing } => {
            messaging::mark_read(&connect().await?, &message_id, typing).await
        }
        Command::Get { id } => messaging::get(&connect().await?, &id).await,
        Command::List { conversation_id } => {
            messaging::list(&connect().await?, &conversation_id).await
        }
        // Lazy: a watch started before the core waits for it instead of failing.
        Command::Watch(args) => messaging::watch(&builder().connect_lazy()?, args).await,
        Command::Consumer(command) => consumers::run(&connect().await?, command).await,
        Command::Ack { consumer, sequence } => {
            messaging::ack(&connect().await?, &consumer, sequence).await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn send_text_needs_exactly_one_recipient() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["kapso", "send-text"], args].concat());
        assert!(parse(&["--to", "+569", "--text", "hola"]).is_ok());
        assert!(parse(&["--conversation", "c", "--text", "hola"]).is_ok());
        assert!(parse(&["--text", "hola"]).is_err());
        assert!(parse(&["--to", "+569", "--conversation", "c", "--text", "x"]).is_err());
    }

    #[test]
    fn watch_ack_requires_a_consumer() {
        assert!(Cli::try_parse_from(["kapso", "watch", "--ack"]).is_err());
        assert!(Cli::try_parse_from(["kapso", "watch", "--ack", "--consumer", "bot"]).is_ok());
    }
}
