//! Who may call the core, over real sockets: bearer tokens on the gateway's
//! services (health and reflection stay open), TLS, and client certificates.
//! Tokens and certificates here are fake, made for the test.

use crate::process;

use std::net::SocketAddr;
use std::path::Path;

use clap::Parser as _;
use kapso_core::Config;
use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::ingest_client::IngestClient;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Duration, timeout};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request};
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::{ServerReflectionRequest, server_reflection_request};

const TOKENS: &str = "fake-token-alpha,fake-token-beta";
const LIMIT: Duration = Duration::from_secs(10);

struct App {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl App {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        timeout(LIMIT, &mut self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// A core on 127.0.0.1:0 over a fresh database; `extra` are more flags.
async fn spawn_app(extra: &[&str]) -> App {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gw.db").display());
    let mut args = vec![
        "kapso-core",
        "--database-url",
        &url,
        "--metrics-addr",
        "off",
        "--kapso-api-base-url",
        "http://127.0.0.1:9/unused",
    ];
    args.extend_from_slice(extra);
    let config = Config::try_parse_from(args).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(kapso_core::run(config, listener, async {
        let _ = stopped.await;
    }));
    App {
        addr,
        stop: Some(stop),
        task,
        _dir: dir,
    }
}

async fn plain(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(LIMIT)
        .timeout(LIMIT)
        .connect()
        .await
        .unwrap()
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

/// The code of an empty IngestEvents and of a GetMessage for an unknown id.
async fn codes(channel: &Channel, token: Option<&str>) -> (Code, Code) {
    let ingest = IngestClient::new(channel.clone())
        .ingest_events(with_token(pb::IngestEventsRequest::default(), token))
        .await;
    let get = MessagingClient::new(channel.clone())
        .get_message(with_token(
            pb::GetMessageRequest {
                message_id: "wamid.unknown".into(),
            },
            token,
        ))
        .await;
    let code = |r: Result<_, tonic::Status>| r.map_or_else(|s| s.code(), |_| Code::Ok);
    (code(ingest.map(drop)), code(get.map(drop)))
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let app = spawn_app(&["--gateway-api-tokens", TOKENS]).await;
    let channel = plain(app.addr).await;

    let missing = IngestClient::new(channel.clone())
        .ingest_events(pb::IngestEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(
        missing.message().contains("missing"),
        "{}",
        missing.message()
    );
    assert_eq!(
        codes(&channel, None).await,
        (Code::Unauthenticated, Code::Unauthenticated)
    );

    let wrong = IngestClient::new(channel.clone())
        .ingest_events(with_token(
            pb::IngestEventsRequest::default(),
            Some("fake-token-gamma"),
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert!(wrong.message().contains("invalid"), "{}", wrong.message());
    app.stop().await;
}

#[tokio::test]
async fn any_configured_token_is_accepted() {
    let app = spawn_app(&["--gateway-api-tokens", TOKENS]).await;
    let channel = plain(app.addr).await;
    for token in ["fake-token-alpha", "fake-token-beta"] {
        assert_eq!(
            codes(&channel, Some(token)).await,
            (Code::Ok, Code::NotFound)
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn health_and_reflection_stay_open() {
    let app = spawn_app(&["--gateway-api-tokens", TOKENS]).await;
    let channel = plain(app.addr).await;
    // The first health probe runs just after start: until then the service is
    // unknown (NOT_FOUND), never UNAUTHENTICATED.
    let serving = async {
        loop {
            let health = HealthClient::new(channel.clone())
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "kapso.gateway.v1.Ingest".into(),
                })
                .await;
            match health {
                Ok(reply) => return reply.into_inner().status(),
                Err(status) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert_eq!(
        timeout(LIMIT, serving).await.unwrap(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    assert!(format!("{answer:?}").contains("kapso.gateway.v1.Messaging"));
    app.stop().await;
}

#[tokio::test]
async fn without_tokens_every_call_is_open() {
    let app = spawn_app(&[]).await;
    let channel = plain(app.addr).await;
    assert_eq!(codes(&channel, None).await, (Code::Ok, Code::NotFound));
    app.stop().await;
}

/// A CA and a certificate it signed for `name`, as PEM (certificate, key).
struct Pki {
    ca_pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki {
            ca_pem: issuer.pem(),
            issuer,
        }
    }

    fn issue(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

async fn tls_channel(
    addr: SocketAddr,
    ca_pem: &str,
    identity: Option<(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(LIMIT)
        .timeout(LIMIT)
        .connect()
        .await
}

/// Whether an empty IngestEvents call over a connection to `addr` succeeds.
async fn call_succeeds(channel: Result<Channel, tonic::transport::Error>) -> bool {
    let Ok(channel) = channel else {
        return false;
    };
    IngestClient::new(channel)
        .ingest_events(pb::IngestEventsRequest::default())
        .await
        .is_ok()
}

#[tokio::test]
async fn tls_clients_connect_and_plain_ones_are_refused() {
    let pki = Pki::new();
    let (cert, key) = pki.issue("localhost");
    let files = tempfile::tempdir().unwrap();
    let cert = write(files.path(), "cert.pem", &cert);
    let key = write(files.path(), "key.pem", &key);
    let app = spawn_app(&["--tls-cert", &cert, "--tls-key", &key]).await;

    assert!(call_succeeds(tls_channel(app.addr, &pki.ca_pem, None).await).await);
    let plain = Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect_timeout(LIMIT)
        .timeout(LIMIT)
        .connect()
        .await;
    assert!(!call_succeeds(plain).await);
    app.stop().await;
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_its_certificates_get_in() {
    let pki = Pki::new();
    let clients = Pki::new();
    let (cert, key) = pki.issue("localhost");
    let files = tempfile::tempdir().unwrap();
    let cert = write(files.path(), "cert.pem", &cert);
    let key = write(files.path(), "key.pem", &key);
    let client_ca = write(files.path(), "clients.pem", &clients.ca_pem);
    let app = spawn_app(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &client_ca,
    ])
    .await;

    assert!(!call_succeeds(tls_channel(app.addr, &pki.ca_pem, None).await).await);
    let stranger = Pki::new().issue("client");
    assert!(!call_succeeds(tls_channel(app.addr, &pki.ca_pem, Some(stranger)).await).await);
    let known = clients.issue("client");
    assert!(call_succeeds(tls_channel(app.addr, &pki.ca_pem, Some(known)).await).await);
    app.stop().await;
}

#[tokio::test]
async fn help_and_config_errors_never_print_the_database_password_or_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.db");
    let url = "postgres://kapso:fake-db-password@127.0.0.1:9/kapso";
    let (status, help) = process::run_to_exit(&db, &["--help"], &[("DATABASE_URL", url)]).await;
    assert!(status.is_some_and(|s| s.success()), "{help}");
    assert!(help.contains("DATABASE_URL"), "{help}");
    assert!(!help.contains("fake-db-password"), "{help}");

    let (status, error) = process::run_to_exit(
        &db,
        &[],
        &[("GATEWAY_API_TOKENS", "fake-token-one,fake token two")],
    )
    .await;
    assert!(status.is_some_and(|s| !s.success()), "{error}");
    assert!(error.contains("GATEWAY_API_TOKENS"), "{error}");
    assert!(!error.contains("fake"), "{error}");
}

#[tokio::test]
async fn the_binary_answers_version() {
    let dir = tempfile::tempdir().unwrap();
    let (status, output) =
        process::run_to_exit(&dir.path().join("gw.db"), &["--version"], &[]).await;
    assert!(status.is_some_and(|s| s.success()), "{output}");
    assert_eq!(
        output.trim(),
        format!("kapso-core {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn a_database_url_of_neither_backend_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.db");
    for url in ["mysql://kapso:fake-db-password@h/kapso", "kapso.db"] {
        let (status, error) = process::run_to_exit(&db, &[], &[("DATABASE_URL", url)]).await;
        assert!(status.is_some_and(|s| !s.success()), "{error}");
        assert!(error.contains("sqlite://FILE"), "{error}");
        assert!(error.contains("postgres://"), "{error}");
        assert!(!error.contains("fake-db-password"), "{error}");
    }
    assert!(!dir.path().join("kapso.db").exists());
}

#[tokio::test]
async fn postgres_refusing_the_role_shows_the_servers_reason() {
    let dir = tempfile::tempdir().unwrap();
    let url = "postgres://no_such_kapso_role@127.0.0.1:5432/postgres";
    let (status, error) =
        process::run_to_exit(&dir.path().join("gw.db"), &[], &[("DATABASE_URL", url)]).await;
    assert!(status.is_some_and(|s| !s.success()), "{error}");
    assert!(
        error.contains(r#"role "no_such_kapso_role" does not exist (SQLSTATE 28000)"#),
        "{error}"
    );

    let url = "postgres://postgres@127.0.0.1:5432/no_such_kapso_database";
    let (status, error) =
        process::run_to_exit(&dir.path().join("gw.db"), &[], &[("DATABASE_URL", url)]).await;
    assert!(status.is_some_and(|s| !s.success()), "{error}");
    assert!(
        error.contains(r#"database "no_such_kapso_database" does not exist (SQLSTATE 3D000)"#),
        "{error}"
    );
}

#[tokio::test]
async fn postgres_not_listening_yet_is_retried_then_given_up_on() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("postgres://postgres@{closed}/postgres");
    let (status, error) = process::run_to_exit(
        &dir.path().join("gw.db"),
        &["--database-start-timeout-secs", "1"],
        &[("DATABASE_URL", &url), ("RUST_LOG", "warn")],
    )
    .await;
    assert!(status.is_some_and(|s| !s.success()), "{error}");
    assert!(error.contains("retrying until it is up"), "{error}");
    assert!(error.contains("refused connections for 1s"), "{error}");
}

#[tokio::test]
async fn two_different_kapso_keys_are_refused_naming_both_variables() {
    let dir = tempfile::tempdir().unwrap();
    let (status, error) = process::run_to_exit(
        &dir.path().join("gw.db"),
        &[],
        &[
            ("KAPSO_API_TOKEN", "fake-key-one"),
            ("KAPSO_API_KEY", "fake-key-two"),
        ],
    )
    .await;
    assert!(status.is_some_and(|s| !s.success()), "{error}");
    assert!(
        error.contains("KAPSO_API_TOKEN and KAPSO_API_KEY"),
        "{error}"
    );
    assert!(!error.contains("fake"), "{error}");
}

#[tokio::test]
async fn without_tokens_the_binary_serves_beyond_loopback_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.db");
    let (status, error) =
        process::run_to_exit(&db, &[], &[("CORE_LISTEN_ADDR", "0.0.0.0:0")]).await;
    assert!(status.is_some_and(|s| !s.success()), "{error}");
    assert!(error.contains("GATEWAY_API_TOKENS"), "{error}");
    assert!(error.contains("GATEWAY_ALLOW_UNAUTHENTICATED"), "{error}");

    let every_interface = |addr: SocketAddr| format!("0.0.0.0:{}", addr.port());
    let allowed = process::Core::start_listening(
        &db,
        &[("GATEWAY_ALLOW_UNAUTHENTICATED", "true")],
        every_interface,
    )
    .await;
    drop(allowed);
    let with_tokens = process::Core::start_listening(
        &db,
        &[("GATEWAY_API_TOKENS", "fake-token-alpha")],
        every_interface,
    )
    .await;
    assert_eq!(
        codes(&with_tokens.channel().await, Some("fake-token-alpha")).await,
        (Code::Ok, Code::NotFound)
    );
}

#[tokio::test]
async fn each_token_reaches_only_the_methods_of_its_scopes() {
    let app = spawn_app(&[
        "--gateway-api-tokens",
        "fake-adapter=ingest,fake-reader=read,fake-sender=send,fake-all",
    ])
    .await;
    let channel = plain(app.addr).await;
    let denied = |result: Result<Code, tonic::Status>, scope: &str| match result {
        Err(status) => {
            assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
            assert!(status.message().contains(scope), "{status:?}");
        }
        Ok(code) => panic!("allowed ({code:?}), expected a refusal naming {scope}"),
    };
    let send = |token| async move {
        MessagingClient::new(plain(app.addr).await)
            .send_text(with_token(pb::SendTextRequest::default(), Some(token)))
            .await
            .map(|_| Code::Ok)
    };

    assert_eq!(
        codes(&channel, Some("fake-all")).await,
        (Code::Ok, Code::NotFound)
    );
    let (ingest, get) = codes(&channel, Some("fake-adapter")).await;
    assert_eq!((ingest, get), (Code::Ok, Code::PermissionDenied));
    let get = MessagingClient::new(channel.clone())
        .get_message(with_token(
            pb::GetMessageRequest::default(),
            Some("fake-adapter"),
        ))
        .await
        .map(|_| Code::Ok);
    denied(get, "`read`");
    denied(send("fake-adapter").await, "`send`");

    let ingest = IngestClient::new(channel.clone())
        .ingest_events(with_token(
            pb::IngestEventsRequest::default(),
            Some("fake-reader"),
        ))
        .await
        .map(|_| Code::Ok);
    denied(ingest, "`ingest`");
    assert_eq!(codes(&channel, Some("fake-reader")).await.1, Code::NotFound);
    denied(send("fake-reader").await, "`send`");

    let (ingest, get) = codes(&channel, Some("fake-sender")).await;
    assert_eq!(
        (ingest, get),
        (Code::PermissionDenied, Code::PermissionDenied)
    );
    let sent = send("fake-sender").await.unwrap_or_else(|s| s.code());
    assert_ne!(sent, Code::PermissionDenied);
    assert_ne!(sent, Code::Unauthenticated);
    app.stop().await;
}
