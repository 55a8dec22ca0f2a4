//! Commands against the core's Messaging API. Results go to stdout as JSON,
//! one object per line, so `kapso watch | jq` works as it streams.

use std::io::{self, Write};
use std::process::ExitCode;

use futures::StreamExt;
use kapso_client::{Client, SendText, WatchOptions, json};

use crate::cli::{SendTextArgs, WatchArgs};

pub async fn send_text(client: &Client, args: SendTextArgs) -> anyhow::Result<ExitCode> {
    let mut request = match (args.recipient.to, args.recipient.conversation) {
        (Some(to), _) => SendText::to(to, args.text),
        (None, Some(conversation)) => SendText::to_conversation(conversation, args.text),
        // clap's group makes one of the two required.
        (None, None) => anyhow::bail!("--to or --conversation is required"),
    };
    request.reply_to_message_id = args.reply_to;
    request.idempotency_key = args.idempotency_key;
    request.phone_number_id = args.phone_number_id;
    request.preview_url = args.preview_url;
    let message = client.send_text(request).await?;
    print_line(&json::message(&message))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn mark_read(
    client: &Client,
    message_id: &str,
    typing: bool,
) -> anyhow::Result<ExitCode> {
    client.mark_read(message_id, typing).await?;
    // Said on stdout: a successful call otherwise prints nothing at all.
    let shown = if typing {
        " (typing indicator shown)"
    } else {
        ""
    };
    println!("marked {message_id} read{shown}");
    Ok(ExitCode::SUCCESS)
}

pub async fn get(client: &Client, id: &str) -> anyhow::Result<ExitCode> {
    let message = client.get_message(id).await?;
    print_line(&json::message(&message))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn list(client: &Client, conversation_id: &str) -> anyhow::Result<ExitCode> {
    let mut messages = client.all_messages(conversation_id);
    while let Some(message) = messages.next().await {
        print_line(&json::message(&message?))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn ack(client: &Client, consumer: &str, sequence: u64) -> anyhow::Result<ExitCode> {
    let position = client.ack(consumer, sequence).await?;
    print_line(&serde_json::json!({ "consumer": consumer, "sequence": position }))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn watch(client: &Client, args: WatchArgs) -> anyhow::Result<ExitCode> {
    let mut options = WatchOptions::new().after(args.after);
    options.event_types = args.types;
    options.conversation_id = args.conversation;
    options.phone_number_id = args.phone_number_id;
    options.consumer = args.consumer.clone();
    options.from_end = args.from_end;
    let ack_as = args.consumer.filter(|_| args.ack);

    let mut events = client.watch(options);
    crate::consumers::report_connection(events.connection());
    while let Some(event) = events.next().await {
        let event = event?;
        if print_line(&json::event(&event)).is_err() {
            // The reader went away (`kapso watch | head`): stop quietly, and do
            // not ack an event nobody saw.
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(consumer) = &ack_as {
            client.ack(consumer, event.sequence).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes one JSON line and flushes, so a pipe sees each event as it arrives.
pub(crate) fn print_line(value: &serde_json::Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{value}")?;
    out.flush()
}
