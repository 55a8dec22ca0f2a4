//! `kapso dev trigger received`: a customer writes. Posts one signed
//! `whatsapp.message.received` webhook straight to the adapter, as Kapso
//! would deliver it (v2 body, adapter/tests/fixtures/received_*.json), stamped
//! now so the 24-hour window opens. Needs no `kapso dev` server: the
//! conversation id is the one its receipts use ([`super::conversation`]).

use std::process::ExitCode;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use kapso_client::webhook::WebhookRequest;
use serde_json::{Value, json};

use super::DEFAULT_WEBHOOK_URL;
use super::conversation::{Contact, conversation, conversation_id, rfc3339};
use super::webhooks::Webhooks;
use crate::cli::Secret;

/// The business number a trigger writes to unless told otherwise (the fixtures').
pub const DEFAULT_PHONE_NUMBER_ID: &str = "123456789012345";

#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// A customer's message (whatsapp.message.received); prints what was
    /// posted and the adapter's answer as JSON, exits 1 unless it was 2xx.
    Received(ReceivedArgs),
}

#[derive(Debug, Args)]
pub struct ReceivedArgs {
    /// The customer's phone number (digits, leading + accepted).
    #[arg(long)]
    pub from: String,
    #[command(flatten)]
    pub content: ContentArgs,
    /// The business number the customer writes to.
    #[arg(long, env = "KAPSO_PHONE_NUMBER_ID", default_value = DEFAULT_PHONE_NUMBER_ID)]
    pub phone_number_id: String,
    /// The customer's WhatsApp profile name.
    #[arg(long, default_value = "Dev Customer")]
    pub name: String,
    /// wamid of the business message this answers (WhatsApp's `context`).
    #[arg(long)]
    pub reply_to: Option<String>,
    /// The adapter's webhook URL.
    #[arg(long, env = "KAPSO_WEBHOOK_URL", default_value = DEFAULT_WEBHOOK_URL)]
    pub webhook_url: String,
    /// Webhook secret shared with the adapter.
    #[arg(long, env = "KAPSO_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Secret,
}

/// What the customer sends: exactly one.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ContentArgs {
    /// A text message.
    #[arg(long)]
    pub text: Option<String>,
    /// A tap on a reply button: the button's ID:TITLE.
    #[arg(long, value_name = "ID:TITLE")]
    pub button_reply: Option<Choice>,
    /// A pick from a list: the row's ID:TITLE.
    #[arg(long, value_name = "ID:TITLE")]
    pub list_reply: Option<Choice>,
    /// A shared location: LAT,LON in degrees.
    #[arg(long, value_name = "LAT,LON", allow_hyphen_values = true)]
    pub location: Option<Point>,
}

/// An inbound message's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Text(String),
    ButtonReply(Choice),
    ListReply(Choice),
    Location(Point),
}

impl ContentArgs {
    fn into_inbound(self) -> Inbound {
        match self {
            ContentArgs { text: Some(t), .. } => Inbound::Text(t),
            ContentArgs {
                button_reply: Some(c),
                ..
            } => Inbound::ButtonReply(c),
            ContentArgs {
                list_reply: Some(c),
                ..
            } => Inbound::ListReply(c),
            ContentArgs {
                location: Some(p), ..
            } => Inbound::Location(p),
            // clap's group requires exactly one.
            _ => unreachable!("one content flag is required"),
        }
    }
}

/// A button or list row: its id and the title the customer saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    pub title: String,
}

impl FromStr for Choice {
    type Err = String;

    fn from_str(s: &str) -> Result<Choice, String> {
        match s.split_once(':') {
            Some((id, title)) if !id.trim().is_empty() && !title.trim().is_empty() => Ok(Choice {
                id: id.trim().to_owned(),
                title: title.trim().to_owned(),
            }),
            _ => Err(format!("{s:?} is not ID:TITLE")),
        }
    }
}

/// A place on Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub latitude: f64,
    pub longitude: f64,
}

impl FromStr for Point {
    type Err = String;

    fn from_str(s: &str) -> Result<Point, String> {
        let parse = |part: &str| part.trim().parse::<f64>().ok();
        let (lat, lon) = s
            .split_once(',')
            .and_then(|(lat, lon)| Some((parse(lat)?, parse(lon)?)))
            .ok_or_else(|| format!("{s:?} is not LAT,LON"))?;
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(format!(
                "{s:?} is off the map (latitude -90 to 90, longitude -180 to 180)"
            ));
        }
        Ok(Point {
            latitude: lat,
            longitude: lon,
        })
    }
}

/// One inbound message as its webhook describes it.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub phone_number_id: String,
    pub from: Contact,
    pub name: String,
    pub content: Inbound,
    pub reply_to: Option<String>,
    /// Unix seconds.
    pub at: i64,
}

