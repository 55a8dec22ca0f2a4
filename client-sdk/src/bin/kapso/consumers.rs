//! `kapso consumer ...`: where named consumers stand and moving them, and the
//! connection notices `kapso watch` prints while the core is away.

use std::process::ExitCode;

use kapso_client::{Client, Connection};
use tokio::sync::watch;

use crate::cli::ConsumerCommand;
use crate::messaging::print_line;

pub async fn run(client: &Client, command: ConsumerCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConsumerCommand::Seek { name, sequence } => seek(client, &name, sequence).await,
        ConsumerCommand::Reset { name } => seek(client, &name, 0).await,
        ConsumerCommand::List => list(client).await,
    }
}

async fn seek(client: &Client, name: &str, sequence: u64) -> anyhow::Result<ExitCode> {
    let position = client.seek_consumer(name, sequence).await?;
    print_line(&serde_json::json!({ "consumer": name, "sequence": position }))?;
    Ok(ExitCode::SUCCESS)
}

async fn list(client: &Client) -> anyhow::Result<ExitCode> {
    for consumer in client.list_consumers().await? {
        print_line(&serde_json::json!({
            "consumer": consumer.consumer,
            "sequence": consumer.sequence,
            "lag": consumer.lag,
        }))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr when a watch loses the core and when it is back, so a
/// terminal (or a supervisor's log) shows why no events arrive. Stdout stays
/// events only.
pub fn report_connection(mut connection: watch::Receiver<Connection>) {
    tokio::spawn(async move {
        let mut reconnecting = false;
        while connection.changed().await.is_ok() {
            let now = connection.borrow_and_update().clone();
            match now {
                Connection::Reconnecting(why) if !reconnecting => {
                    reconnecting = true;
                    eprintln!("kapso: core unavailable ({why}); reconnecting");
                }
                Connection::Connected if reconnecting => {
                    reconnecting = false;
                    eprintln!("kapso: connected to the core again");
                }
                _ => {}
            }
        }
    });
}
