//! `kapso send KIND`: every kind of message but text (`send-text`), with the
//! flags a person types, built with the client's `SendMessage` builders. The
//! core checks Meta's limits; these commands only shape the request.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use kapso_client::send::message::{self, Content};
use kapso_client::{Client, Interactive, Location, Media, MediaKind, SendMessage, Template, json};

use crate::cli::RecipientArgs;
use crate::messaging::print_line;

#[derive(Debug, Subcommand)]
pub enum SendCommand {
    /// A template (the only kind allowed outside the 24-hour window).
    Template(TemplateArgs),
    /// An image, video, audio, document or sticker, by URL or media id.
    Media(MediaArgs),
    /// Reply buttons (--button) or a list (--list-row).
    Interactive(InteractiveArgs),
    /// A reaction to a message; an empty --emoji removes it.
    Reaction(ReactionArgs),
    /// A location pin.
    Location(LocationArgs),
}

/// What every kind shares: who gets it, and how it is sent.
#[derive(Debug, Args)]
pub struct Envelope {
    #[command(flatten)]
    pub recipient: RecipientArgs,
    /// wamid of the message to reply to.
    #[arg(long)]
    pub reply_to: Option<String>,
    /// Makes a retry safe: the core sends at most once per key.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Sending business number id (default: the core's or the conversation's).
    #[arg(long)]
    pub phone_number_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[command(flatten)]
    pub envelope: Envelope,
    /// The approved template's name.
    #[arg(long)]
    pub name: String,
    /// Its language code, e.g. es or en_US.
    #[arg(long)]
    pub language: String,
    /// A body variable, in order ({{1}}, {{2}}, ...); repeat for each.
    #[arg(long = "body-param", value_name = "VALUE")]
    pub body_params: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MediaArgs {
    #[command(flatten)]
    pub envelope: Envelope,
    #[command(flatten)]
    pub media: MediaFlags,
}

#[derive(Debug, Args)]
pub struct MediaFlags {
    #[arg(long, value_enum)]
    pub kind: Kind,
    #[command(flatten)]
    pub source: MediaSource,
    /// Caption (not for audio or stickers).
    #[arg(long)]
    pub caption: Option<String>,
    /// File name shown for a document.
    #[arg(long)]
    pub filename: Option<String>,
    /// Send audio as a voice note.
    #[arg(long)]
    pub voice: bool,
}

/// Where the media comes from: exactly one of the two.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct MediaSource {
    /// A public HTTPS URL WhatsApp fetches.
    #[arg(long)]
    pub link: Option<String>,
    /// A media id from an upload.
    #[arg(long)]
    pub id: Option<String>,
}

/// The media kinds, as typed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

#[derive(Debug, Args)]
pub struct InteractiveArgs {
    #[command(flatten)]
    pub envelope: Envelope,
    #[command(flatten)]
    pub interactive: InteractiveFlags,
}

#[derive(Debug, Args)]
pub struct InteractiveFlags {
    /// The message text.
    #[arg(long)]
    pub body: String,
    #[command(flatten)]
    pub choices: Choices,
    /// The button that opens the list.
    #[arg(long, default_value = "Options")]
    pub list_button: String,
    /// Header text.
    #[arg(long)]
    pub header: Option<String>,
    /// Footer text.
    #[arg(long)]
    pub footer: Option<String>,
}

/// Reply buttons or list rows: one of the two.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Choices {
    /// A reply button as ID:TITLE; repeat (up to 3).
    #[arg(long = "button", value_name = "ID:TITLE", value_parser = parse_button)]
    pub buttons: Vec<(String, String)>,
    /// A list row as ID:TITLE[:DESCRIPTION]; repeat.
    #[arg(long = "list-row", value_name = "ID:TITLE[:DESCRIPTION]", value_parser = parse_row)]
    pub rows: Vec<kapso_client::proto::ListRow>,
}

