//! A fresh PostgreSQL database per test, dropped afterwards.
//!
//! Uses the server named by `KAPSO_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust auth). A server that
//! cannot be reached fails the test: the PostgreSQL backend is not optional.

use tokio_postgres::NoTls;

/// The administrative connection used to create and drop test databases.
pub fn admin_url() -> String {
    std::env::var("KAPSO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// An empty database of its own; dropped (connections and all) with this value.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Creates `kapso_test_<random>` on the test server.
    pub async fn create() -> TestDatabase {
        let name = format!("kapso_test_{}", uuid::Uuid::new_v4().simple());
        let client = admin().await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        TestDatabase {
            url: url_for(&name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async context (or inside a runtime that must not
        // block): a thread with its own small runtime does the drop.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let client = admin().await;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// The URL of database `name` on the test server.
fn url_for(name: &str) -> String {
    let admin = admin_url();
    // Replace the path (the database) of the admin URL, keeping any query.
    let (base, query) = admin
        .split_once('?')
        .map_or((admin.as_str(), ""), |(b, q)| (b, q));
    let authority_end = base
        .find("://")
        .map(|scheme| scheme + 3)
        .and_then(|start| base[start..].find('/').map(|slash| start + slash))
        .unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    url
}

async fn admin() -> tokio_postgres::Client {
    let url = admin_url();
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for these tests and is not reachable at {url} \
                 (default 127.0.0.1:5432; set KAPSO_TEST_POSTGRES_URL): {e}"
            )
        });
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
