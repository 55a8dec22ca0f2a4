//! The send flow: check, resolve the recipient, claim the send in the store,
//! then either own the upstream call or replay what an earlier call with the
//! same idempotency key got.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tracing::Instrument as _;

use super::abandoned::{ABANDONED_AFTER, SEND_TIME_LIMIT};
use super::request::{CheckedSend, non_empty};
use super::retry::{Idempotent, RetryPolicy};
use super::{DEFAULT_DEADLINE, Outbound, OutboundError, SendMessage, SendText, failure_of};
use crate::kapso_api::{CallOutcome, KapsoApi, OutboundMessage, Rejection};
use crate::model::{
    Conversation, ConversationId, GatewayId, Message, MessageLookup, PhoneNumberId, Recipient,
    SendClaim, SendFailure, SendIntent, SendResult,
};
use crate::status::MessageStatus;
use crate::store::{Store, StoreError};

/// The customer service window: anything but a template only within 24 h of the contact's last message.
const CUSTOMER_WINDOW_SECS: i64 = 24 * 60 * 60;
/// First and longest pause while waiting for another caller's send to settle.
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(500);

/// Who gets the message, from which business number.
#[derive(Debug, Clone)]
struct Resolved {
    phone_number_id: PhoneNumberId,
    to: Recipient,
    conversation_id: Option<ConversationId>,
}

/// Everything the owner of a claimed send needs, detached from the caller so the
/// result is recorded even if the caller goes away mid-call.
#[derive(Debug)]
struct OwnedSend {
    store: Arc<dyn Store>,
    api: Arc<dyn KapsoApi>,
    retry: RetryPolicy,
    window_enforced: bool,
    gateway_id: GatewayId,
    message: OutboundMessage,
    deadline: Instant,
}

impl Outbound {
    /// Sends a text message: [`send_message`](Self::send_message) with text content.
    pub async fn send_text(&self, request: SendText) -> Result<Message, OutboundError> {
        self.send_message(request.into_message()?).await
    }

    /// Sends a message of any kind and returns it as stored (`SENT`, or further
    /// if a status webhook already arrived). With an idempotency key, a
    /// repeated request returns the first call's outcome without calling Kapso again.
    pub async fn send_message(&self, request: SendMessage) -> Result<Message, OutboundError> {
        let deadline = request
            .deadline
            .unwrap_or_else(|| Instant::now() + DEFAULT_DEADLINE);
        let checked = request.check()?;
        if self.config.kapso_api_token.is_none() {
            return Err(OutboundError::NotConfigured);
        }
        let recipient = self.resolve(&checked).await?;
        let gateway_id = GatewayId::mint();
        let intent = SendIntent {
            gateway_id: gateway_id.clone(),
            idempotency_key: checked.idempotency_key.clone(),
            fingerprint: checked.fingerprint.clone(),
            phone_number_id: recipient.phone_number_id.clone(),
            to: recipient.to.clone(),
            conversation_id: recipient.conversation_id.clone(),
            message_type: checked.content.kind().to_owned(),
            text: checked.content.summary(),
            reply_to_message_id: checked.reply_to.clone(),
            created_at: unix_now(),
            content: checked.stored_content.clone(),
        };
        let owned = OwnedSend {
            store: self.store.clone(),
            api: self.api.clone(),
            retry: self.retry,
            window_enforced: self.config.customer_window_enforced,
            gateway_id: gateway_id.clone(),
            message: OutboundMessage {
                phone_number_id: recipient.phone_number_id,
                to: recipient.to,
                content: checked.content,
                reply_to: checked.reply_to,
            },
            // Bounded whatever the caller asked, so that a send still
            // `Accepted` long after this is known to have lost its owner.
            deadline: deadline.min(Instant::now() + SEND_TIME_LIMIT),
        };
        // Claimed and performed in one task of its own: a caller that hangs up
        // (deadline, cancellation) can neither leave a claim nobody sends nor
        // stop a send halfway; it only stops waiting for the answer. It runs in
        // the call's span, so its lines and the Kapso call's span belong to the call.
        let claimed = tokio::spawn(owned.claim_and_run(intent).in_current_span())
            .await
            .unwrap_or_else(|panic| {
                tracing::error!(%gateway_id, %panic, "send task failed");
                Claimed::Ran(Err(OutboundError::OutcomeUnknown {
                    gateway_id: gateway_id.to_string(),
                    reason: "the send task failed".into(),
                }))
            });
        match claimed {
            Claimed::Ran(result) => result,
            Claimed::Existing(message) => self.replay(message, deadline).await,
            Claimed::KeyReused => Err(OutboundError::KeyReused {
                key: checked
                    .idempotency_key
                    .map_or_else(String::new, |key| key.to_string()),
            }),
        }
    }