#[derive(Debug, Args)]
pub struct ReactionArgs {
    #[command(flatten)]
    pub chat: ReactionChat,
    /// Makes a retry safe: the core sends at most once per key.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Sending business number id (default: the core's or the conversation's).
    #[arg(long)]
    pub phone_number_id: Option<String>,
    /// The wamid of the message reacted to.
    #[arg(long)]
    pub message_id: String,
    /// One emoji; empty removes the reaction.
    #[arg(long)]
    pub emoji: String,
}

/// Where a reaction goes; by default the conversation of the message reacted to.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct ReactionChat {
    /// Recipient phone number (digits, leading + accepted).
    #[arg(long)]
    pub to: Option<String>,
    /// Send to the contact of this conversation id.
    #[arg(long)]
    pub conversation: Option<String>,
}

#[derive(Debug, Args)]
pub struct LocationArgs {
    #[command(flatten)]
    pub envelope: Envelope,
    /// Latitude in degrees.
    #[arg(long, allow_negative_numbers = true)]
    pub lat: f64,
    /// Longitude in degrees.
    #[arg(long, allow_negative_numbers = true)]
    pub lng: f64,
    /// The place's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The place's address.
    #[arg(long)]
    pub address: Option<String>,
}

/// Sends the message; prints the stored message as JSON.
pub async fn run(client: &Client, command: SendCommand) -> anyhow::Result<ExitCode> {
    let (envelope, content) = match command {
        SendCommand::Template(args) => {
            let template = Template::new(args.name, args.language);
            let template = if args.body_params.is_empty() {
                template
            } else {
                template.body_text(args.body_params)
            };
            (args.envelope, template.into())
        }
        SendCommand::Media(args) => (args.envelope, media(args.media)),
        SendCommand::Interactive(args) => (args.envelope, interactive(args.interactive)),
        SendCommand::Reaction(args) => {
            let recipient = reaction_chat(client, args.chat, &args.message_id).await?;
            let envelope = Envelope {
                recipient,
                reply_to: None,
                idempotency_key: args.idempotency_key,
                phone_number_id: args.phone_number_id,
            };
            (envelope, message::reaction(args.message_id, args.emoji))
        }
        SendCommand::Location(args) => {
            let mut location = Location::new(args.lat, args.lng);
            if let Some(name) = args.name {
                location = location.name(name);
            }
            if let Some(address) = args.address {
                location = location.address(address);
            }
            (args.envelope, location.into())
        }
    };
    let message = client.send_message(request(envelope, content)?).await?;
    print_line(&json::message(&message))?;
    Ok(ExitCode::SUCCESS)
}

/// The chat a reaction goes to: as given, else the reacted message's
/// conversation (or contact), looked up in the core.
async fn reaction_chat(
    client: &Client,
    chat: ReactionChat,
    message_id: &str,
) -> anyhow::Result<RecipientArgs> {
    if chat.to.is_some() || chat.conversation.is_some() {
        return Ok(RecipientArgs {
            to: chat.to,
            conversation: chat.conversation,
        });
    }
    let reacted = client.get_message(message_id).await?;
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    match (
        non_empty(reacted.conversation_id),
        non_empty(reacted.contact_phone),
    ) {
        (Some(conversation), _) => Ok(RecipientArgs {
            to: None,
            conversation: Some(conversation),
        }),
        (None, Some(to)) => Ok(RecipientArgs {
            to: Some(to),
            conversation: None,
        }),
        (None, None) => {
            anyhow::bail!("message {message_id} names no chat; give --to or --conversation")
        }
    }
}

fn request(envelope: Envelope, content: Content) -> anyhow::Result<SendMessage> {
    let mut request = match (envelope.recipient.to, envelope.recipient.conversation) {
        (Some(to), _) => SendMessage::to(to, content),
        (None, Some(conversation)) => SendMessage::to_conversation(conversation, content),
        // clap's group makes one of the two required.
        (None, None) => anyhow::bail!("--to or --conversation is required"),
    };
    request.reply_to_message_id = envelope.reply_to;
    request.idempotency_key = envelope.idempotency_key;
    request.phone_number_id = envelope.phone_number_id;
    Ok(request)
}

