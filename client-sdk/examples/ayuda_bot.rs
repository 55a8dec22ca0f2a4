//! ayuda-bot: the original service's business-logic sketch, written against
//! the gateway. When a customer's text contains "ayuda" (any case) it answers
//! "¿En qué puedo ayudarte? 🤖" as a reply to that message and marks it read.
//!
//! It follows the event log as a named consumer and acknowledges each event
//! once handled, so after a crash or restart it resumes where it left off.
//! Deployed for the first time it starts at the log's end: it answers what
//! comes next, not last month's messages. An
//! event handled but not yet acknowledged is seen again after a restart; the
//! reply's idempotency key is derived from the inbound wamid, so the core
//! returns the first send's outcome instead of sending twice.
//!
//! ```text
//! cargo run -p kapso-client --example ayuda_bot -- --consumer ayuda-bot
//! ```

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use kapso_client::{Backoff, Client, Direction, Error, Event, Message, SendText, WatchOptions};

const RECEIVED: &str = "whatsapp.message.received";
const REPLY: &str = "¿En qué puedo ayudarte? 🤖";
/// Attempts of one call before the bot exits and leaves the event to a restart.
const ATTEMPTS: u32 = 5;

/// Reply to WhatsApp messages asking for "ayuda".
#[derive(Debug, Parser)]
struct Args {
    /// gRPC URL of the gateway core.
    #[arg(long, env = "KAPSO_CORE_URL", default_value = "http://127.0.0.1:50051")]
    core_url: String,
    /// Token for the core's gRPC API.
    #[arg(long, env = "GATEWAY_API_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Consumer name under which the core keeps the bot's position.
    #[arg(long, default_value = "ayuda-bot")]
    consumer: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ayuda-bot: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let mut builder = Client::builder(&args.core_url).timeout(Duration::from_secs(30));
    if let Some(token) = &args.token {
        builder = builder.token(token);
    }
    let client = builder.connect().await?;

    // after_sequence 0 + consumer: the core starts after the last acknowledged
    // event, or, for a consumer new to it, at the log's end.
    let options = WatchOptions::new()
        .consumer(&args.consumer)
        .from_end()
        .event_type(RECEIVED);
    let mut events = client.watch(options);
    eprintln!("ayuda-bot: watching as consumer {:?}", args.consumer);
    while let Some(event) = events.next().await {
        let event = event?;
        if let Some(message) = help_request(&event) {
            answer(&client, &event, message).await?;
        }
        // Only after handling: a crash before this line replays the event.
        retry(|| client.ack(&args.consumer, event.sequence)).await?;
    }
    Ok(())
}

/// The inbound text message of `event` when it asks for help.
fn help_request(event: &Event) -> Option<&Message> {
    let message = event.message.as_ref()?;
    let wants_help = event.event_type == RECEIVED
        && message.direction() != Direction::Outbound
        && message.r#type == "text"
        && message.text.to_lowercase().contains("ayuda");
    wants_help.then_some(message)
}

async fn answer(client: &Client, event: &Event, message: &Message) -> Result<(), Error> {
    let conversation = [&event.conversation_id, &message.conversation_id]
        .into_iter()
        .find(|id| !id.is_empty());
    let reply = match conversation {
        Some(conversation) => SendText::to_conversation(conversation, REPLY),
        None => {
            SendText::to(&message.contact_phone, REPLY).phone_number_id(&message.phone_number_id)
        }
    }
    .reply_to(&message.id)
    .idempotency_key(format!("ayuda-bot:{}", message.id));

    match retry(|| client.send_text(reply.clone())).await {
        Ok(sent) => eprintln!("ayuda-bot: answered {} with {}", message.id, sent.id),
        // Permanent (e.g. the 24-hour window closed): retrying cannot help, move on.
        Err(error) if !error.is_retryable() => {
            eprintln!("ayuda-bot: cannot answer {}: {error}", message.id)
        }
        Err(error) => return Err(error),
    }
    match retry(|| client.mark_read(&message.id, false)).await {
        Err(error) if error.is_retryable() => Err(error),
        Err(error) => {
            eprintln!("ayuda-bot: cannot mark {} read: {error}", message.id);
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// Retries transient failures a few times with backoff. Safe for the send
/// because of its idempotency key; mark-read and ack are idempotent anyway.
async fn retry<T, F, Fut>(mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    let mut attempt = 0;
    loop {
        match call().await {
            Err(error) if error.is_retryable() && attempt + 1 < ATTEMPTS => {
                eprintln!("ayuda-bot: {error}; retrying");
                tokio::time::sleep(backoff.delay(attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(text: &str, kind: &str, direction: Direction) -> Event {
        let mut message = Message {
            id: "wamid.in".into(),
            r#type: kind.into(),
            text: text.into(),
            ..Default::default()
        };
        message.set_direction(direction);
        Event {
            event_type: RECEIVED.into(),
            message: Some(message),
            ..Default::default()
        }
    }

    #[test]
    fn inbound_texts_asking_for_ayuda_in_any_case_are_help_requests() {
        for text in ["ayuda", "Necesito AYUDA por favor", "¿Me ayudas? Ayuda!"] {
            assert!(help_request(&received(text, "text", Direction::Inbound)).is_some());
        }
    }

    #[test]
    fn other_messages_are_not_help_requests() {
        assert!(help_request(&received("hola", "text", Direction::Inbound)).is_none());
        assert!(help_request(&received("ayuda", "image", Direction::Inbound)).is_none());
        assert!(help_request(&received(REPLY, "text", Direction::Outbound)).is_none());
        let mut status = received("ayuda", "text", Direction::Inbound);
        status.event_type = "whatsapp.message.read".into();
        assert!(help_request(&status).is_none());
    }
}