    /// The recipient, business number and conversation: from the request, then
    /// the conversation (named, or the contact's only one), then the config.
    async fn resolve(&self, checked: &CheckedSend) -> Result<Resolved, OutboundError> {
        let conversation = match (&checked.conversation_id, &checked.to) {
            (None, Some(to)) => {
                self.contact_conversation(
                    to.as_str(),
                    checked.phone_number_id.as_ref().map(PhoneNumberId::as_str),
                )
                .await?
            }
            (None, None) => None,
            (Some(id), _) => Some(
                self.store
                    .conversation(id.as_str())
                    .await?
                    .ok_or_else(|| OutboundError::ConversationNotFound(id.to_string()))?,
            ),
        };
        let to = match (&checked.to, &conversation) {
            (Some(to), _) => Recipient::Phone(to.clone()),
            (None, Some(c)) => Recipient::parse(&c.contact_phone).ok_or_else(|| {
                OutboundError::invalid(
                    "conversation_id",
                    "the conversation's contact has no phone number or user id to send to; give `to`",
                )
            })?,
            (None, None) => return Err(OutboundError::invalid("to", "no recipient")),
        };
        let phone_number_id = match &checked.phone_number_id {
            Some(given) => given.clone(),
            None => self.phone_number_id_or_default(
                conversation
                    .as_ref()
                    .and_then(|c| non_empty(&c.phone_number_id)),
            )?,
        };
        Ok(Resolved {
            phone_number_id,
            to,
            conversation_id: conversation.map(|c| c.id),
        })
    }

    /// The conversation a send to a bare phone number joins: the contact's
    /// only one (on `number`, when the request names it). With several, the
    /// configured number decides if it is set; otherwise the caller must.
    async fn contact_conversation(
        &self,
        contact: &str,
        number: Option<&str>,
    ) -> Result<Option<Conversation>, OutboundError> {
        // Two are enough to tell "only one" from "several".
        let found = self.store.contact_conversations(contact, number, 2).await?;
        if number.is_some() || found.len() < 2 {
            return Ok(only(found));
        }
        match self
            .config
            .kapso_phone_number_id
            .as_deref()
            .and_then(non_empty)
        {
            Some(default) => Ok(only(
                self.store
                    .contact_conversations(contact, Some(&default), 2)
                    .await?,
            )),
            None => Err(OutboundError::invalid(
                "phone_number_id",
                "not given, the contact is in more than one conversation, and KAPSO_PHONE_NUMBER_ID \
                 is not set: give phone_number_id or conversation_id",
            )),
        }
    }

    /// The outcome of an earlier send with the same key, waiting while it is in flight.
    async fn replay(
        &self,
        mut message: Message,
        deadline: Instant,
    ) -> Result<Message, OutboundError> {
        // A send stored under a key always has its gateway id.
        let gateway_id = message
            .gateway_id
            .as_ref()
            .map_or_else(String::new, GatewayId::to_string);
        let mut pause = POLL_FIRST;
        loop {
            match message.status {
                MessageStatus::Accepted => {}
                MessageStatus::OutcomeUnknown => {
                    return Err(OutboundError::OutcomeUnknown {
                        gateway_id,
                        reason: "an earlier call with this idempotency key could not tell whether Kapso sent it".into(),
                    });
                }
                MessageStatus::Failed => {
                    return Err(OutboundError::from_failure(
                        Some(&gateway_id),
                        &message.send_failure(),
                    ));
                }
                MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Read => {
                    return Ok(message);
                }
                MessageStatus::Received => {
                    return Err(StoreError::Internal(format!(
                        "send {gateway_id} is stored as an inbound message"
                    ))
                    .into());
                }
            }
            let abandoned_before = unix_now() - ABANDONED_AFTER.as_secs() as i64;
            if message.timestamp < abandoned_before {
                // Its owner is gone (crash, shutdown): settle it now rather than
                // wait for the periodic sweep, and answer with what that made of it.
                self.store.settle_abandoned_sends(abandoned_before).await?;
            } else {
                // Someone else's upstream call is in flight, maybe on another replica.
                let now = Instant::now();
                if now >= deadline {
                    return Err(OutboundError::StillInFlight { gateway_id });
                }
                tokio::time::sleep(pause.min(deadline - now)).await;
                pause = (pause * 2).min(POLL_MAX);
            }
            // Gone: Kapso never took the earlier call and its claim was released.
            let stored = match MessageLookup::any(&gateway_id) {
                Some(lookup) => self.store.message(&lookup).await?,
                None => None,
            };
            message = stored.ok_or_else(|| OutboundError::Unavailable {
                gateway_id: None,
                reason: "an earlier call with this idempotency key was not taken by Kapso".into(),
            })?;
        }
    }
}

/// What the send task made of its claim.
#[derive(Debug)]
enum Claimed {
    /// This call claimed the key (or had none) and performed the send.
    Ran(Result<Message, OutboundError>),
    /// An earlier call with the same key and request owns it.
    Existing(Message),
    /// The key was used for a different request.
    KeyReused,
}

