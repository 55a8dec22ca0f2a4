//! A PostgreSQL database from before the log held its events' identities
//! (migration 0006) keeps recognising the events it stored: a re-delivery is
//! still a duplicate once the store has upgraded it. One from before sends
//! recorded how they failed (0007) reads its failed sends back as they failed.

use kapso_core::model::{
    Claim, ConversationId, EventType, MetaError, NewEvent, Receipt, SendFailure,
};
use kapso_core::store::Store;
use kapso_core::store::postgres::PostgresStore;
use tokio_postgres::NoTls;

use crate::postgres_db::TestDatabase;
use crate::store_suite::{any_id, delivery, received, status};

/// The schema before 0006, in order.
const BEFORE: [&str; 5] = [
    include_str!("../../migrations/postgres/0001_initial.sql"),
    include_str!("../../migrations/postgres/0002_log_horizon.sql"),
    include_str!("../../migrations/postgres/0003_conversations_by_contact.sql"),
    include_str!("../../migrations/postgres/0004_message_content.sql"),
    include_str!("../../migrations/postgres/0005_no_events_by_conversation.sql"),
];

fn conversation_created() -> NewEvent {
    NewEvent {
        event_type: EventType::ConversationCreated,
        conversation_id: ConversationId::parse("conv-1"),
        payload_json: r#"{"conversation":{"id":"conv-1"}}"#.into(),
        ..NewEvent::default()
    }
}

#[tokio::test]
async fn events_stored_before_the_identity_columns_stay_known() {
    let db = TestDatabase::create().await;
    let (client, connection) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .unwrap();
    for (index, sql) in BEFORE.iter().enumerate() {
        client.batch_execute(sql).await.unwrap();
        let version = i32::try_from(index + 1).unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, 'before 0006')",
                &[&version],
            )
            .await
            .unwrap();
    }
    // As the store wrote them then: a received message with its row, an event
    // without a message id, and a status whose message row is gone.
    let created = conversation_created();
    client
        .execute(
            "INSERT INTO messages (wamid, direction, conversation_id, status, timestamp, \
             created_at, updated_at) VALUES ('wamid.old', 'inbound', 'conv-1', 'received', 1, 1, 1)",
            &[],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO events (received_at_ms, event_type, message_id, conversation_id, \
             phone_number_id, contact_phone, direction, message_type, text, reply_to, \
             timestamp, payload_json) VALUES \
             (1, 'whatsapp.message.received', 'wamid.old', 'conv-1', '', '', 'inbound', \
              'text', 'hola', '', 1, '{}'), \
             (1, 'whatsapp.conversation.created', '', 'conv-1', '', '', '', '', '', '', 0, $1), \
             (1, 'whatsapp.message.read', 'wamid.gone', '', '', '', 'outbound', '', '', '', 1, \
              '{}')",
            &[&created.payload_json],
        )
        .await
        .unwrap();

    let store = PostgresStore::open(&db.url).await.unwrap();
    let again = delivery(
        None,
        vec![received("wamid.old", "conv-1", "hola", 1), created],
    );
    assert_eq!(
        store.ingest(again).await.unwrap(),
        Receipt::Stored(vec![Claim::Duplicate, Claim::Duplicate])
    );
    let news = store
        .ingest(delivery(None, vec![status("wamid.old", "read", 2)]))
        .await
        .unwrap();
    assert!(matches!(news, Receipt::Stored(ref c) if matches!(c[..], [Claim::New { .. }])));

    let identities: Vec<(Option<bool>, String)> = client
        .query(
            "SELECT message_row IS NOT NULL, dedup_key FROM events WHERE sequence <= 3 \
             ORDER BY sequence",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        identities[0],
        (Some(true), "whatsapp.message.received".into())
    );
    assert!(
        identities[1]
            .1
            .starts_with("p|whatsapp.conversation.created|")
    );
    assert_eq!(identities[2], (Some(false), "s|wamid.gone|read".into()));
    let leftovers: bool = client
        .query_one(
            "SELECT to_regclass('event_keys') IS NULL \
             AND NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'kapso_status_rank')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(leftovers, "event_keys and the status ranking are gone");
}

/// Sends Kapso never took were recorded before 0007 as a made-up Meta error
/// (code 0, a fixed title); they read back as not taken, while a refusal with
/// Meta's error stays one.
#[tokio::test]
async fn made_up_errors_stored_before_0007_read_back_as_not_taken() {
    let db = TestDatabase::create().await;
    let (client, connection) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .unwrap();
    let before = BEFORE.iter().chain([&include_str!(
        "../../migrations/postgres/0006_event_identity.sql"
    )]);
    for (index, sql) in before.enumerate() {
        client.batch_execute(sql).await.unwrap();
        let version = i32::try_from(index + 1).unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, 'before 0007')",
                &[&version],
            )
            .await
            .unwrap();
    }
    let made_up =
        r#"[{"code":0,"title":"not taken by Kapso","message":"cannot connect to Kapso"}]"#;
    let refused = r#"[{"code":131047,"title":"Re-engagement message","message":"window closed"}]"#;
    for (gateway_id, errors) in [("gw-old", made_up), ("gw-refused", refused)] {
        client
            .execute(
                "INSERT INTO messages (gateway_id, direction, status, errors_json, timestamp, \
                 created_at, updated_at) VALUES ($1, 'outbound', 'failed', $2, 1, 1, 1)",
                &[&gateway_id, &errors],
            )
            .await
            .unwrap();
    }

    let store = PostgresStore::open(&db.url).await.unwrap();
    let not_taken = store.message(&any_id("gw-old")).await.unwrap().unwrap();
    assert_eq!(
        not_taken.send_failure(),
        SendFailure::NotTaken {
            reason: "cannot connect to Kapso".into()
        }
    );
    assert!(not_taken.errors.is_empty());
    let refused = store.message(&any_id("gw-refused")).await.unwrap().unwrap();
    assert_eq!(
        refused.send_failure(),
        SendFailure::Refused(vec![MetaError {
            code: 131047,
            title: "Re-engagement message".into(),
            message: "window closed".into(),
            details: String::new(),
        }])
    );
}
