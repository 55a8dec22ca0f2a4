//! One script, two backends: random scripts of deliveries and sends
//! ([`script`]) are applied to a SQLite store and to a PostgreSQL store, step
//! by step. Every call must answer alike (receipts and their sequences, send
//! claims, the messages sends return), and the stores must end holding the
//! same messages, status histories, conversations and log ([`dump`]).
//!
//! The rules of the business are meant to live once; this is what catches a
//! backend that applies them its own way.

mod dump;
mod script;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kapso_core::model::{
    ConversationId, Delivery, IdempotencyKey, MetaError, NewEvent, PhoneNumberId, Recipient,
    SendClaim, SendFailure, SendIntent, SendResult,
};
use kapso_core::store::postgres::PostgresStore;
use kapso_core::store::sqlite::SqliteStore;
use kapso_core::store::{Store, StoreError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::postgres_db::TestDatabase;
use crate::store_suite::{PHONE_NUMBER_ID, gateway};
use dump::Dump;
use script::{EventSpec, Key, ResultSpec, Step};

/// Scripts per run.
const CASES: u32 = 24;

/// A script is at most 40 steps; this is a hang, not a slow machine.
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn sqlite_and_postgres_answer_and_end_alike() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    // One database for the run, emptied before each script: creating one
    // takes longer than a script.
    let database = runtime.block_on(TestDatabase::create());
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        // Each shrink step runs a script on both stores: bounded.
        max_shrink_iters: 256,
        // The failing script is printed; nothing is written beside the tests.
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&script::script(), |steps| {
        runtime.block_on(async {
            tokio::time::timeout(CASE_TIMEOUT, run(&database, &steps))
                .await
                .map_err(|_| TestCaseError::fail("the script did not finish in time"))?
        })
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

async fn run(database: &TestDatabase, steps: &[Step]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).expect("open sqlite store"));
    empty(database).await;
    let postgres: Arc<dyn Store> = Arc::new(
        PostgresStore::open(&database.url)
            .await
            .expect("open postgres store"),
    );

    let mut resolver = Resolver::new();
    for (n, step) in steps.iter().enumerate() {
        let Some(call) = resolver.resolve(n, step) else {
            continue;
        };
        let on_sqlite = call.run(&sqlite).await;
        let on_postgres = call.run(&postgres).await;
        prop_assert_eq!(&on_sqlite, &on_postgres, "step {}: {:?}", n, call);
        match on_sqlite {
            Ok(outcome) => resolver.answered(&call, &outcome),
            Err(error) => return Err(TestCaseError::fail(format!("step {n} refused: {error}"))),
        }
    }
    let on_sqlite = dump::dump(&sqlite, &resolver.begun)
        .await
        .map_err(refused)?;
    let on_postgres = dump::dump(&postgres, &resolver.begun)
        .await
        .map_err(refused)?;
    compare(&on_sqlite, &on_postgres)
}

/// Makes the database as a new one is: every table empty, every identity
/// column back at its start, the log's horizon at 0.
async fn empty(database: &TestDatabase) {
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
        .batch_execute(
            "DO $$ DECLARE tables TEXT; BEGIN \
               SELECT string_agg(quote_ident(tablename), ', ') INTO tables FROM pg_tables \
               WHERE schemaname = 'public' \
                 AND tablename NOT IN ('schema_migrations', 'log_horizon'); \
               IF tables IS NOT NULL THEN \
                 EXECUTE 'TRUNCATE ' || tables || ' RESTART IDENTITY'; \
               END IF; \
               IF to_regclass('log_horizon') IS NOT NULL THEN \
                 UPDATE log_horizon SET pruned_through = 0; \
               END IF; \
             END $$",
        )
        .await
        .expect("empty the test database");
}

fn refused(error: StoreError) -> TestCaseError {
    TestCaseError::fail(format!("a read failed: {error}"))
}

/// Part by part, so that a failure names what differs.
fn compare(sqlite: &Dump, postgres: &Dump) -> Result<(), TestCaseError> {
    for ((name, a), (_, b)) in sqlite.lookups.iter().zip(&postgres.lookups) {
        prop_assert_eq!(a, b, "message {}", name);
    }
    for (a, b) in sqlite.conversations.iter().zip(&postgres.conversations) {
        prop_assert_eq!(a, b, "conversation");
    }
    prop_assert_eq!(&sqlite.last_inbound, &postgres.last_inbound);
    for (a, b) in sqlite.log.iter().zip(&postgres.log) {
        prop_assert_eq!(a, b, "log entry");
    }
    prop_assert_eq!(sqlite, postgres);
    Ok(())
}

/// A call on the `Store` trait, as a step resolved it.
#[derive(Debug)]
enum Call {
    Ingest(Delivery),
    BeginSend(SendIntent),
    FinishSend(String, SendResult),
    ReleaseSend(String),
    SettleAbandoned,
    PruneAll,
}

/// What a call answered, normalised as [`dump`] does.
#[derive(Debug, PartialEq)]
enum Outcome {
    Receipt(kapso_core::model::Receipt),
    Claim(SendClaim),
    Finished(kapso_core::model::Message),
    Released(bool),
    Settled(u64),
    /// How many rows went is not compared: the backends keep event
    /// identities in different tables.
    Pruned,
}

/// A refusal, compared by kind: the messages are each backend's own.
#[derive(Debug, PartialEq)]
struct Refusal(&'static str);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        Refusal(match error {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Internal(_) => "internal",
            StoreError::NotFound(_) => "not found",
            StoreError::OutOfRange(_) => "out of range",
            StoreError::LimitReached(_) => "limit reached",
        })
    }
}

