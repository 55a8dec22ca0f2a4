//! The shared `Store` suite (`store_suite`) run against every backend.
//!
//! One `#[tokio::test]` per case and backend; a backend only provides
//! `make_store()`, which prepares an empty database and opens stores on it.

/// Generates one test per case for the backend module it is invoked in.
/// `each_store` cases take a fresh store; `reopening` cases take a closure
/// that opens the same database again.
macro_rules! store_tests {
    (each_store: [$($case:ident),* $(,)?], reopening: [$($reopen:ident),* $(,)?] $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let db = make_store();
                crate::store_suite::$case(db.open()).await;
            }
        )*
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $reopen() {
                let db = make_store();
                crate::store_suite::$reopen(&|| db.open()).await;
            }
        )*
    };
}

/// Every case, for every backend.
macro_rules! all_store_tests {
    () => {
        store_tests! {
            each_store: [
                duplicate_delivery_is_stored_once,
                a_status_delivery_under_a_seen_key_changes_nothing,
                a_delivery_without_events_claims_its_key,
                redelivery_under_new_key_is_stored_once,
                a_duplicate_event_takes_no_sequence,
                a_large_batch_keeps_its_order_and_stores_a_repeat_once,
                concurrent_identical_deliveries_store_once,
                events_get_increasing_sequences_and_replay_in_order,
                events_after_filters_by_type_conversation_and_phone,
                status_never_moves_backwards,
                failed_is_terminal_and_keeps_meta_errors,
                status_history_keeps_every_status_once,
                concurrent_statuses_of_new_messages_make_one_row_each,
                out_of_order_statuses_converge,
                inbound_message_is_received_and_listed_in_conversation,
                conversation_is_remembered_with_last_inbound,
                a_contacts_conversations_are_found_on_any_number_or_one,
                a_conversation_learns_its_contact_from_a_later_status,
                a_batch_updates_each_conversation_as_its_events_would,
                an_inbound_message_completes_a_row_a_status_created,
                a_later_status_completes_a_row_a_status_created,
                committed_watch_advances_after_ingest,
                concurrent_ingests_are_group_committed_and_all_readable,
                begin_send_claims_key_once_concurrently,
                same_key_different_request_is_refused,
                status_before_send_response_is_merged,
                unknown_outcome_is_settled_by_status_webhook,
                a_wrongly_settled_send_is_corrected_by_the_send_responses,
                a_send_answered_with_another_wamid_than_guessed_leaves_the_guess_known,
                a_delivery_of_statuses_ends_as_its_events_would_one_by_one,
                message_lookup_by_wamid_gateway_id_and_key,
                failed_send_is_terminal_and_keeps_api_errors,
                a_send_kapso_never_took_keeps_its_reason_and_no_meta_error,
                a_released_send_frees_its_key_and_a_settled_one_stays,
                abandoned_sends_are_settled_as_unknown_and_fresh_ones_left_alone,
                ack_only_moves_forward,
                seek_moves_a_consumer_anywhere_up_to_the_head,
                an_ack_beyond_the_log_is_out_of_range,
                resuming_from_a_pruned_position_is_out_of_range,
                new_consumers_beyond_the_bound_are_refused,
                check_writable_succeeds_on_a_healthy_store,
                a_received_message_keeps_its_content,
                a_received_message_fills_the_content_of_a_row_a_status_created,
                a_send_keeps_the_content_it_began_with,
                a_status_of_a_message_never_seen_has_no_content,
            ],
            reopening: [survives_reopen],
        }
    };
}

mod sqlite {
    use std::sync::Arc;

    use kapso_core::store::Store;
    use kapso_core::store::sqlite::SqliteStore;

    /// A database file in its own temporary directory, removed after the test.
    struct TestDb {
        _dir: tempfile::TempDir,
        url: String,
    }

    impl TestDb {
        fn open(&self) -> Arc<dyn Store> {
            Arc::new(SqliteStore::open(&self.url).expect("open sqlite store"))
        }
    }

