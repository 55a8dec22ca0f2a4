//! The commit mark every core's readers wait on, fed by three sources:
//!
//! - the own writer, after each commit that appended (before answering);
//! - `LISTEN kapso_events` on a dedicated connection: every writer `NOTIFY`s
//!   inside its transaction, which PostgreSQL delivers at commit, so events
//!   ingested through another core wake streams here promptly. A notification
//!   is only a wake-up: the mark is then read from the log itself, because any
//!   role that can connect can `NOTIFY` anything, and a forged payload taken
//!   as the mark would push it past the log and silence every live stream;
//! - a poll of `max(sequence)` every second, so a lost notification, a listener
//!   reconnect or a notification queue overflow never stalls readers for long.
//!
//! Any of them is safe to publish: appends are serialized until commit (see
//! [`writer`](super::writer)), so every sequence at or below a committed one is
//! visible. The mark only moves forward.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;

use super::rows;
use super::tls::MakeRustls;

/// The notification channel writers notify and listeners listen on.
pub(super) const CHANNEL: &str = "kapso_events";

/// How often the mark is re-read from the database regardless of notifications.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Pause before reconnecting a lost listener.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Raises the mark to `sequence` if that is higher; wakes readers only then.
pub(super) fn publish(mark: &watch::Sender<u64>, sequence: u64) {
    mark.send_if_modified(|current| {
        let moved = sequence > *current;
        if moved {
            *current = sequence;
        }
        moved
    });
}

/// Listens for other cores' commits until aborted, reconnecting as needed.
pub(super) fn spawn_listener(
    config: tokio_postgres::Config,
    tls: MakeRustls,
    mark: Arc<watch::Sender<u64>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(error) = listen(&config, tls.clone(), &mark).await {
                tracing::warn!(%error, "postgres commit listener lost; reconnecting");
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    })
}

/// One listening session: returns when its connection ends.
async fn listen(
    config: &tokio_postgres::Config,
    tls: MakeRustls,
    mark: &watch::Sender<u64>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls).await?;
    // The connection delivers notifications only to whoever polls it.
    let (notified, mut notifications) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if notified.send(()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "postgres listener connection failed");
                    break;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Commits that landed before LISTEN took effect sent nothing we could hear.
    let highest = client
        .prepare("SELECT coalesce(max(sequence), 0) FROM events")
        .await?;
    loop {
        let max: i64 = client.query_one(&highest, &[]).await?.try_get(0)?;
        publish(mark, u64::try_from(max).unwrap_or(0));
        if notifications.recv().await.is_none() {
            break;
        }
        // One read answers every notification that arrived meanwhile.
        while notifications.try_recv().is_ok() {}
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// Re-reads the highest committed sequence every [`POLL_EVERY`] until aborted.
pub(super) fn spawn_poller(pool: Pool, mark: Arc<watch::Sender<u64>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(POLL_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let conn = match pool.get().await {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "cannot poll committed sequence");
                    continue;
                }
            };
            match rows::committed_sequence(&conn).await {
                Ok(sequence) => publish(&mark, sequence),
                Err(error) => tracing::warn!(%error, "cannot poll committed sequence"),
            }
        }
    })
}
