//! The HTTP side of `kapso dev`: Kapso's Meta proxy endpoint
//! `POST /meta/whatsapp/{version}/{phone_number_id}/messages`, and `GET /healthz`
//! for scripts that wait for it to start.
//!
//! A call goes: the configured latency, the API key, the body (Meta's checks),
//! the misbehaviour asked for, then the answer; an accepted send's receipts
//! are posted afterwards, in a task of their own.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::conversation::Contact;
use super::meta_error::MetaError;
use super::misbehaviour::Misbehaviour;
use super::receipts::{self, Accepted};
use super::request::{self, ApiCall};
use super::webhooks::Webhooks;
use crate::cli::Secret;

/// Everything a call needs.
#[derive(Debug)]
pub struct DevKapso {
    pub api_key: Option<Secret>,
    pub misbehaviour: Misbehaviour,
    pub webhooks: Arc<Webhooks>,
}

pub fn router(state: Arc<DevKapso>) -> Router {
    Router::new()
        .route(
            "/meta/whatsapp/{version}/{phone_number_id}/messages",
            post(messages),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|uri: Uri| async move { MetaError::UnknownPath(uri.path().to_owned()) })
        .with_state(state)
}

async fn messages(
    State(dev): State<Arc<DevKapso>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tokio::time::sleep(dev.misbehaviour.latency()).await;
    let answer = answer(&dev, &version, &phone_number_id, &headers, &body);
    let (response, accepted) = match answer {
        Ok(Answered::Read) => (Json(json!({"success": true})).into_response(), None),
        Ok(Answered::Sent(accepted)) => (sent(&accepted), Some(accepted)),
        Err(error) => {
            eprintln!(
                "kapso dev: call from {phone_number_id} refused: HTTP {} code {}",
                error.status().as_u16(),
                error.code()
            );
            (error.into_response(), None)
        }
    };
    if let Some(accepted) = accepted {
        eprintln!(
            "kapso dev: {} to {} from {phone_number_id} accepted as {}",
            accepted.send.kind,
            masked(&accepted.send.contact),
            accepted.wamid
        );
        let webhooks = dev.webhooks.clone();
        tokio::spawn(async move { receipts::deliver(&webhooks, accepted).await });
    }
    response
}

/// What an accepted call did.
enum Answered {
    Read,
    Sent(Accepted),
}

fn answer(
    dev: &DevKapso,
    version: &str,
    phone_number_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Answered, MetaError> {
    if let Some(key) = &dev.api_key
        && !presents(headers, key)
    {
        return Err(MetaError::BadKey);
    }
    let version_ok = version
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    let number_ok = phone_number_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !version_ok || !number_ok {
        return Err(MetaError::UnknownPath(format!(
            "/meta/whatsapp/{version}/{phone_number_id}/messages"
        )));
    }
    let call = request::parse(body)?;
    if let Some(failure) = dev.misbehaviour.failure(rand::random::<f64>()) {
        return Err(failure);
    }
    Ok(match call {
        ApiCall::MarkRead => Answered::Read,
        ApiCall::Send(send) => Answered::Sent(Accepted {
            wamid: format!("wamid.DEV{}", uuid::Uuid::new_v4().simple()),
            phone_number_id: phone_number_id.to_owned(),
            send,
        }),
    })
}

/// Whether the call carries `key`, as `X-API-Key` or (Kapso's older form)
/// `Authorization: Bearer`. Compared as digests, so the time taken says
/// nothing about how much of the key was right.
fn presents(headers: &HeaderMap, key: &Secret) -> bool {
    let given = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    given.is_some_and(|given| {
        Sha256::digest(given.as_bytes()) == Sha256::digest(key.expose().as_bytes())
    })
}

/// Meta's answer to a send.
fn sent(accepted: &Accepted) -> Response {
    let contact = match &accepted.send.contact {
        Contact::Phone(digits) => json!({"input": digits, "wa_id": digits}),
        Contact::UserId(id) => json!({"input": id, "wa_id": "", "user_id": id}),
    };
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [contact],
        "messages": [{"id": accepted.wamid}],
    }))
    .into_response()
}

/// The last four characters of a contact: enough to tell test contacts apart,
/// not enough to log a customer's number.
fn masked(contact: &Contact) -> String {
    let id = contact.as_str();
    let tail: String = id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_key_is_taken_as_x_api_key_or_bearer() {
        let key: Secret = "test-key-not-real".parse().unwrap();
        assert!(presents(&headers("x-api-key", "test-key-not-real"), &key));
        assert!(presents(
            &headers("authorization", "Bearer test-key-not-real"),
            &key
        ));
        assert!(!presents(&headers("x-api-key", "test-key-not-real2"), &key));
        assert!(!presents(
            &headers("authorization", "test-key-not-real"),
            &key
        ));
        assert!(!presents(&HeaderMap::new(), &key));
    }

    #[test]
    fn contacts_are_masked_to_four_characters() {
        assert_eq!(masked(&Contact::Phone("15551234567".into())), "…4567");
        assert_eq!(masked(&Contact::UserId("US.42".into())), "…S.42");
    }
}
