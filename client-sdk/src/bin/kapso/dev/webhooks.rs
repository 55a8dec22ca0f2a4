//! Webhook deliveries as Kapso makes them: the body signed as sent, Kapso's
//! headers (`X-Webhook-Event`, `X-Webhook-Signature`, `X-Idempotency-Key`,
//! `X-Webhook-Payload-Version: v2`, no batching), and a delivery answered
//! anything but 2xx tried again after a pause, under the same idempotency key.

use std::time::Duration;

use anyhow::Context;
use kapso_client::webhook::WebhookRequest;
use reqwest::StatusCode;

use crate::cli::Secret;

/// Pauses before each retry. Kapso's own schedule is tens of seconds apart;
/// on a developer's machine the same shape, shorter, keeps receipts prompt.
pub const KAPSO_LIKE_BACKOFF: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// How long one attempt may take: Kapso counts only an answer within 10 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Answered 2xx, at the given attempt (1 for the first).
    Accepted { status: StatusCode, attempt: usize },
    /// Every attempt failed; the last one's reason.
    GaveUp { attempts: usize, last: String },
}

/// Where webhooks go and how they are signed.
#[derive(Debug)]
pub struct Webhooks {
    http: reqwest::Client,
    url: String,
    secret: Secret,
    backoff: Vec<Duration>,
}

/// One attempt's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

impl Webhooks {
    pub fn new(url: String, secret: Secret, backoff: Vec<Duration>) -> anyhow::Result<Webhooks> {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(Webhooks {
            http,
            url,
            secret,
            backoff,
        })
    }

    /// Delivers `body` as a single `event`, retrying until a 2xx or the
    /// backoff runs out.
    pub async fn deliver(&self, event: &str, body: Vec<u8>) -> Delivered {
        let request = WebhookRequest::new(body).event(event);
        let mut pauses = self.backoff.iter();
        let mut attempt = 1;
        loop {
            let last = match self.post(&request).await {
                Ok(answer) if answer.status.is_success() => {
                    return Delivered::Accepted {
                        status: answer.status,
                        attempt,
                    };
                }
                Ok(answer) => format!("HTTP {}", answer.status),
                Err(error) => format!("{error:#}"),
            };
            match pauses.next() {
                Some(pause) => tokio::time::sleep(*pause).await,
                None => {
                    return Delivered::GaveUp {
                        attempts: attempt,
                        last,
                    };
                }
            }
            attempt += 1;
        }
    }

    /// One attempt.
    pub async fn post(&self, request: &WebhookRequest) -> anyhow::Result<Answer> {
        let mut post = self.http.post(&self.url);
        for (name, value) in request.headers(self.secret.expose()) {
            post = post.header(name, value);
        }
        let response = post
            .body(request.body.clone())
            .send()
            .await
            .with_context(|| format!("POST {}", self.url))?;
        let status = response.status();
        let body = response.text().await.context("reading the answer")?;
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::routing::post;

    use super::*;

    type Seen = Arc<Mutex<Vec<HeaderMap>>>;

    /// A receiver answering `statuses` in turn (then 200), keeping each request's headers.
    async fn receiver(statuses: Vec<u16>) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let answers = Arc::new(Mutex::new(statuses.into_iter()));
        let state = (seen.clone(), answers);
        let app = Router::new()
            .route(
                "/hook",
                post(
                    |State((seen, answers)): State<(Seen, Arc<Mutex<std::vec::IntoIter<u16>>>)>,
                     headers: HeaderMap| async move {
                        seen.lock().unwrap().push(headers);
                        let status = answers.lock().unwrap().next().unwrap_or(200);
                        StatusCode::from_u16(status).unwrap()
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    fn webhooks(url: String, retries: usize) -> Webhooks {
        let secret = "test-secret-not-real".parse().unwrap();
        Webhooks::new(url, secret, vec![Duration::from_millis(1); retries]).unwrap()
    }

    #[tokio::test]
    async fn a_refused_delivery_is_retried_under_the_same_key() {
        let (url, seen) = receiver(vec![503, 500]).await;
        let delivered = webhooks(url, 3)
            .deliver("whatsapp.message.sent", b"{}".to_vec())
            .await;
        assert_eq!(
            delivered,
            Delivered::Accepted {
                status: StatusCode::OK,
                attempt: 3
            }
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        let key = &seen[0]["x-idempotency-key"];
        assert!(seen.iter().all(|h| h["x-idempotency-key"] == key));
        assert_eq!(seen[0]["x-webhook-event"], "whatsapp.message.sent");
        assert_eq!(seen[0]["x-webhook-payload-version"], "v2");
        assert_eq!(
            seen[0]["x-webhook-signature"],
            kapso_client::webhook::sign("test-secret-not-real", b"{}").as_str()
        );
        assert!(seen[0].get("x-webhook-batch").is_none());
    }

    #[tokio::test]
    async fn a_delivery_gives_up_when_the_backoff_runs_out() {
        let (url, seen) = receiver(vec![401, 401, 401]).await;
        let delivered = webhooks(url, 1).deliver("e", b"{}".to_vec()).await;
        assert_eq!(
            delivered,
            Delivered::GaveUp {
                attempts: 2,
                last: "HTTP 401 Unauthorized".into()
            }
        );
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn each_delivery_has_its_own_key() {
        let (url, seen) = receiver(Vec::new()).await;
        let webhooks = webhooks(url, 0);
        webhooks.deliver("e", b"{}".to_vec()).await;
        webhooks.deliver("e", b"{}".to_vec()).await;
        let seen = seen.lock().unwrap();
        assert_ne!(seen[0]["x-idempotency-key"], seen[1]["x-idempotency-key"]);
    }
}