    fn make_store() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("gateway.db").display());
        TestDb { _dir: dir, url }
    }

    all_store_tests!();

    /// Not a correctness case: measures end-to-end single-event ingest rate.
    /// `cargo test -p kapso-core --release --test store -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "throughput measurement"]
    async fn single_event_ingest_throughput() {
        const DELIVERIES: usize = 20_000;
        const CLIENTS: usize = 256;
        let db = make_store();
        let store = db.open();
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for i in (client..DELIVERIES).step_by(CLIENTS) {
                        let event = crate::store_suite::received(
                            &format!("wamid.HBgL{i:012}"),
                            &format!("conv-{}", i % 97),
                            "Hello, I would like to know where my order is",
                            1_700_000_000,
                        );
                        let key = format!("7f0c2a9e-{i:012}");
                        let delivery = crate::store_suite::delivery(Some(&key), vec![event]);
                        store.ingest(delivery).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let rate = DELIVERIES as f64 / started.elapsed().as_secs_f64();
        println!("{DELIVERIES} single-event deliveries: {rate:.0}/s");
    }
}

mod postgres {
    use std::sync::Arc;

    use kapso_core::store::Store;
    use kapso_core::store::postgres::PostgresStore;

    use crate::postgres_db::TestDatabase;
    use crate::store_suite::any_id;

    /// A fresh database on the test server, dropped after the test.
    struct TestDb(TestDatabase);

