//! Slow and abusive clients over real sockets: header and body read timeouts,
//! load shedding past `ADAPTER_MAX_IN_FLIGHT`, and the connection cap.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::{Adapter, BODY, Behaviour, FakeCore, WEBHOOK, config, signed, spawn_adapter};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Longest any step may take before the test calls it hung.
const PATIENCE: Duration = Duration::from_secs(5);

async fn adapter(behaviour: Behaviour, extra: &[&str]) -> (FakeCore, Adapter) {
    let core = FakeCore::new(behaviour);
    let addr = core.serve(None).await;
    let adapter = spawn_adapter(config(&format!("http://{addr}"), extra)).await;
    (core, adapter)
}

/// Reads until the peer closes or `PATIENCE` runs out; returns what arrived.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the adapter kept the connection open");
    received
}

async fn metrics(adapter: &Adapter) -> String {
    reqwest::get(adapter.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Polls `/metrics` until it shows `series` (connection counters are updated as the connection task ends).
async fn wait_for_metric(adapter: &Adapter, series: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = metrics(adapter).await;
        if text.contains(series) {
            return;
        }
        assert!(Instant::now() < deadline, "{series} missing from:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_sending_headers_slowly_is_disconnected_after_the_timeout() {
    let (_core, adapter) = adapter(Behaviour::Stores, &["--header-read-timeout-ms", "300"]).await;
    let mut stream = TcpStream::connect(adapter.addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"POST /api/whatsapp/webhook HTTP/1.1\r\nHost: adapter\r\n")
        .await
        .unwrap();
    let received = read_until_closed(&mut stream).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed too early: {waited:?}"
    );
    assert!(
        !received.starts_with(b"HTTP/1.1 2"),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    wait_for_metric(
        &adapter,
        r#"kapso_webhook_connections_closed_total{reason="header_timeout"} 1"#,
    )
    .await;
}

#[tokio::test]
async fn a_body_that_trickles_gets_408() {
    let (core, adapter) = adapter(Behaviour::Stores, &["--body-read-timeout-ms", "300"]).await;
    let mut stream = TcpStream::connect(adapter.addr).await.unwrap();
    let head = format!(
        "POST {WEBHOOK} HTTP/1.1\r\nHost: adapter\r\nContent-Type: application/json\r\n\
         X-Webhook-Signature: {}\r\nContent-Length: {}\r\n\r\n",
        kapso_signature::sign(support::SECRET, BODY),
        BODY.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // One byte, then silence: well under any per-chunk timeout, never complete.
    stream.write_all(&BODY[..1]).await.unwrap();
    let received = read_until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(core.calls().is_empty(), "nothing reaches the core");
    wait_for_metric(
        &adapter,
        r#"kapso_webhook_requests_total{outcome="body_timeout"} 1"#,
    )
    .await;
}

#[tokio::test]
async fn beyond_max_in_flight_a_request_is_shed_at_once_with_retry_after() {
    let (core, adapter) = adapter(
        Behaviour::Hangs,
        &["--max-in-flight", "1", "--core-timeout-ms", "10000"],
    )
    .await;
    let http = reqwest::Client::new();
    let url = adapter.url(WEBHOOK);
    let first = tokio::spawn(signed(&http, &url, BODY).send());
    let deadline = Instant::now() + PATIENCE;
    while core.calls().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first request never reached the core"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let started = Instant::now();
    let second = signed(&http, &url, BODY).send().await.unwrap();
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shed, not queued"
    );
    assert_eq!(second.headers()["retry-after"], "3");
    assert_eq!(
        core.calls().len(),
        1,
        "the shed request never reached the core"
    );
    // Requests outside the webhook route are not limited.
    let health = http.get(adapter.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    wait_for_metric(
        &adapter,
        r#"kapso_webhook_requests_total{outcome="shed"} 1"#,
    )
    .await;
    first.abort();
}

/// Sends a request on `stream` and reads the start of the answer (keeping the connection open).
async fn get_health(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: adapter\r\n\r\n")
        .await
        .unwrap();
    let mut chunk = [0u8; 1024];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
        .await
        .expect("an answer or a close")
        .unwrap_or(0);
    chunk[..n].to_vec()
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_a_freed_slot_is_reused() {
    let (_core, adapter) = adapter(Behaviour::Stores, &["--max-connections", "1"]).await;
    let mut first = connect(adapter.addr).await;
    assert!(get_health(&mut first).await.starts_with(b"HTTP/1.1 200"));

    let mut second = connect(adapter.addr).await;
    let _ = second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: adapter\r\n\r\n")
        .await;
    assert!(
        read_until_closed(&mut second).await.is_empty(),
        "closed without an answer"
    );

    drop(first);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut third = connect(adapter.addr).await;
        if get_health(&mut third).await.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = metrics_over_fresh_connection(&adapter).await;
    assert!(
        text.contains(r#"kapso_webhook_connections_closed_total{reason="over_limit"}"#),
        "{text}"
    );
}

/// `/metrics` while the cap is 1: retries until the slot is free.
async fn metrics_over_fresh_connection(adapter: &Adapter) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(response) = reqwest::get(adapter.url("/metrics")).await {
            return response.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "metrics never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn silent_sockets_lose_their_slots_after_the_timeout() {
    let (_core, adapter) = adapter(
        Behaviour::Stores,
        &["--max-connections", "4", "--header-read-timeout-ms", "500"],
    )
    .await;
    // Every slot taken: three sockets that say nothing, one that stops after the HTTP/2 preface.
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(connect(adapter.addr).await);
    }
    let mut h2 = connect(adapter.addr).await;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    silent.push(h2);

    for stream in &mut silent {
        read_until_closed(stream).await;
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        // A refused attempt (slot not yet returned) is a closed socket, not a failure.
        if let Ok(answer) = reqwest::get(adapter.url("/healthz")).await {
            assert_eq!(answer.status(), StatusCode::OK);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the silent sockets kept their slots"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_idle_http2_connection_gives_its_slot_back() {
    let (_core, adapter) = adapter(
        Behaviour::Stores,
        &["--max-connections", "1", "--header-read-timeout-ms", "500"],
    )
    .await;
    // A client that keeps its HTTP/2 connection open (and idle) for as long as it lives.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .pool_idle_timeout(None)
        .build()
        .unwrap();
    let answer = h2.get(adapter.url("/healthz")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);

    let deadline = Instant::now() + PATIENCE;
    loop {
        // A fresh client each time: a new connection, refused while the slot is held.
        let other = reqwest::Client::new();
        if let Ok(answer) = other.get(adapter.url("/healthz")).send().await {
            assert_eq!(answer.status(), StatusCode::OK);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the idle HTTP/2 connection kept the only slot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(h2);
}

#[tokio::test]
async fn unverified_bodies_beyond_the_budget_are_shed_until_it_is_returned() {
    const BUDGET: usize = 64 * 1024;
    let (_core, adapter) = adapter(
        Behaviour::Stores,
        &[
            "--body-limit-bytes",
            "65536",
            "--unverified-body-budget-bytes",
            "65536",
        ],
    )
    .await;
    // A signed body declaring the whole budget, of which only a byte is sent.
    let head = r#"{"message":{"id":"wamid.hold","type":"text","kapso":{"direction":"inbound"}},"padding":""#;
    let padding = BUDGET - head.len() - 2;
    let held = format!("{head}{}\"}}", "x".repeat(padding)).into_bytes();
    assert_eq!(held.len(), BUDGET);
    let mut holder = connect(adapter.addr).await;
    let request_head = format!(
        "POST {WEBHOOK} HTTP/1.1\r\nHost: adapter\r\nContent-Type: application/json\r\n\
         X-Webhook-Event: whatsapp.message.received\r\n\
         X-Webhook-Signature: {}\r\nContent-Length: {}\r\n\r\n",
        kapso_signature::sign(support::SECRET, &held),
        held.len()
    );
    holder.write_all(request_head.as_bytes()).await.unwrap();
    holder.write_all(&held[..1]).await.unwrap();

    let http = reqwest::Client::new();
    let url = adapter.url(WEBHOOK);
    let deadline = Instant::now() + PATIENCE;
    let shed = loop {
        let answer = signed(&http, &url, BODY).send().await.unwrap();
        if answer.status() == StatusCode::SERVICE_UNAVAILABLE {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "a request beyond the budget was read: {}",
            answer.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(shed.headers()["retry-after"], "3");

    // The rest of the held body arrives: verified, stored, its budget returned.
    holder.write_all(&held[1..]).await.unwrap();
    let mut answer = [0u8; 12];
    tokio::time::timeout(PATIENCE, holder.read_exact(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let after = signed(&http, &url, BODY).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::OK);
    wait_for_metric(&adapter, r#"kapso_webhook_requests_total{outcome="shed"}"#).await;
}

/// Opens a chunked webhook request and sends one chunk of `len` bytes.
async fn chunked_request(addr: SocketAddr, len: usize) -> TcpStream {
    let mut stream = connect(addr).await;
    let head = format!(
        "POST {WEBHOOK} HTTP/1.1\r\nHost: adapter\r\nTransfer-Encoding: chunked\r\n\r\n{len:x}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![b' '; len]).await.unwrap();
    stream.write_all(b"\r\n").await.unwrap();
    stream
}

/// Ends a chunked request and reads the status line of its answer.
async fn finish_chunked(stream: &mut TcpStream) -> Vec<u8> {
    // A shed request may be answered before its end is written: the write may fail.
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut status = [0u8; 12];
    match tokio::time::timeout(PATIENCE, stream.read_exact(&mut status)).await {
        Ok(Ok(_)) => status.to_vec(),
        Ok(Err(_)) => Vec::new(),
        Err(_elapsed) => panic!("no answer"),
    }
}

#[tokio::test]
async fn chunked_bodies_count_against_the_budget_as_they_arrive() {
    let (_core, adapter) = adapter(
        Behaviour::Stores,
        &[
            "--body-limit-bytes",
            "65536",
            "--unverified-body-budget-bytes",
            "65536",
        ],
    )
    .await;
    // No Content-Length: the first chunk alone is counted, more than half the budget.
    let mut first = chunked_request(adapter.addr, 40_000).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut second = chunked_request(adapter.addr, 40_000).await;
        let status = finish_chunked(&mut second).await;
        if status == b"HTTP/1.1 503" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a chunk beyond the budget was buffered: {}",
            String::from_utf8_lossy(&status)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Unsigned, so 401; either way its bytes are returned to the budget.
    assert_eq!(finish_chunked(&mut first).await, b"HTTP/1.1 401");
    let mut third = chunked_request(adapter.addr, 40_000).await;
    assert_eq!(finish_chunked(&mut third).await, b"HTTP/1.1 401");
}
