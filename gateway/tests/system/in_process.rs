//! The adapter and a real core in one process, as `kapso-gateway` runs them:
//! webhooks reach the core through its in-process link, internal services
//! through its gRPC port. The link must promise what the network hop promises.

use crate::support;

use std::time::Duration;

use clap::Parser as _;
use kapso_adapter::core_client::CoreClient;
use kapso_gateway_proto::v1::GetMessageRequest;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use reqwest::StatusCode;
use serde_json::Value;
use support::{Adapter, BODY, SECRET, WEBHOOK, config, signed};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A core on 127.0.0.1:0 and an adapter linked to it in process.
struct Gateway {
    adapter: Adapter,
    core_addr: std::net::SocketAddr,
    stop_core: oneshot::Sender<()>,
    core: JoinHandle<anyhow::Result<()>>,
}

async fn spawn_gateway(database_url: &str, core_flags: &[&str], adapter_flags: &[&str]) -> Gateway {
    let core_config = kapso_core::Config::try_parse_from(
        [
            "kapso-core",
            "--database-url",
            database_url,
            "--kapso-api-base-url",
            "http://127.0.0.1:9/unused",
        ]
        .iter()
        .chain(core_flags),
    )
    .unwrap();
    let core = kapso_core::Core::open(core_config).await.unwrap();
    // The core's configured URL is never used: calls go through the link.
    let adapter_config = config("http://127.0.0.1:9", adapter_flags);
    let link = CoreClient::in_process(core.link(), &adapter_config);
    assert_eq!(link.target(), "in-process");

    let core_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let core_addr = core_listener.local_addr().unwrap();
    let (stop_core, stopped) = oneshot::channel::<()>();
    let core = tokio::spawn(core.serve(core_listener, async {
        let _ = stopped.await;
    }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(kapso_adapter::run_with_core(
        adapter_config,
        link,
        listener,
        std::future::pending(),
    ));
    Gateway {
        adapter: Adapter { addr, task },
        core_addr,
        stop_core,
        core,
    }
}

async fn deliver(gateway: &Gateway) -> (StatusCode, Value) {
    let response = signed(&reqwest::Client::new(), &gateway.adapter.url(WEBHOOK), BODY)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn stored_text(core_addr: std::net::SocketAddr) -> String {
    let mut messaging = MessagingClient::connect(format!("http://{core_addr}"))
        .await
        .unwrap();
    let request = GetMessageRequest {
        message_id: "wamid.1".into(),
    };
    messaging
        .get_message(request)
        .await
        .unwrap()
        .into_inner()
        .text
}

#[tokio::test]
async fn a_delivery_through_the_link_is_stored_once_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let gateway = spawn_gateway(&database_url, &[], &[]).await;

    let (status, body) = deliver(&gateway).await;
    assert_eq!((status, body["events"].as_u64()), (StatusCode::OK, Some(1)));
    let (status, body) = deliver(&gateway).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Already processed");
    // Internal services still reach the core on its own port.
    assert_eq!(stored_text(gateway.core_addr).await, "hola");

    // Every holder of the store gone (the link is in the adapter's task):
    // one core per database file.
    gateway.adapter.task.abort();
    let _ = gateway.adapter.task.await;
    let _ = gateway.stop_core.send(());
    gateway.core.await.unwrap().unwrap();
    let reopened = spawn_gateway(&database_url, &[], &[]).await;
    assert_eq!(stored_text(reopened.core_addr).await, "hola");
    let (status, body) = deliver(&reopened).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Already processed");
}

#[tokio::test]
async fn the_link_goes_through_the_cores_token_check() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let tokens = ["--gateway-api-tokens", "fake-token-a"];

    let without = spawn_gateway(&database_url, &tokens, &[]).await;
    let (status, _) = deliver(&without).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "refused: not stored"
    );
    // One core per database file: the first lets go of it before the next.
    without.adapter.task.abort();
    let _ = without.adapter.task.await;
    let _ = without.stop_core.send(());
    without.core.await.unwrap().unwrap();

    let with = spawn_gateway(
        &database_url,
        &tokens,
        &["--gateway-api-token", "fake-token-a"],
    )
    .await;
    let (status, body) = deliver(&with).await;
    assert_eq!((status, body["events"].as_u64()), (StatusCode::OK, Some(1)));
}

#[tokio::test]
async fn readiness_asks_the_core_through_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let gateway = spawn_gateway(&database_url, &[], &[]).await;
    let client = reqwest::Client::new();
    // Ready once the core's first health probe has found the store writable.
    for _ in 0..100 {
        let response = client
            .get(gateway.adapter.url("/readyz"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz never answered 200 through the in-process link");
}

/// The `kapso-gateway` binary as a child process; killed on drop.
struct GatewayProcess {
    child: std::process::Child,
    webhook: String,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Longest wait for the binary to serve or to exit.
const PROCESS_LIMIT: Duration = Duration::from_secs(30);

fn free_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// `kapso-gateway` on free loopback ports over a database in `dir`; `env` adds
/// or overrides variables.
fn gateway_command(dir: &std::path::Path, env: &[(&str, &str)]) -> (std::process::Command, String) {
    let adapter = free_port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kapso-gateway"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KAPSO_WEBHOOK_SECRET", SECRET)
        .env("ADAPTER_LISTEN_ADDR", adapter.to_string())
        .env("CORE_LISTEN_ADDR", free_port().to_string())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("gateway.db").display()),
        )
        .env("CORE_METRICS_ADDR", "off")
        .env("ADAPTER_METRICS_ADDR", "off")
        .env("KAPSO_API_BASE_URL", "http://127.0.0.1:9/unused")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    (command, format!("http://{adapter}{WEBHOOK}"))
}

