//! `kapso.gateway.v1.Ingest`: the adapter's way in. One call per webhook
//! delivery; the reply is sent only after the store made it durable, which is
//! what lets the adapter answer Kapso 200.

use std::sync::Arc;

use kapso_gateway_proto::v1::{IngestEventsRequest, IngestEventsResponse, ingest_server::Ingest};
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use crate::convert;
use crate::error::CoreError;
use crate::model::{Delivery, Receipt};
use crate::store::Store;

/// Upper bound on events in one delivery. Kapso batches are small (a buffering
/// window of one conversation); anything far larger is not a Kapso delivery.
pub const MAX_EVENTS_PER_DELIVERY: usize = 10_000;

#[derive(Debug, Clone)]
pub struct IngestService {
    store: Arc<dyn Store>,
}

impl IngestService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl Ingest for IngestService {
    async fn ingest_events(
        &self,
        request: Request<IngestEventsRequest>,
    ) -> Result<Response<IngestEventsResponse>, Status> {
        let request = request.into_inner();
        let count = request.events.len();
        if count > MAX_EVENTS_PER_DELIVERY {
            return Err(CoreError::InvalidArgument(format!(
                "a delivery holds at most {MAX_EVENTS_PER_DELIVERY} events, got {count}"
            ))
            .into());
        }
        if count == 0 {
            // Nothing to store; recording the key alone would only make a later,
            // non-empty retry of the same key look like a duplicate.
            return Ok(Response::new(IngestEventsResponse::default()));
        }
        let delivery = Delivery {
            key: (!request.delivery_key.is_empty()).then_some(request.delivery_key),
            events: request
                .events
                .into_iter()
                .map(convert::event_from_pb)
                .collect(),
        };
        let receipt = self
            .store
            .ingest(delivery)
            .instrument(commit_span(count))
            .await
            .map_err(CoreError::from)?;
        if let Receipt::Stored(claims) = &receipt {
            tracing::debug!(
                events = count,
                new = claims
                    .iter()
                    .filter(|c| matches!(c, crate::model::Claim::New { .. }))
                    .count(),
                "delivery stored"
            );
        }
        Ok(Response::new(convert::receipt_to_pb(receipt, count)))
    }
}

/// The store's commit of one delivery, durable write included, as a span of
/// the exported trace. Only built when traces are exported: logs have no use
/// for it, and the ingest path pays nothing for it otherwise.
fn commit_span(events: usize) -> tracing::Span {
    if kapso_telemetry::spans::exporting() {
        tracing::info_span!("store_commit", events)
    } else {
        tracing::Span::none()
    }
}