pub async fn run(command: TriggerCommand) -> anyhow::Result<ExitCode> {
    let TriggerCommand::Received(args) = command;
    let from = Contact::phone(&args.from).ok_or_else(|| {
        anyhow::anyhow!(
            "--from {:?} is not a phone number (7 to 15 digits, optionally after a +)",
            args.from
        )
    })?;
    let received = Received {
        message_id: format!("wamid.DEV{}", uuid::Uuid::new_v4().simple()),
        phone_number_id: args.phone_number_id,
        from,
        name: args.name,
        content: args.content.into_inbound(),
        reply_to: args.reply_to,
        at: unix_now(),
    };
    let body = webhook_body(&received).to_string().into_bytes();
    // One attempt: the answer is the point, a person or a test reads it.
    let webhooks = Webhooks::new(args.webhook_url, args.secret, Vec::new())?;
    let event = "whatsapp.message.received";
    let answer = webhooks
        .post(&WebhookRequest::new(body).event(event))
        .await?;
    let response = serde_json::from_str::<Value>(&answer.body).unwrap_or(json!(answer.body));
    println!(
        "{}",
        json!({
            "event": event,
            "message_id": received.message_id,
            "conversation_id": conversation_id(&received.phone_number_id, &received.from),
            "http_status": answer.status.as_u16(),
            "response": response,
        })
    );
    if answer.status.is_success() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("kapso: the webhook was answered {}", answer.status);
    if answer.status == reqwest::StatusCode::UNAUTHORIZED {
        eprintln!(
            "kapso: 401 means the signature did not verify: --secret (KAPSO_WEBHOOK_SECRET) differs from the adapter's"
        );
    }
    Ok(ExitCode::FAILURE)
}

/// The v2 body Kapso delivers for `received`.
pub fn webhook_body(received: &Received) -> Value {
    let (kind, object, content) = match &received.content {
        Inbound::Text(text) => ("text", json!({"body": text}), text.clone()),
        Inbound::ButtonReply(choice) => (
            "interactive",
            json!({"type": "button_reply", "button_reply": {"id": choice.id, "title": choice.title}}),
            choice.title.clone(),
        ),
        Inbound::ListReply(choice) => (
            "interactive",
            json!({"type": "list_reply", "list_reply": {"id": choice.id, "title": choice.title}}),
            choice.title.clone(),
        ),
        Inbound::Location(point) => (
            "location",
            json!({"latitude": point.latitude, "longitude": point.longitude}),
            format!("Location: {}, {}", point.latitude, point.longitude),
        ),
    };
    let mut message = json!({
        "id": received.message_id,
        "timestamp": received.at.to_string(),
        "type": kind,
        "from": received.from.as_str(),
        kind: object,
        "kapso": {
            "direction": "inbound",
            "status": "received",
            "processing_status": "pending",
            "origin": "cloud_api",
            "has_media": false,
            "content": content,
        },
    });
    if let Some(reply_to) = &received.reply_to {
        message["context"] = json!({"id": reply_to});
    }
    let mut conversation = conversation(&received.phone_number_id, &received.from, received.at);
    let at = rfc3339(received.at);
    conversation["kapso"] = json!({
        "contact_name": received.name,
        "last_message_id": received.message_id,
        "last_message_type": kind,
        "last_message_timestamp": at,
        "last_inbound_at": at,
    });
    json!({
        "message": message,
        "conversation": conversation,
        "is_new_conversation": false,
        "phone_number_id": received.phone_number_id,
    })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::tests::fixture;

    fn received(content: Inbound) -> Received {
        Received {
            message_id: "wamid.123".into(),
            phone_number_id: "123456789012345".into(),
            from: Contact::Phone("15551234567".into()),
            name: "John Doe".into(),
            content,
            reply_to: None,
            at: 1_730_092_800,
        }
    }

    #[test]
    fn a_text_has_the_fixtures_shape() {
        let body = webhook_body(&received(Inbound::Text("Hello".into())));
        let expected = fixture("received_text.json");
        assert_eq!(body["message"], expected["message"]);
        assert_eq!(body["phone_number_id"], expected["phone_number_id"]);
        let conversation = &body["conversation"];
        assert_eq!(conversation["id"], "conv_123456789012345_15551234567");
        assert_eq!(
            conversation["phone_number"],
            expected["conversation"]["phone_number"]
        );
        assert_eq!(conversation["kapso"]["contact_name"], "John Doe");
        assert_eq!(conversation["kapso"]["last_message_id"], "wamid.123");
    }

    #[test]
    fn replies_and_locations_have_the_fixtures_objects() {
        let choice = Choice {
            id: "btn_1".into(),
            title: "Confirm".into(),
        };
        let mut button = received(Inbound::ButtonReply(choice));
        button.reply_to = Some("wamid.456".into());
        let body = webhook_body(&button);
        let expected = fixture("received_button_reply.json");
        assert_eq!(
            body["message"]["interactive"],
            expected["message"]["interactive"]
        );
        assert_eq!(body["message"]["kapso"]["content"], "Confirm");
        assert_eq!(body["message"]["context"]["id"], "wamid.456");

        let list = webhook_body(&received(Inbound::ListReply(
            "t18:18:00-20:00".parse().unwrap(),
        )));
        assert_eq!(list["message"]["interactive"]["type"], "list_reply");
        assert_eq!(list["message"]["interactive"]["list_reply"]["id"], "t18");
        assert_eq!(
            list["message"]["interactive"]["list_reply"]["title"],
            "18:00-20:00"
        );

        let point = "37.7749,-122.4194".parse().unwrap();
        let location = webhook_body(&received(Inbound::Location(point)));
        assert_eq!(location["message"]["type"], "location");
        assert_eq!(location["message"]["location"]["latitude"], 37.7749);
        assert_eq!(location["message"]["location"]["longitude"], -122.4194);
    }

    #[test]
    fn flags_are_parsed_or_refused() {
        assert!("btn_1".parse::<Choice>().is_err());
        assert!(":Title".parse::<Choice>().is_err());
        assert!("1,2,3".parse::<Point>().is_err());
        assert!("91,0".parse::<Point>().is_err());
        assert!("0,181".parse::<Point>().is_err());
        assert_eq!(
            " -33.45 , -70.66 ".parse::<Point>(),
            Ok(Point {
                latitude: -33.45,
                longitude: -70.66
            })
        );
    }
}
