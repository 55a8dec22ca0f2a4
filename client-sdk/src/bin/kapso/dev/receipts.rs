//! The receipts of an accepted send: `whatsapp.message.sent`, `.delivered`
//! and `.read`, in that order, each a v2 body as Kapso sends it
//! (adapter/tests/fixtures/sent.json, delivered.json, read.json): the message
//! with its statuses so far in `kapso.statuses[]`, the conversation, the number.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::conversation::conversation;
use super::request::Send;
use super::webhooks::{Delivered, Webhooks};

/// The statuses a message goes through when all goes well, in order.
pub const RECEIPTS: [&str; 3] = ["sent", "delivered", "read"];

/// A message `kapso dev` accepted, as its receipts describe it.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub wamid: String,
    pub phone_number_id: String,
    pub send: Send,
}

/// Posts the three receipts of `message` in order, each after the one before
/// was answered or given up on (Kapso's order per message); says how each went
/// on stderr, one line each.
pub async fn deliver(webhooks: &Webhooks, message: Accepted) {
    let mut reached = Vec::with_capacity(RECEIPTS.len());
    for status in RECEIPTS {
        reached.push((status, unix_now()));
        let event = format!("whatsapp.message.{status}");
        let body = receipt(&message, &reached).to_string().into_bytes();
        match webhooks.deliver(&event, body).await {
            Delivered::Accepted { status, attempt } => {
                let retried = match attempt {
                    1 => String::new(),
                    n => format!(" at attempt {n}"),
                };
                eprintln!("kapso dev: {event} {} -> {status}{retried}", message.wamid);
            }
            Delivered::GaveUp { attempts, last } => eprintln!(
                "kapso dev: {event} {} not delivered after {attempts} attempts ({last})",
                message.wamid
            ),
        }
    }
}

/// The webhook body reporting the last of `reached` (status, Unix seconds).
pub fn receipt(message: &Accepted, reached: &[(&str, i64)]) -> Value {
    let (status, at) = *reached
        .last()
        .expect("a receipt reports one status at least");
    let recipient = message.send.contact.as_str();
    let statuses: Vec<Value> = reached
        .iter()
        .map(|(status, at)| {
            json!({"id": message.wamid, "status": status, "timestamp": at.to_string(),
                   "recipient_id": recipient})
        })
        .collect();
    let mut body = json!({
        "message": {
            "id": message.wamid,
            "timestamp": at.to_string(),
            "type": message.send.kind,
            "kapso": {
                "direction": "outbound",
                "status": status,
                "processing_status": "completed",
                "origin": "cloud_api",
                "has_media": message.send.has_media(),
                "statuses": statuses,
            },
        },
        "conversation": conversation(&message.phone_number_id, &message.send.contact, at),
        "is_new_conversation": false,
        "phone_number_id": message.phone_number_id,
    });
    body["message"][&message.send.kind] = message.send.object.clone();
    body
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::super::conversation::Contact;
    use super::*;
    use crate::dev::tests::fixture;

    fn accepted(kind: &str, object: Value) -> Accepted {
        Accepted {
            wamid: "wamid.456".into(),
            phone_number_id: "123456789012345".into(),
            send: Send {
                contact: Contact::Phone("15551234567".into()),
                kind: kind.into(),
                object,
            },
        }
    }

    #[test]
    fn receipts_have_the_fixtures_shape_with_the_statuses_so_far() {
        let message = accepted("text", json!({"body": "On my way"}));
        let times = [1_730_092_860, 1_730_092_888, 1_730_092_900];
        for (n, name) in ["sent.json", "delivered.json", "read.json"]
            .into_iter()
            .enumerate()
        {
            let reached: Vec<_> = RECEIPTS.iter().copied().zip(times).take(n + 1).collect();
            let body = receipt(&message, &reached);
            let expected = fixture(name);
            assert_eq!(body["message"]["id"], expected["message"]["id"]);
            assert_eq!(
                body["message"]["timestamp"],
                expected["message"]["timestamp"]
            );
            assert_eq!(body["message"]["type"], expected["message"]["type"]);
            assert_eq!(body["message"]["text"], expected["message"]["text"]);
            let kapso = &body["message"]["kapso"];
            let want = &expected["message"]["kapso"];
            for field in [
                "direction",
                "status",
                "processing_status",
                "origin",
                "has_media",
                "statuses",
            ] {
                assert_eq!(kapso[field], want[field], "{name}: kapso.{field}");
            }
            assert_eq!(body["phone_number_id"], expected["phone_number_id"]);
            assert_eq!(
                body["conversation"]["phone_number"],
                expected["conversation"]["phone_number"]
            );
            assert_eq!(
                body["conversation"]["id"],
                "conv_123456789012345_15551234567"
            );
        }
    }

    #[test]
    fn other_kinds_carry_their_object_and_media_flag() {
        let image = json!({"link": "https://example.com/p.jpg"});
        let body = receipt(&accepted("image", image.clone()), &[("sent", 1)]);
        assert_eq!(body["message"]["type"], "image");
        assert_eq!(body["message"]["image"], image);
        assert_eq!(body["message"]["kapso"]["has_media"], true);
    }
}
