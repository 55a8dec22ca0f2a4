//! `kapso.gateway.v1.Messaging`: what internal services call to read messages,
//! follow the event log and send.

use std::sync::Arc;

use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::messaging_server::Messaging;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::error::CoreError;
use crate::model::EventFilter;
use crate::store::Store;
use crate::watch::{self, EventStream};

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;

#[derive(Debug, Clone)]
pub struct MessagingService {
    store: Arc<dyn Store>,
}

impl MessagingService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

fn page_size(requested: i32) -> Result<usize, CoreError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(CoreError::InvalidArgument(format!(
            "page_size must be 0 to {MAX_PAGE_SIZE}, got {n}"
        ))),
        n => Ok((n as usize).min(MAX_PAGE_SIZE)),
    }
}

#[tonic::async_trait]
impl Messaging for MessagingService {
    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let id = request.into_inner().message_id;
        if id.is_empty() {
            return Err(CoreError::InvalidArgument("message_id is required".into()).into());
        }
        match self.store.message(&id).await.map_err(CoreError::from)? {
            Some(message) => Ok(Response::new(convert::message_to_pb(message))),
            None => Err(CoreError::NotFound(format!(
                "no message with id, wamid or idempotency key {id:?}"
            ))
            .into()),
        }
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let request = request.into_inner();
        if request.conversation_id.is_empty() {
            return Err(CoreError::InvalidArgument("conversation_id is required".into()).into());
        }
        let size = page_size(request.page_size)?;
        let cursor = (!request.page_token.is_empty()).then_some(request.page_token.as_str());
        let page = self
            .store
            .conversation_messages(&request.conversation_id, size, cursor)
            .await
            .map_err(CoreError::from)?;
        Ok(Response::new(pb::ListMessagesResponse {
            messages: page
                .messages
                .into_iter()
                .map(convert::message_to_pb)
                .collect(),
            next_page_token: page.next_cursor.unwrap_or_default(),
        }))
    }

    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let request = request.into_inner();
        let mut after = request.after_sequence;
        if after == 0 && !request.consumer.is_empty() {
            after = self
                .store
                .consumer_position(&request.consumer)
                .await
                .map_err(CoreError::from)?
                .unwrap_or(0);
        }
        let filter = EventFilter {
            event_types: request.event_types,
            conversation_id: request.conversation_id,
            phone_number_id: request.phone_number_id,
        };
        tracing::info!(after, consumer = %request.consumer, "watch started");
        Ok(Response::new(watch::follow(
            self.store.clone(),
            after,
            filter,
        )))
    }

    async fn ack_events(
        &self,
        request: Request<pb::AckEventsRequest>,
    ) -> Result<Response<pb::AckEventsResponse>, Status> {
        let request = request.into_inner();
        if request.consumer.is_empty() {
            return Err(CoreError::InvalidArgument("consumer is required".into()).into());
        }
        let sequence = self
            .store
            .ack(&request.consumer, request.sequence)
            .await
            .map_err(CoreError::from)?;
        Ok(Response::new(pb::AckEventsResponse { sequence }))
    }

    async fn send_text(
        &self,
        _request: Request<pb::SendTextRequest>,
    ) -> Result<Response<pb::SendTextResponse>, Status> {
        Err(Status::unimplemented("SendText is not available yet"))
    }

    async fn mark_read(
        &self,
        _request: Request<pb::MarkReadRequest>,
    ) -> Result<Response<pb::MarkReadResponse>, Status> {
        Err(Status::unimplemented("MarkRead is not available yet"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_clamps_and_rejects_negative() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(5).unwrap(), 5);
        assert_eq!(page_size(5000).unwrap(), MAX_PAGE_SIZE);
        assert!(page_size(-1).is_err());
    }
}