impl Call {
    async fn run(&self, store: &Arc<dyn Store>) -> Result<Outcome, Refusal> {
        Ok(match self {
            Call::Ingest(delivery) => Outcome::Receipt(store.ingest(delivery.clone()).await?),
            Call::BeginSend(intent) => {
                Outcome::Claim(dump::claim(store.begin_send(intent.clone()).await?))
            }
            Call::FinishSend(gateway_id, result) => Outcome::Finished(dump::message(
                store
                    .finish_send(&gateway(gateway_id), result.clone())
                    .await?,
            )),
            Call::ReleaseSend(gateway_id) => {
                Outcome::Released(store.release_send(&gateway(gateway_id)).await?)
            }
            Call::SettleAbandoned => {
                Outcome::Settled(store.settle_abandoned_sends(i64::MAX).await?)
            }
            Call::PruneAll => {
                while store.prune(i64::MAX / 2, 10_000).await? > 0 {}
                Outcome::Pruned
            }
        })
    }
}

/// Turns steps into calls, remembering what earlier steps did.
struct Resolver {
    /// The sends' request time: the clock's, as the settle window needs.
    now: i64,
    deliveries: Vec<Delivery>,
    events: Vec<NewEvent>,
    /// Every send begun, for the dump.
    begun: Vec<String>,
    /// Sends started and neither finished nor released: their owner is still
    /// calling Kapso.
    in_flight: Vec<String>,
}

impl Resolver {
    fn new() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs();
        Self {
            now: i64::try_from(now).expect("a time in range"),
            deliveries: Vec::new(),
            events: Vec::new(),
            begun: Vec::new(),
            in_flight: Vec::new(),
        }
    }

    /// The call step `n` makes, `None` when it refers to nothing.
    fn resolve(&mut self, n: usize, step: &Step) -> Option<Call> {
        let fresh_key = || format!("key-{n}");
        Some(match step {
            Step::Deliver { key, events } => {
                let key = match key {
                    Key::Fresh => Some(fresh_key()),
                    Key::None => None,
                    Key::Reused(nth) => {
                        let keys: Vec<_> = self
                            .deliveries
                            .iter()
                            .filter_map(|d| d.key.clone())
                            .collect();
                        Some(pick(&keys, *nth).cloned().unwrap_or_else(fresh_key))
                    }
                };
                let events: Vec<_> = events.iter().map(EventSpec::event).collect();
                self.events.extend(events.iter().cloned());
                self.delivered(Delivery { key, events })
            }
            Step::Retry { nth } => Call::Ingest(pick(&self.deliveries, *nth)?.clone()),
            Step::Redeliver { nth, keyed } => {
                let event = pick(&self.events, *nth)?.clone();
                let key = keyed.then(fresh_key);
                self.delivered(Delivery {
                    key,
                    events: vec![event],
                })
            }
            Step::BeginSend(spec) => {
                let gateway_id = format!("gw-{n}");
                self.begun.push(gateway_id.clone());
                Call::BeginSend(SendIntent {
                    content: None,
                    gateway_id: gateway(&gateway_id),
                    idempotency_key: spec
                        .key()
                        .map(|key| IdempotencyKey::parse(key).unwrap().unwrap()),
                    fingerprint: spec.fingerprint(),
                    phone_number_id: PhoneNumberId::parse(PHONE_NUMBER_ID).unwrap(),
                    to: Recipient::parse(spec.to()).unwrap(),
                    conversation_id: ConversationId::parse(spec.conversation()),
                    message_type: "text".into(),
                    text: spec.text().into(),
                    reply_to_message_id: None,
                    created_at: self.now,
                })
            }
            Step::FinishSend { nth, result } => {
                let at = index(self.in_flight.len(), *nth)?;
                let gateway_id = self.in_flight.remove(at);
                let result = match result {
                    ResultSpec::Sent { .. } => SendResult::Sent {
                        wamid: result.wamid().unwrap_or_default().into(),
                    },
                    ResultSpec::Failed => {
                        SendResult::Failed(SendFailure::Refused(vec![api_error()]))
                    }
                    ResultSpec::NotTaken => SendResult::Failed(SendFailure::NotTaken {
                        reason: "cannot connect to Kapso".into(),
                    }),
                    ResultSpec::Unknown => SendResult::Unknown,
                };
                Call::FinishSend(gateway_id, result)
            }
            Step::ReleaseSend { nth } => Call::ReleaseSend(pick(&self.in_flight, *nth)?.clone()),
            Step::SettleAbandoned => Call::SettleAbandoned,
            Step::PruneAll => Call::PruneAll,
        })
    }

    fn delivered(&mut self, delivery: Delivery) -> Call {
        self.deliveries.push(delivery.clone());
        Call::Ingest(delivery)
    }

    /// Follows a send's life from what the store answered.
    fn answered(&mut self, call: &Call, outcome: &Outcome) {
        match (call, outcome) {
            (Call::BeginSend(intent), Outcome::Claim(SendClaim::Started(_))) => {
                self.in_flight.push(intent.gateway_id.to_string());
            }
            (Call::ReleaseSend(gateway_id), Outcome::Released(true)) => {
                self.in_flight.retain(|g| g != gateway_id);
            }
            _ => {}
        }
    }
}

fn index(len: usize, nth: usize) -> Option<usize> {
    (len > 0).then(|| nth % len)
}

fn pick<T>(items: &[T], nth: usize) -> Option<&T> {
    index(items.len(), nth).map(|i| &items[i])
}

/// Kapso's refusal of a send.
fn api_error() -> MetaError {
    MetaError {
        code: 131026,
        title: "Message undeliverable".into(),
        message: "Message undeliverable".into(),
        details: String::new(),
    }
}