/// Starts the binary and waits until its adapter answers `/readyz` with 200.
async fn start_gateway_process(dir: &std::path::Path, env: &[(&str, &str)]) -> GatewayProcess {
    let (mut command, webhook) = gateway_command(dir, env);
    let child = command
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start kapso-gateway");
    let process = GatewayProcess { child, webhook };
    let ready = process.webhook.replace(WEBHOOK, "/readyz");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PROCESS_LIMIT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "kapso-gateway did not become ready"
        );
        let answer = client.get(&ready).send().await;
        if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
            return process;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the binary to its exit (killed after `PROCESS_LIMIT`): whether it
/// exited with success (`None`: still running) and its output.
async fn gateway_exit(dir: &std::path::Path, env: &[(&str, &str)]) -> (Option<bool>, String) {
    let (mut command, _) = gateway_command(dir, env);
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start kapso-gateway");
    let deadline = tokio::time::Instant::now() + PROCESS_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.success());
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (status, text)
}

#[tokio::test]
async fn the_binary_refuses_an_open_core_beyond_loopback_and_never_quotes_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (exited, output) = gateway_exit(dir.path(), &[("CORE_LISTEN_ADDR", "0.0.0.0:0")]).await;
    assert_eq!(exited, Some(false), "{output}");
    assert!(output.contains("GATEWAY_API_TOKENS"), "{output}");
    assert!(output.contains("GATEWAY_ALLOW_UNAUTHENTICATED"), "{output}");

    let (exited, output) = gateway_exit(
        dir.path(),
        &[("GATEWAY_API_TOKENS", "fake-token,fake token")],
    )
    .await;
    assert_eq!(exited, Some(false), "{output}");
    assert!(output.contains("GATEWAY_API_TOKENS"), "{output}");
    assert!(!output.contains("fake"), "{output}");

    let allowed = start_gateway_process(
        dir.path(),
        &[
            ("CORE_LISTEN_ADDR", "0.0.0.0:0"),
            ("GATEWAY_ALLOW_UNAUTHENTICATED", "true"),
        ],
    )
    .await;
    drop(allowed);
}

#[tokio::test]
async fn the_binarys_adapter_uses_the_first_token_that_may_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_gateway_process(
        dir.path(),
        &[("GATEWAY_API_TOKENS", "fake-reader=read,fake-adapter=ingest")],
    )
    .await;
    let response = signed(&reqwest::Client::new(), &gateway.webhook, BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(gateway);

    let (exited, output) = gateway_exit(
        dir.path(),
        &[("GATEWAY_API_TOKENS", "fake-reader=read+send")],
    )
    .await;
    assert_eq!(exited, Some(false), "{output}");
    assert!(output.contains("`ingest`"), "{output}");
    assert!(!output.contains("fake"), "{output}");
}

/// Runs a binary with `args` and no environment: its status and output.
fn run_binary(binary: &str, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let output = std::process::Command::new(binary)
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run binary");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn both_binaries_answer_version() {
    let adapter = support::kapso_adapter_beside(env!("CARGO_BIN_EXE_kapso-gateway"));
    for (binary, name) in [
        (env!("CARGO_BIN_EXE_kapso-gateway"), "kapso-gateway"),
        (adapter.to_str().unwrap(), "kapso-adapter"),
    ] {
        let (status, stdout, stderr) = run_binary(binary, &["--version"]);
        assert!(status.success(), "{name}: {stderr}");
        assert_eq!(
            stdout.trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION")),
            "{stderr}"
        );
    }
}

#[test]
fn the_binary_refuses_an_unknown_flag() {
    let (status, _, stderr) = run_binary(env!("CARGO_BIN_EXE_kapso-gateway"), &["--no-such-flag"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unexpected argument '--no-such-flag'"),
        "{stderr}"
    );
}

#[test]
fn help_into_a_closed_pipe_exits_without_a_panic() {
    let (reader, writer) = std::io::pipe().unwrap();
    // Closed before the binary starts: its every write to stdout fails (EPIPE).
    drop(reader);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kapso-gateway"))
        .arg("-h")
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        output.status.code().is_some_and(|code| code < 101),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_binary_takes_every_setting_as_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = free_port();
    let core = free_port();
    let database = dir.path().join("flags.db");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_kapso-gateway"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .args(["--webhook-secret", SECRET])
        .args(["--adapter-listen-addr", &adapter.to_string()])
        .args(["--core-listen-addr", &core.to_string()])
        .args([
            "--database-url",
            &format!("sqlite://{}", database.display()),
        ])
        .args(["--metrics-addr", "off"])
        .args(["--kapso-api-base-url", "http://127.0.0.1:9/unused"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start kapso-gateway");
    let process = GatewayProcess {
        webhook: format!("http://{adapter}{WEBHOOK}"),
        child,
    };
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PROCESS_LIMIT;
    let response = loop {
        assert!(tokio::time::Instant::now() < deadline, "not serving");
        if let Ok(response) = signed(&client, &process.webhook, BODY).send().await {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Signed with the flag's secret, stored in the flag's database, read back
    // from the flag's core address.
    assert_eq!(response.status(), StatusCode::OK);
    assert!(database.exists());
    assert!(!stored_text(core).await.is_empty());
}
