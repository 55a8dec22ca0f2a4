//! ayuda-bot: a small WhatsApp help desk written against the gateway.
//!
//! - A text, or a voice note by its transcript (`kapso.transcript`), asking for
//!   "ayuda" gets a menu of reply buttons; one that mentions an order, the
//!   opening hours or a person gets that answer straight away.
//! - A tap on a menu button (or a list row, or a template's quick reply) is
//!   answered by its id.
//! - Messages backfilled by a history import (`kapso.origin` = history_sync)
//!   are stored by the gateway but never answered.
//! - An event handled late (after downtime, or a replay) may find the
//!   contact's 24-hour window closed; the core then refuses free-form messages
//!   and the bot sends the configured template instead.
//!
//! It follows the event log as a named consumer and acknowledges each event
//! once handled, so after a crash or restart it resumes where it left off;
//! deployed for the first time it starts at the log's end: it answers what
//! comes next, not last month's messages. An event handled but not yet
//! acknowledged is seen again after a restart; each reply's idempotency key is
//! derived from the inbound wamid, so the core returns the first send's
//! outcome instead of sending twice.
//!
//! ```text
//! cargo run -p kapso-client --example ayuda_bot -- --template seguimos --template-language es
//! ```

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use kapso_client::proto::content::Kind;
use kapso_client::send::message::{self, Content};
use kapso_client::{
    Backoff, Client, Direction, Error, Event, Interactive, MediaKind, Message, SendMessage,
    Template, WatchOptions,
};

const RECEIVED: &str = "whatsapp.message.received";
/// `kapso.origin` of messages imported from the phone's history.
const HISTORY_SYNC: &str = "history_sync";
/// Attempts of one call before the bot exits and leaves the event to a restart.
const ATTEMPTS: u32 = 5;

/// Answer WhatsApp messages asking for help.
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
    /// Approved template sent when the contact's 24-hour window has closed.
    #[arg(long, env = "AYUDA_BOT_TEMPLATE")]
    template: Option<String>,
    /// The language the template was approved in.
    #[arg(long, env = "AYUDA_BOT_TEMPLATE_LANGUAGE", default_value = "es")]
    template_language: String,
}

/// What the bot answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Menu,
    Order,
    Hours,
    Person,
}

impl Reply {
    /// The answer to free words: a text's body or a voice note's transcript.
    fn to_words(words: &str) -> Option<Reply> {
        let words = words.to_lowercase();
        [
            ("ayuda", Reply::Menu),
            ("pedido", Reply::Order),
            ("horario", Reply::Hours),
            ("persona", Reply::Person),
        ]
        .into_iter()
        .find_map(|(keyword, reply)| words.contains(keyword).then_some(reply))
    }

    /// The answer to a tapped button or row, whose id is the reply's own.
    fn to_choice(id: &str) -> Option<Reply> {
        [Reply::Menu, Reply::Order, Reply::Hours, Reply::Person]
            .into_iter()
            .find(|reply| reply.id() == id)
    }

    fn id(self) -> &'static str {
        match self {
            Reply::Menu => "menu",
            Reply::Order => "order",
            Reply::Hours => "hours",
            Reply::Person => "person",
        }
    }

    fn content(self) -> Content {
        let choices = [Reply::Order, Reply::Hours, Reply::Person];
        match self {
            Reply::Menu => Interactive::buttons(
                "¿En qué puedo ayudarte? 🤖",
                choices.map(|choice| (choice.id(), choice.title())),
            )
            .into(),
            Reply::Order => message::text("Envíame el número de tu pedido (p. ej. 1042)."),
            Reply::Hours => message::text("Atendemos de lunes a viernes, de 9:00 a 18:00."),
            Reply::Person => message::text("Una persona del equipo te escribirá en breve."),
        }
    }

    /// The button label, at most 20 characters.
    fn title(self) -> &'static str {
        match self {
            Reply::Menu => "Menú",
            Reply::Order => "Mi pedido",
            Reply::Hours => "Horarios",
            Reply::Person => "Hablar con alguien",
        }
    }
}

