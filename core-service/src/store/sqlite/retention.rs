//! Pruning old log entries and de-duplication keys, a bounded batch at a time.
//!
//! Each call deletes at most `batch` rows per table inside one writer request,
//! so it shares a group commit with ingest instead of holding the write lock.

use rusqlite::{Connection, params};

use crate::store::StoreError;

/// See [`Store::prune`](crate::store::Store::prune).
pub(super) fn prune(
    conn: &Connection,
    older_than_ms: i64,
    batch: usize,
) -> Result<u64, StoreError> {
    let batch = i64::try_from(batch).unwrap_or(i64::MAX);
    // Events are appended in time order, so only the first `batch` by sequence
    // need looking at: the scan stops there even when nothing is old enough.
    // An event's identity is a column of its row and goes with it.
    let pruned: Vec<i64> = conn
        .prepare_cached(
            "DELETE FROM events WHERE sequence IN \
             (SELECT sequence FROM events ORDER BY sequence LIMIT ?2) \
             AND received_at_ms < ?1 RETURNING sequence",
        )?
        .query_map(params![older_than_ms, batch], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let events = pruned.len();
    // Consumers behind it are told they missed events, not left to skip them.
    if let Some(through) = pruned.into_iter().max() {
        conn.prepare_cached("UPDATE log_horizon SET pruned_through = max(pruned_through, ?1)")?
            .execute([through])?;
    }
    let deliveries = conn
        .prepare_cached(
            "DELETE FROM deliveries WHERE key IN (SELECT key FROM deliveries \
             WHERE received_at_ms < ?1 ORDER BY received_at_ms LIMIT ?2)",
        )?
        .execute(params![older_than_ms, batch])?;
    Ok((events + deliveries) as u64)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::SqliteStore;
    use crate::model::{
        ConversationId, Delivery, Direction, EventFilter, EventType, MessageLookup, NewEvent, Wamid,
    };
    use crate::store::Store;

    fn received(wamid: &str) -> NewEvent {
        NewEvent {
            event_type: EventType::MessageReceived,
            message_id: Wamid::parse(wamid),
            conversation_id: ConversationId::parse("conv-1"),
            phone_number_id: "1234567890".into(),
            contact_phone: "15551234567".into(),
            direction: Direction::Inbound,
            message_type: "text".into(),
            text: "hola".into(),
            timestamp: 1_700_000_000,
            payload_json: "{}".into(),
            ..NewEvent::default()
        }
    }

    async fn ingest(store: &dyn Store, key: &str, wamid: &str) {
        let delivery = Delivery {
            key: Some(key.into()),
            events: vec![received(wamid)],
        };
        store.ingest(delivery).await.unwrap();
    }

    #[tokio::test]
    async fn old_events_and_keys_go_recent_ones_and_messages_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path.to_str().unwrap()).unwrap());
        for i in 0..10 {
            ingest(
                store.as_ref(),
                &format!("old-{i}"),
                &format!("wamid.old{i}"),
            )
            .await;
        }
        // Backdate the first ten as if received long ago.
        let conn = rusqlite::Connection::open(&path).unwrap();
        for table in ["events", "deliveries"] {
            conn.execute(&format!("UPDATE {table} SET received_at_ms = 1000"), [])
                .unwrap();
        }
        drop(conn);
        for i in 0..5 {
            ingest(
                store.as_ref(),
                &format!("new-{i}"),
                &format!("wamid.new{i}"),
            )
            .await;
        }

        // Batches of 3 while ingest goes on beside them: every call returns, none stalls.
        let pruning = async {
            let mut total = 0;
            loop {
                match store.prune(10_000, 3).await.unwrap() {
                    0 => return total,
                    rows => total += rows,
                }
            }
        };
        let ingesting = async {
            for i in 0..20 {
                ingest(
                    store.as_ref(),
                    &format!("during-{i}"),
                    &format!("wamid.during{i}"),
                )
                .await;
            }
        };
        let (pruned, ()) = tokio::join!(pruning, ingesting);
        assert_eq!(
            pruned, 20,
            "10 events with their identities, 10 delivery keys"
        );

        let left = store
            .events_after(0, &EventFilter::default(), 100)
            .await
            .unwrap();
        assert_eq!(left.len(), 25);
        assert!(left.iter().all(|e| {
            !e.event
                .message_id
                .as_ref()
                .is_some_and(|id| id.as_str().starts_with("wamid.old"))
        }));
        assert!(
            store
                .message(&MessageLookup::any("wamid.old0").unwrap())
                .await
                .unwrap()
                .is_some()
        );
        // The pruned key no longer de-duplicates: a re-delivery is stored again.
        ingest(store.as_ref(), "old-0", "wamid.old0").await;
        assert_eq!(
            store
                .events_after(0, &EventFilter::default(), 100)
                .await
                .unwrap()
                .len(),
            26
        );
    }
}