fn media(args: MediaFlags) -> Content {
    let kind = match args.kind {
        Kind::Image => MediaKind::Image,
        Kind::Video => MediaKind::Video,
        Kind::Audio => MediaKind::Audio,
        Kind::Document => MediaKind::Document,
        Kind::Sticker => MediaKind::Sticker,
    };
    let mut media = match (args.source.link, args.source.id) {
        (Some(link), _) => Media::link(kind, link),
        (None, id) => Media::id(kind, id.unwrap_or_default()),
    };
    if let Some(caption) = args.caption {
        media = media.caption(caption);
    }
    if let Some(filename) = args.filename {
        media = media.filename(filename);
    }
    if args.voice {
        media = media.voice();
    }
    media.into()
}

fn interactive(args: InteractiveFlags) -> Content {
    let Choices { buttons, rows } = args.choices;
    let mut interactive = if rows.is_empty() {
        Interactive::buttons(args.body, buttons)
    } else {
        let section = kapso_client::proto::ListSection {
            title: String::new(),
            rows,
        };
        Interactive::list(args.body, args.list_button, [section])
    };
    if let Some(header) = args.header {
        interactive = interactive.header_text(header);
    }
    if let Some(footer) = args.footer {
        interactive = interactive.footer(footer);
    }
    interactive.into()
}

/// `ID:TITLE`; the title may itself hold colons.
fn parse_button(raw: &str) -> Result<(String, String), String> {
    match raw.split_once(':') {
        Some((id, title)) if !id.is_empty() && !title.is_empty() => {
            Ok((id.to_owned(), title.to_owned()))
        }
        _ => Err(format!("expected ID:TITLE, got {raw:?}")),
    }
}

/// `ID:TITLE[:DESCRIPTION]`; the description may itself hold colons.
fn parse_row(raw: &str) -> Result<kapso_client::proto::ListRow, String> {
    let mut parts = raw.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(title), description) if !id.is_empty() && !title.is_empty() => {
            Ok(kapso_client::proto::ListRow {
                id: id.to_owned(),
                title: title.to_owned(),
                description: description.unwrap_or_default().to_owned(),
            })
        }
        _ => Err(format!("expected ID:TITLE[:DESCRIPTION], got {raw:?}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    fn parses(args: &[&str]) -> bool {
        Cli::try_parse_from([&["kapso", "send"], args, &["--to", "+1555"]].concat()).is_ok()
    }

    #[test]
    fn media_takes_a_link_or_an_id_and_interactive_buttons_or_rows() {
        assert!(parses(&[
            "media",
            "--kind",
            "image",
            "--link",
            "https://x.y/a.png"
        ]));
        assert!(parses(&["media", "--kind", "image", "--id", "224"]));
        assert!(!parses(&["media", "--kind", "image"]));
        assert!(!parses(&[
            "media",
            "--kind",
            "image",
            "--id",
            "1",
            "--link",
            "https://x.y"
        ]));
        assert!(parses(&["interactive", "--body", "b", "--button", "a:A"]));
        assert!(!parses(&["interactive", "--body", "b"]));
        assert!(!parses(&[
            "interactive",
            "--body",
            "b",
            "--button",
            "a:A",
            "--list-row",
            "r:R"
        ]));
        assert!(parses(&["location", "--lat", "-33.4", "--lng", "-70.6"]));
    }

    #[test]
    fn buttons_and_rows_split_at_the_first_colons() {
        assert_eq!(
            parse_button("yes:Sí: claro").unwrap(),
            ("yes".into(), "Sí: claro".into())
        );
        assert!(parse_button("yes").is_err());
        assert!(parse_button(":Yes").is_err());
        let row = parse_row("r1:Lunes:9:00 a 13:00").unwrap();
        assert_eq!(
            (
                row.id.as_str(),
                row.title.as_str(),
                row.description.as_str()
            ),
            ("r1", "Lunes", "9:00 a 13:00")
        );
        assert_eq!(parse_row("r2:Martes").unwrap().description, "");
        assert!(parse_row("r3").is_err());
    }
}
