//! What the adapter sends the core, over real sockets: the bearer token, the
//! trace context, and TLS (with and without a client certificate).

use crate::support;

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use reqwest::StatusCode;
use support::{BODY, Behaviour, FakeCore, WEBHOOK, config, signed, spawn_adapter};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn deliver(adapter: &support::Adapter) -> reqwest::Response {
    signed(&reqwest::Client::new(), &adapter.url(WEBHOOK), BODY)
        .header("traceparent", TRACEPARENT)
        .header("x-request-id", "req-from-kapso-1")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_token_goes_to_the_core_as_a_bearer_header() {
    let core = FakeCore::new(Behaviour::RequiresToken("fake-token-right"));
    let addr = core.serve(None).await;
    let adapter = spawn_adapter(config(
        &format!("http://{addr}"),
        &["--gateway-api-token", "fake-token-right"],
    ))
    .await;
    assert_eq!(deliver(&adapter).await.status(), StatusCode::OK);
    let calls = core.calls();
    assert_eq!(
        calls[0].metadata["authorization"],
        "Bearer fake-token-right"
    );
}

#[tokio::test]
async fn a_token_the_core_refuses_is_503_with_retry_after() {
    let core = FakeCore::new(Behaviour::RequiresToken("fake-token-right"));
    let addr = core.serve(None).await;
    for extra in [&["--gateway-api-token", "fake-token-wrong"][..], &[]] {
        let adapter = spawn_adapter(config(&format!("http://{addr}"), extra)).await;
        let response = deliver(&adapter).await;
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{extra:?}"
        );
        assert_eq!(response.headers()["retry-after"], "3");
    }
}

#[tokio::test]
async fn request_id_and_trace_context_reach_the_core_and_the_response() {
    let core = FakeCore::new(Behaviour::Stores);
    let addr = core.serve(None).await;
    let adapter = spawn_adapter(config(&format!("http://{addr}"), &[])).await;
    let response = deliver(&adapter).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "req-from-kapso-1");
    let metadata = &core.calls()[0].metadata;
    assert_eq!(metadata["x-request-id"], "req-from-kapso-1");
    let sent = metadata["traceparent"].to_str().unwrap();
    assert!(
        sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && sent.ends_with("-01"),
        "{sent}"
    );

    // Without them, both are generated, and the request id is echoed.
    let plain = signed(&reqwest::Client::new(), &adapter.url(WEBHOOK), BODY)
        .send()
        .await
        .unwrap();
    let generated = plain.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 32);
    let metadata = &core.calls()[1].metadata;
    assert_eq!(metadata["x-request-id"], generated.as_str());
    assert!(
        metadata["traceparent"]
            .to_str()
            .unwrap()
            .contains(&generated),
        "a generated request id is the trace id"
    );
}

/// A CA, and a certificate it signed for 127.0.0.1, as PEM.
struct Pki {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki { issuer }
    }

    /// (certificate, key) for `name`.
    fn issue(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn ca_pem(&self) -> String {
        self.issuer.pem()
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn tls_to_the_core_with_and_without_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (server_cert, server_key) = pki.issue("127.0.0.1");
    let (client_cert, client_key) = pki.issue("kapso-adapter");
    let ca = write(dir.path(), "ca.pem", &pki.ca_pem());
    let client_cert = write(dir.path(), "client.pem", &client_cert);
    let client_key = write(dir.path(), "client.key", &client_key);

    // Server TLS only.
    let core = FakeCore::new(Behaviour::Stores);
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(&server_cert, &server_key));
    let addr = core.serve(Some(tls)).await;
    let url = format!("https://{addr}");
    let adapter = spawn_adapter(config(&url, &["--core-tls-ca", &ca])).await;
    assert_eq!(deliver(&adapter).await.status(), StatusCode::OK);

    // mTLS: the core requires a client certificate signed by the CA.
    let core = FakeCore::new(Behaviour::Stores);
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&server_cert, &server_key))
        .client_ca_root(Certificate::from_pem(pki.ca_pem()));
    let addr = core.serve(Some(tls)).await;
    let url = format!("https://{addr}");
    let with_cert = spawn_adapter(config(
        &url,
        &[
            "--core-tls-ca",
            &ca,
            "--core-tls-client-cert",
            &client_cert,
            "--core-tls-client-key",
            &client_key,
        ],
    ))
    .await;
    assert_eq!(deliver(&with_cert).await.status(), StatusCode::OK);
    let without_cert = spawn_adapter(config(&url, &["--core-tls-ca", &ca])).await;
    assert_eq!(
        deliver(&without_cert).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        core.calls().len(),
        1,
        "only the certified adapter got through"
    );
}

#[tokio::test]
async fn url_scheme_and_ca_must_agree_before_anything_binds() {
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.pem", &Pki::new().ca_pem());
    let https_without_ca = config("https://127.0.0.1:1", &[]);
    assert!(https_without_ca.validate().is_err());
    let ca_without_https = config("http://127.0.0.1:1", &["--core-tls-ca", &ca]);
    assert!(ca_without_https.validate().is_err());
    assert!(
        config("https://127.0.0.1:1", &["--core-tls-ca", &ca])
            .validate()
            .is_ok()
    );
}