/// The answer `event` calls for, with the message it answers.
fn reply_for(event: &Event) -> Option<(Reply, &Message)> {
    let message = event.message.as_ref()?;
    if event.event_type != RECEIVED
        || message.direction() == Direction::Outbound
        || message.origin == HISTORY_SYNC
    {
        return None;
    }
    let reply = match message.content.as_ref()?.kind.as_ref()? {
        Kind::Text(text) => Reply::to_words(&text.body),
        Kind::Media(media) if media.kind() == MediaKind::Audio => {
            Reply::to_words(&media.transcript)
        }
        Kind::InteractiveReply(tap) => Reply::to_choice(&tap.id),
        Kind::Button(tap) => Reply::to_choice(&tap.payload),
        _ => None,
    }?;
    Some((reply, message))
}

/// What to send instead when the answer failed with `error`: the template,
/// when the window closed and one is configured.
fn fallback(error: &Error, template: Option<&Template>) -> Option<Content> {
    error
        .is_window_closed()
        .then(|| template.cloned().map(Content::from))
        .flatten()
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
    let template = args
        .template
        .as_ref()
        .map(|name| Template::new(name, &args.template_language));

    // A consumer new to the core starts at the log's end; a known one after
    // its last acknowledged event.
    let options = WatchOptions::new()
        .consumer(&args.consumer)
        .from_end()
        .event_type(RECEIVED);
    let mut events = client.watch(options);
    eprintln!("ayuda-bot: watching as consumer {:?}", args.consumer);
    while let Some(event) = events.next().await {
        let event = event?;
        if let Some((reply, message)) = reply_for(&event) {
            answer(&client, &event, message, reply, template.as_ref()).await?;
        }
        // Only after handling: a crash before this line replays the event.
        retry(|| client.ack(&args.consumer, event.sequence)).await?;
    }
    Ok(())
}

