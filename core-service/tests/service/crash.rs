//! A core killed with SIGKILL mid-ingest loses nothing it acknowledged: every
//! delivery that got an OK reply is in the log after a restart, exactly once,
//! and re-sending every delivery afterwards stores each event exactly once.

use crate::process;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::ingest_client::IngestClient;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use process::{Core, received};
use tokio::time::timeout;
use tonic::transport::Channel;

const TASKS: usize = 32;
const CALL: Duration = Duration::from_secs(5);

fn delivery(key: &str) -> pb::IngestEventsRequest {
    pb::IngestEventsRequest {
        delivery_key: key.into(),
        events: vec![received(&format!("wamid.{key}"))],
        payload_version: "v2".into(),
    }
}

/// How often each wamid appears in the whole log.
async fn log_counts(channel: Channel) -> HashMap<String, usize> {
    let mut stream = MessagingClient::new(channel)
        .watch_events(pb::WatchEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut counts = HashMap::new();
    // The log is replayed first; a quiet half second means it is all here.
    while let Ok(next) = timeout(Duration::from_millis(500), stream.message()).await {
        let Some(event) = next.unwrap() else { break };
        let wamid = event.message.map(|m| m.id).unwrap_or_default();
        *counts.entry(wamid).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_deliveries_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.db");
    let mut core = Core::start(&db, &[]).await;
    let channel = core.channel().await;

    let sent = Arc::new(Mutex::new(Vec::<String>::new()));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let drivers: Vec<_> = (0..TASKS)
        .map(|task| {
            let (channel, sent, acked) = (channel.clone(), sent.clone(), acked.clone());
            tokio::spawn(async move {
                let mut client = IngestClient::new(channel);
                for n in 0.. {
                    let key = format!("d-{task}-{n}");
                    sent.lock().unwrap().push(key.clone());
                    match timeout(CALL, client.ingest_events(delivery(&key))).await {
                        Ok(Ok(_)) => acked.lock().unwrap().push(key),
                        // The core is gone: this one may or may not be stored.
                        _ => return,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    core.kill();
    for driver in drivers {
        timeout(Duration::from_secs(10), driver)
            .await
            .expect("a driver hung after the kill")
            .unwrap();
    }
    let sent = sent.lock().unwrap().clone();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > TASKS,
        "too few deliveries before the kill: {}",
        acked.len()
    );

    let core = Core::start(&db, &[]).await;
    let counts = log_counts(core.channel().await).await;
    for key in &acked {
        assert_eq!(
            counts.get(&format!("wamid.{key}")),
            Some(&1),
            "{key} acknowledged but not stored once"
        );
    }
    assert!(
        counts.values().all(|&n| n == 1),
        "an event is in the log twice"
    );

    // Kapso retries whatever it got no 200 for, and may retry the rest too.
    let mut client = IngestClient::new(core.channel().await);
    for key in &sent {
        timeout(CALL, client.ingest_events(delivery(key)))
            .await
            .unwrap()
            .unwrap();
    }
    let counts = log_counts(core.channel().await).await;
    assert_eq!(counts.len(), sent.len());
    for key in &sent {
        assert_eq!(
            counts.get(&format!("wamid.{key}")),
            Some(&1),
            "{key} not stored exactly once"
        );
    }
}

/// One core per SQLite file: a second one started on a file another core is
/// using refuses to start, naming the file and the process that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_core_on_the_same_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.db");
    let first = Core::start(&db, &[]).await;

    let (status, stderr) = Core::start_refused(&db).await;
    assert!(!status.success(), "{status:?}");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.pid())), "{stderr}");

    // The first one serves on, and once it is gone the file is free again.
    let mut first = first;
    first.kill();
    let _second = Core::start(&db, &[]).await;
}
