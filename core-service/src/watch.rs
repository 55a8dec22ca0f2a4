//! Following the event log: replay after a position, then live, as one loop.
//!
//! The log is the only source: a stream never keeps its own copy of events it
//! has not sent. It reads a page after its position, sends it (waiting while
//! the client is slow: the bounded channel is the backpressure), and when the
//! page is empty waits for the store's commit signal. Replay and live are the
//! same query, so there is no switch-over where an event could be skipped or
//! sent twice, and memory per stream is one page, whatever the backlog.

use std::sync::Arc;

use kapso_gateway_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::convert;
use crate::error::CoreError;
use crate::model::EventFilter;
use crate::store::Store;

/// Log entries read per query.
const PAGE: usize = 256;
/// Entries buffered between the reader task and the client's HTTP/2 stream.
const CHANNEL: usize = 64;

pub type EventStream = ReceiverStream<Result<pb::Event, Status>>;

/// Flips to `true` when the server starts shutting down.
pub type Closing = tokio::sync::watch::Receiver<bool>;

/// Starts a stream of the log entries after `after` that match `filter`.
///
/// The stream ends with `UNAVAILABLE` when the server starts shutting down, so
/// clients reconnect (to this replica once back, or another) without waiting
/// for the shutdown grace period to run out.
pub fn follow(
    store: Arc<dyn Store>,
    after: u64,
    filter: EventFilter,
    mut closing: Closing,
) -> EventStream {
    let (tx, rx) = mpsc::channel(CHANNEL);
    tokio::spawn(async move {
        let outcome = tokio::select! {
            outcome = pump(store, after, filter, &tx) => outcome,
            _ = closing.wait_for(|closing| *closing) => Err(Status::unavailable("server shutting down; resume after the last sequence received")),
        };
        if let Err(status) = outcome {
            let _ = tx.send(Err(status)).await;
        }
    });
    ReceiverStream::new(rx)
}

/// Sends entries until the client goes away (`Ok`) or the store fails (`Err`).
async fn pump(
    store: Arc<dyn Store>,
    mut after: u64,
    filter: EventFilter,
    tx: &mpsc::Sender<Result<pb::Event, Status>>,
) -> Result<(), Status> {
    let mut committed = store.committed();
    loop {
        // Read the commit mark before querying: a commit that lands during the
        // query then still wakes the wait below.
        let mark = *committed.borrow_and_update();
        let page = store
            .events_after(after, &filter, PAGE)
            .await
            .map_err(CoreError::from)?;
        let full = page.len() == PAGE;
        for stored in page {
            after = stored.sequence;
            if tx
                .send(Ok(convert::stored_event_to_pb(stored)))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        if full {
            continue;
        }
        // Everything up to `mark` was visible to the query and nothing more
        // matched, so later queries can start there (cheap with rare filters).
        after = after.max(mark);
        tokio::select! {
            changed = committed.changed() => if changed.is_err() {
                return Err(Status::unavailable("store closed"));
            },
            () = tx.closed() => return Ok(()),
        }
    }
}