async fn answer(
    client: &Client,
    event: &Event,
    message: &Message,
    reply: Reply,
    template: Option<&Template>,
) -> Result<(), Error> {
    let send = |content: Content, key: String| {
        let conversation = [&event.conversation_id, &message.conversation_id]
            .into_iter()
            .find(|id| !id.is_empty());
        match conversation {
            Some(conversation) => SendMessage::to_conversation(conversation, content),
            None => SendMessage::to(&message.contact_phone, content)
                .phone_number_id(&message.phone_number_id),
        }
        .reply_to(&message.id)
        .idempotency_key(key)
    };
    let key = format!("ayuda-bot:{}", message.id);
    let mut outcome = retry(|| client.send_message(send(reply.content(), key.clone()))).await;
    if let Err(error) = &outcome
        && let Some(content) = fallback(error, template)
    {
        let key = format!("{key}:template");
        outcome = retry(|| client.send_message(send(content.clone(), key.clone()))).await;
    }
    match outcome {
        Ok(sent) => eprintln!("ayuda-bot: answered {} with {}", message.id, sent.id),
        // Permanent (bad request, window closed without a template): move on.
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

/// Retries transient failures a few times with backoff. Safe for sends
/// because of their idempotency keys; mark-read and ack are idempotent anyway.
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
    use kapso_client::proto::{
        InteractiveReply, MediaContent, TemplateButtonReply, TextContent, content::Kind,
        interactive_reply,
    };
    use kapso_client::{Code, proto};

    use super::*;

    fn received(kind: Kind) -> Event {
        Event {
            event_type: RECEIVED.into(),
            message: Some(Message {
                id: "wamid.in".into(),
                direction: Direction::Inbound.into(),
                content: Some(proto::Content { kind: Some(kind) }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn text(body: &str) -> Event {
        received(Kind::Text(TextContent {
            body: body.into(),
            preview_url: false,
        }))
    }

    fn voice_note(transcript: &str) -> Event {
        received(Kind::Media(MediaContent {
            kind: MediaKind::Audio.into(),
            voice: true,
            transcript: transcript.into(),
            ..Default::default()
        }))
    }

    fn tap(reply_kind: interactive_reply::Kind, id: &str) -> Event {
        received(Kind::InteractiveReply(InteractiveReply {
            kind: reply_kind.into(),
            id: id.into(),
            ..Default::default()
        }))
    }

    fn reply(event: &Event) -> Option<Reply> {
        reply_for(event).map(|(reply, _)| reply)
    }

    #[test]
    fn texts_asking_for_ayuda_in_any_case_get_the_menu() {
        for body in ["ayuda", "Necesito AYUDA por favor", "¿Me ayudas? Ayuda!"] {
            assert_eq!(reply(&text(body)), Some(Reply::Menu), "{body}");
        }
        assert_eq!(reply(&text("hola")), None);
    }

    #[test]
    fn a_voice_note_is_answered_by_its_transcript() {
        let order = voice_note("Hola, quería saber si mi pedido ya salió");
        assert_eq!(reply(&order), Some(Reply::Order));
        assert_eq!(
            reply(&voice_note("¿Cuál es su horario?")),
            Some(Reply::Hours)
        );
        assert_eq!(
            reply(&voice_note("")),
            None,
            "no transcript, nothing understood"
        );
    }

    #[test]
    fn button_and_list_replies_are_answered_by_their_id() {
        use interactive_reply::Kind::{ButtonReply, ListReply};
        assert_eq!(reply(&tap(ButtonReply, "hours")), Some(Reply::Hours));
        assert_eq!(reply(&tap(ListReply, "person")), Some(Reply::Person));
        assert_eq!(reply(&tap(ButtonReply, "unknown")), None);
        let template_tap = received(Kind::Button(TemplateButtonReply {
            payload: "menu".into(),
            text: "Ver opciones".into(),
        }));
        assert_eq!(reply(&template_tap), Some(Reply::Menu));
    }

    #[test]
    fn the_menu_offers_every_choice_by_the_id_it_answers() {
        let Content(proto::send_message_request::Content::Interactive(menu)) =
            Reply::Menu.content()
        else {
            panic!("the menu is interactive");
        };
        let Some(proto::interactive_content::Action::Buttons(buttons)) = menu.action else {
            panic!("the menu has reply buttons");
        };
        let answered: Vec<_> = buttons
            .buttons
            .iter()
            .map(|b| Reply::to_choice(&b.id))
            .collect();
        assert_eq!(
            answered,
            [Some(Reply::Order), Some(Reply::Hours), Some(Reply::Person)]
        );
        assert!(
            buttons
                .buttons
                .iter()
                .all(|b| b.title.chars().count() <= 20)
        );
    }

    #[test]
    fn history_sync_backfill_outbound_messages_and_other_events_are_ignored() {
        let mut backfilled = text("ayuda");
        backfilled.message.as_mut().unwrap().origin = HISTORY_SYNC.into();
        assert_eq!(reply(&backfilled), None);

        let mut outbound = text("ayuda");
        let message = outbound.message.as_mut().unwrap();
        message.set_direction(Direction::Outbound);
        assert_eq!(reply(&outbound), None);

        let mut read = text("ayuda");
        read.event_type = "whatsapp.message.read".into();
        assert_eq!(reply(&read), None);
    }

    #[test]
    fn a_closed_window_falls_back_to_the_configured_template() {
        let template = Template::new("seguimos", "es");
        let closed: Error = tonic::Status::failed_precondition(
            "not sent: the 24-hour customer service window is closed; send a template message",
        )
        .into();
        assert_eq!(
            fallback(&closed, Some(&template)),
            Some(Content::from(template.clone()))
        );
        assert_eq!(fallback(&closed, None), None, "no template configured");
        let other: Error = tonic::Status::new(Code::InvalidArgument, "bad phone").into();
        assert_eq!(fallback(&other, Some(&template)), None);
    }
}