    impl TestDb {
        fn open(&self) -> Arc<dyn Store> {
            let url = self.0.url.clone();
            // The suite opens stores synchronously; the tests run on a
            // multi-thread runtime, where a worker may block on a future.
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async move {
                    Arc::new(
                        PostgresStore::open(&url)
                            .await
                            .expect("open postgres store"),
                    ) as Arc<dyn Store>
                })
            })
        }
    }

    fn make_store() -> TestDb {
        TestDb(tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(TestDatabase::create())
        }))
    }

    all_store_tests!();

    /// Single received messages queued together go out in one pipelined run;
    /// one the database refuses (PostgreSQL's text holds no NUL) must fail
    /// alone, and every other one be stored once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_delivery_among_queued_ones_fails_alone() {
        use crate::store_suite::{all_events, delivery, received};
        const N: usize = 40;
        let db = make_store();
        let store = db.open();
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let store = Arc::clone(&store);
                let text = if i == N / 2 { "nul \0 byte" } else { "hi" };
                let event = received(&format!("wamid.{i}"), "conv-1", text, 100);
                tokio::spawn(async move {
                    store
                        .ingest(delivery(Some(&format!("k{i}")), vec![event]))
                        .await
                })
            })
            .collect();
        let mut refused = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            if task.await.unwrap().is_err() {
                refused.push(i);
            }
        }
        assert_eq!(refused, [N / 2]);
        assert_eq!(all_events(&store).await.len(), N - 1);
        assert!(
            store
                .message(&any_id(&format!("wamid.{}", N / 2)))
                .await
                .unwrap()
                .is_none()
        );
    }

    /// Status deliveries queued together go out in one pipelined run and
    /// commit as one batch, even when each depends on the one before it: the
    /// first creates the message, the next two find it. A batch that failed
    /// would be rerun request by request, three commits instead of one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_statuses_of_one_message_commit_as_one_batch() {
        use std::sync::Mutex;
        use std::time::Duration;

        use kapso_core::status::MessageStatus;

        use crate::store_suite::{delivery, received, status};
        let db = make_store();
        let store = db.open();
        let commits = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&commits);
        store.observe_commits(Arc::new(move |requests| {
            seen.lock().unwrap().push(requests)
        }));

        // Hold the log's table so that the writer's first batch waits in it
        // while the statuses queue up behind.
        let (blocker, connection) = tokio_postgres::connect(&db.0.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        blocker
            .batch_execute("BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let ingest = |key: &str, event| {
            let store = Arc::clone(&store);
            let delivery = delivery(Some(key), vec![event]);
            tokio::spawn(async move { store.ingest(delivery).await })
        };
        let mut tasks = vec![ingest("first", received("wamid.in", "conv-1", "hi", 100))];
        for (n, name) in ["sent", "delivered", "read"].into_iter().enumerate() {
            // Queued in this order: each waits long enough to be behind the last.
            tokio::time::sleep(Duration::from_millis(100)).await;
            tasks.push(ingest(name, status("wamid.out", name, 200 + n as i64)));
        }
        // Ample time for the last to be queued, even on a busy machine.
        tokio::time::sleep(Duration::from_millis(300)).await;
        blocker.batch_execute("COMMIT").await.unwrap();
        for task in tasks {
            task.await.unwrap().unwrap();
        }

        assert_eq!(commits.lock().unwrap().last(), Some(&3), "{commits:?}");
        let message = store.message(&any_id("wamid.out")).await.unwrap().unwrap();
        assert_eq!(message.status, MessageStatus::Read);
        assert_eq!(message.status_history.len(), 3);
    }

    /// Any role can `NOTIFY kapso_events`; a forged payload must not become
    /// the commit mark (it would run past the log and silence live streams):
    /// the mark follows what is really committed, here by another core.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_forged_notification_does_not_move_the_commit_mark() {
        use std::time::Duration;

        use kapso_core::model::{Claim, Receipt};

        use crate::store_suite::{delivery, received};
        let db = make_store();
        let store = db.open();
        let other_core = db.open();
        let mut mark = store.committed();
        let ingest_elsewhere = |key: &'static str| {
            let other_core = Arc::clone(&other_core);
            async move {
                let event = received(&format!("wamid.{key}"), "conv-1", "hi", 100);
                match other_core.ingest(delivery(Some(key), vec![event])).await {
                    Ok(Receipt::Stored(claims)) => match claims[..] {
                        [Claim::New { sequence }] => sequence,
                        _ => panic!("a new event gets a sequence"),
                    },
                    other => panic!("a new delivery is stored: {other:?}"),
                }
            }
        };
        // Another core's commit reaching this one: its listener is listening.
        let first = ingest_elsewhere("k1").await;
        tokio::time::timeout(Duration::from_secs(30), mark.wait_for(|m| *m >= first))
            .await
            .expect("the first commit reaches this core")
            .unwrap();

        let (forger, connection) = tokio_postgres::connect(&db.0.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        forger
            .batch_execute("NOTIFY kapso_events, '9223372036854775807'")
            .await
            .unwrap();
        let second = ingest_elsewhere("k2").await;
        // The forged notification was sent first, so it is heard first.
        let reached =
            tokio::time::timeout(Duration::from_secs(30), mark.wait_for(|m| *m >= second))
                .await
                .expect("the second commit reaches this core")
                .map(|m| *m)
                .unwrap();
        assert_eq!(reached, second, "the mark is the log's, not the payload's");
        assert_eq!(*store.committed().borrow(), second);
    }

    /// The writer's queue is bounded: while the writer waits (here on the log
    /// lock another session holds), requests beyond the bound are refused at
    /// once as unavailable, and every queued one is served afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_write_queue_sheds_requests_as_unavailable() {
        use std::time::Duration;

        use futures::StreamExt as _;
        use futures::stream::FuturesUnordered;
        use kapso_core::store::StoreError;

        use crate::store_suite::{delivery, received};
        /// The writer's queue bound (postgres/writer.rs).
        const QUEUE: usize = 4_096;
        /// The log lock's advisory key (postgres/writer.rs).
        const LOG_LOCK: i64 = 0x6b61_7073_6f00_0001;
        let db = make_store();
        let store = db.open();
        let (blocker, connection) = tokio_postgres::connect(&db.0.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        blocker
            .execute("SELECT pg_advisory_lock($1)", &[&LOG_LOCK])
            .await
            .unwrap();
        let ingest = |i: usize| {
            let store = Arc::clone(&store);
            let event = received(&format!("wamid.{i}"), "conv-1", "hi", 100);
            async move {
                store
                    .ingest(delivery(Some(&format!("k{i}")), vec![event]))
                    .await
            }
        };
        let held = tokio::spawn(ingest(0));
        // The writer is in its batch, waiting for the lock.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let waiting: i64 = blocker
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the writer never waited"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut queued: FuturesUnordered<_> = (1..=QUEUE + 1).map(ingest).collect();
        // Polling them all once queues them: the last one does not fit.
        let first = futures::poll!(queued.next());
        assert!(
            matches!(
                first,
                std::task::Poll::Ready(Some(Err(StoreError::Unavailable(_))))
            ),
            "{first:?}"
        );
        blocker
            .execute("SELECT pg_advisory_unlock($1)", &[&LOG_LOCK])
            .await
            .unwrap();
        held.await.unwrap().unwrap();
        let mut stored = 0;
        while let Some(outcome) = queued.next().await {
            outcome.unwrap();
            stored += 1;
        }
        assert_eq!(stored, QUEUE, "every queued request is served");
    }

    /// Until the shared suite covers them: pruning and the consumer listing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prune_removes_old_events_and_keys_but_keeps_messages() {
        use crate::store_suite::{all_events, delivery, received};
        let db = make_store();
        let store = db.open();
        for i in 0..3 {
            let event = received(&format!("wamid.{i}"), "conv-1", "hi", 100);
            store
                .ingest(delivery(Some(&format!("k{i}")), vec![event]))
                .await
                .unwrap();
        }
        assert_eq!(store.prune(0, 10).await.unwrap(), 0, "nothing that old");
        let future_ms = i64::MAX / 2;
        assert_eq!(
            store.prune(future_ms, 2).await.unwrap(),
            4,
            "bounded per table: events (with their identities) and delivery keys"
        );
        assert_eq!(store.prune(future_ms, 10).await.unwrap(), 2);
        assert!(all_events(&store).await.is_empty());
        assert!(store.message(&any_id("wamid.1")).await.unwrap().is_some());

        store.ack("crm", 2).await.unwrap();
        store.ack("billing", 1).await.unwrap();
        assert_eq!(
            store.consumer_positions().await.unwrap(),
            [("billing".to_owned(), 1), ("crm".to_owned(), 2)]
        );
    }
}