impl OwnedSend {
    async fn claim_and_run(self, intent: SendIntent) -> Claimed {
        match self.store.begin_send(intent).await {
            Ok(SendClaim::Started(_)) => Claimed::Ran(self.run().await),
            Ok(SendClaim::Existing(message)) => Claimed::Existing(message),
            Ok(SendClaim::KeyReused) => Claimed::KeyReused,
            Err(error) => {
                // The claim may have committed although its answer was lost
                // (PostgreSQL connection dropped mid-commit): nothing was sent,
                // so take it back; failing that, the abandoned-send sweep settles it.
                if let Err(release) = self.store.release_send(&self.gateway_id).await {
                    tracing::warn!(gateway_id = %self.gateway_id, error = %release, "cannot release a send whose claim failed");
                }
                Claimed::Ran(Err(error.into()))
            }
        }
    }

    async fn run(self) -> Result<Message, OutboundError> {
        let window_applies = self.window_enforced && !self.message.content.allowed_outside_window();
        if window_applies && self.window_closed().await? {
            // Refused here, before any request: nothing is kept under the key,
            // so the same request goes out once the customer writes again.
            return self
                .refused_here(OutboundError::WindowClosed {
                    gateway_id: None,
                    error: None,
                })
                .await;
        }
        let api = &self.api;
        let message = &self.message;
        let deadline = self.deadline;
        let outcome = self
            .retry
            .run(deadline, Idempotent::No, |_| {
                api.send_message(message, deadline)
            })
            .await;
        match outcome {
            CallOutcome::Done(wamid) => {
                let stored = self
                    .store
                    .finish_send(&self.gateway_id, SendResult::Sent { wamid })
                    .await?;
                tracing::info!(gateway_id = %self.gateway_id, wamid = %stored.id, status = %stored.status, "message sent");
                Ok(stored)
            }
            CallOutcome::Unknown(reason) => {
                self.store
                    .finish_send(&self.gateway_id, SendResult::Unknown)
                    .await?;
                tracing::warn!(gateway_id = %self.gateway_id, %reason, "send outcome unknown");
                Err(OutboundError::OutcomeUnknown {
                    gateway_id: self.gateway_id.to_string(),
                    reason,
                })
            }
            CallOutcome::Permanent(Rejection::NotConfigured) => {
                self.refused_here(OutboundError::NotConfigured).await
            }
            not_taken @ CallOutcome::Retryable(_) => self.not_taken(failure_of(&not_taken)).await,
            failed => self.failed(failure_of(&failed)).await,
        }
    }

    /// Whether the contact wrote before and that was over 24 hours ago
    /// (a contact never heard from may be starting a conversation through us).
    async fn window_closed(&self) -> Result<bool, OutboundError> {
        let last = self
            .store
            .last_inbound_at(
                self.message.phone_number_id.as_str(),
                self.message.to.as_str(),
            )
            .await?;
        Ok(last.is_some_and(|at| unix_now() - at > CUSTOMER_WINDOW_SECS))
    }

    /// Kapso certainly never took the request (unreachable, or busy until the
    /// deadline). The claim is released rather than recorded as failed, so the
    /// caller's retry with the same idempotency key calls Kapso again: the usual
    /// "retry on UNAVAILABLE" policy then works without minting new keys.
    async fn not_taken(self, failure: SendFailure) -> Result<Message, OutboundError> {
        if !self.store.release_send(&self.gateway_id).await? {
            // A webhook reached the row meanwhile; keep the usual record.
            return self.failed(failure).await;
        }
        // No message id: nothing is stored under it any more.
        let error = OutboundError::from_failure(None, &failure);
        tracing::warn!(gateway_id = %self.gateway_id, %error, "send not taken by Kapso; its idempotency key is free again");
        Err(error)
    }

    /// The gateway refused the send itself and no request left: the claim is
    /// released, so the key keeps nothing (as for a request that fails validation).
    async fn refused_here(self, error: OutboundError) -> Result<Message, OutboundError> {
        if !self.store.release_send(&self.gateway_id).await? {
            // Only a webhook's guess (same number, contact and text) can have
            // touched a send no request left for; that guess keeps the row.
            tracing::warn!(gateway_id = %self.gateway_id, "refused send was claimed by a webhook; kept");
        }
        tracing::debug!(gateway_id = %self.gateway_id, %error, "send refused by the gateway");
        Err(error)
    }

    async fn failed(self, failure: SendFailure) -> Result<Message, OutboundError> {
        let error = OutboundError::from_failure(Some(self.gateway_id.as_str()), &failure);
        self.store
            .finish_send(&self.gateway_id, SendResult::Failed(failure))
            .await?;
        tracing::warn!(gateway_id = %self.gateway_id, %error, "send failed");
        Err(error)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The one conversation of `found`, or none when there are none or several:
/// which of several a send belongs to is not for the gateway to guess.
fn only(found: Vec<Conversation>) -> Option<Conversation> {
    let [one] = <[Conversation; 1]>::try_from(found).ok()?;
    Some(one)
}