/// `sslmode` against the test server, whose certificate is self-signed for
/// `localhost` (the distribution's snakeoil certificate; `ssl = on`).
mod postgres_tls {
    use kapso_core::store::postgres::PostgresStore;
    use tokio_postgres::NoTls;

    use crate::postgres_db::TestDatabase;

    /// The server's own certificate, which is its own CA.
    async fn server_certificate() -> String {
        let (client, connection) = tokio_postgres::connect(&crate::postgres_db::admin_url(), NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let row = client.query_one("SHOW ssl_cert_file", &[]).await.unwrap();
        row.get(0)
    }

    fn with(url: &str, params: &str) -> String {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}{params}")
    }

    /// Whether the store's connections to `db` are encrypted.
    async fn encrypted(db: &TestDatabase) -> bool {
        let (client, connection) = tokio_postgres::connect(&crate::postgres_db::admin_url(), NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.datname = $1 AND a.application_name = 'kapso-core'",
                &[&db.name],
            )
            .await
            .unwrap();
        row.get::<_, Option<bool>>(0)
            .expect("the store holds connections")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn require_encrypts_and_disable_does_not() {
        let db = TestDatabase::create().await;
        let store = PostgresStore::open(&with(&db.url, "sslmode=require"))
            .await
            .unwrap();
        assert!(encrypted(&db).await);
        drop(store);
        let db = TestDatabase::create().await;
        let store = PostgresStore::open(&with(&db.url, "sslmode=disable"))
            .await
            .unwrap();
        assert!(!encrypted(&db).await);
        drop(store);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_modes_check_the_chain_and_verify_full_the_host_name() {
        let root = server_certificate().await;
        let db = TestDatabase::create().await;
        let ca = format!("sslrootcert={root}");

        let chain_only = with(&db.url, &format!("sslmode=verify-ca&{ca}"));
        let store = PostgresStore::open(&chain_only).await.unwrap();
        assert!(encrypted(&db).await);
        drop(store);

        let by_name = with(
            &db.url.replace("127.0.0.1", "localhost"),
            &format!("sslmode=verify-full&{ca}"),
        );
        PostgresStore::open(&by_name).await.unwrap();

        let wrong_name = with(&db.url, &format!("sslmode=verify-full&{ca}"));
        let error = PostgresStore::open(&wrong_name)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("not valid for name"), "{error}");

        let dir = tempfile::tempdir().unwrap();
        let other_ca = dir.path().join("other-ca.pem");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let other = params
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        std::fs::write(&other_ca, other.pem()).unwrap();
        let untrusted = with(
            &db.url,
            &format!("sslmode=verify-ca&sslrootcert={}", other_ca.display()),
        );
        let error = PostgresStore::open(&untrusted)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("UnknownIssuer") || error.contains("unknown issuer"),
            "{error}"
        );

        let missing = with(&db.url, "sslmode=verify-full");
        let error = PostgresStore::open(&missing).await.unwrap_err().to_string();
        assert!(error.contains("sslrootcert"), "{error}");
    }
}
