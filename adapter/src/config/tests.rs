//! Parsing, defaults, validation and redaction of the adapter configuration.

use super::*;

fn parse(args: &[&str]) -> Result<Config, clap::Error> {
    Config::try_parse_from(std::iter::once("kapso-adapter").chain(args.iter().copied()))
}

#[test]
fn defaults_match_the_documented_values() {
    let config = parse(&["--webhook-secret", "test-secret-not-real"]).unwrap();
    assert_eq!(config.listen_addr, "0.0.0.0:8000".parse().unwrap());
    assert_eq!(config.core_grpc_url, "http://127.0.0.1:50051");
    assert_eq!(config.body_limit_bytes, 1_048_576);
    assert_eq!(config.core_timeout(), Duration::from_secs(5));
    assert_eq!(config.retry_after_secs, 5);
    assert!(!config.log_message_content);
    assert_eq!(config.log_format, LogFormat::Text);
}

#[test]
fn missing_secret_is_refused_naming_the_variable() {
    // Guarded: the variable may be set in the environment running the tests.
    if std::env::var_os("KAPSO_WEBHOOK_SECRET").is_some() {
        return;
    }
    let error = parse(&[]).unwrap_err().to_string();
    assert!(error.contains("KAPSO_WEBHOOK_SECRET"), "{error}");
}

#[test]
fn empty_secret_entry_is_refused_without_echoing_the_value() {
    let error = parse(&["--webhook-secret", "test-secret-not-real,"])
        .unwrap_err()
        .to_string();
    assert!(error.contains("KAPSO_WEBHOOK_SECRET"), "{error}");
    assert!(!error.contains("test-secret-not-real"), "{error}");
}

#[test]
fn rotation_list_keeps_every_secret() {
    let config = parse(&["--webhook-secret", "new-test-secret,old-test-secret"]).unwrap();
    assert_eq!(config.webhook_secret.len(), 2);
}

#[test]
fn debug_of_the_config_redacts_the_secret() {
    let config = parse(&["--webhook-secret", "test-secret-not-real"]).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("test-secret-not-real"));
    assert!(shown.contains("[redacted]"));
}

#[test]
fn log_content_and_format_accept_env_style_values() {
    let config = parse(&[
        "--webhook-secret",
        "s",
        "--log-message-content",
        "true",
        "--log-format",
        "json",
    ])
    .unwrap();
    assert!(config.log_message_content);
    assert_eq!(config.log_format, LogFormat::Json);
}

#[test]
fn help_documents_every_variable() {
    let help = <Config as clap::CommandFactory>::command()
        .render_long_help()
        .to_string();
    for variable in [
        "ADAPTER_LISTEN_ADDR",
        "KAPSO_WEBHOOK_SECRET",
        "CORE_GRPC_URL",
        "ADAPTER_BODY_LIMIT_BYTES",
        "ADAPTER_UNVERIFIED_BODY_BUDGET_BYTES",
        "CORE_TIMEOUT_MS",
        "RETRY_AFTER_SECS",
        "LOG_MESSAGE_CONTENT",
        "LOG_FORMAT",
    ] {
        assert!(help.contains(variable), "{variable} missing from --help");
    }
}

#[test]
fn debug_of_a_full_config_shows_no_secret_value() {
    let dir = tempfile::tempdir().unwrap();
    let pem = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("FAKE-PEM-CONTENTS-{name}")).unwrap();
        path.display().to_string()
    };
    let (ca, cert, key) = (pem("ca.pem"), pem("client.pem"), pem("client.key"));
    let config = parse(&[
        "--webhook-secret",
        "fake-webhook-secret-1,fake-webhook-secret-2",
        "--gateway-api-token",
        "fake-gateway-token",
        "--core-grpc-url",
        "https://core.internal:50051",
        "--core-tls-ca",
        &ca,
        "--core-tls-client-cert",
        &cert,
        "--core-tls-client-key",
        &key,
    ])
    .unwrap();
    let shown = format!("{config:?}");
    for secret in [
        "fake-webhook-secret",
        "fake-gateway-token",
        "FAKE-PEM-CONTENTS",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    assert!(shown.contains("[redacted]"));
    assert!(shown.contains("client.key"), "paths stay visible: {shown}");
}

#[test]
fn a_bad_token_is_refused_without_echoing_it() {
    let error = parse(&["--webhook-secret", "s", "--gateway-api-token", "fake token"])
        .unwrap_err()
        .to_string();
    assert!(error.contains("GATEWAY_API_TOKEN"), "{error}");
    assert!(!error.contains("fake token"), "{error}");
}

#[test]
fn client_certificate_needs_its_key_and_a_ca_and_files_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("any.pem");
    std::fs::write(&file, "FAKE").unwrap();
    let file = file.display().to_string();
    assert!(parse(&["--webhook-secret", "s", "--core-tls-client-cert", &file]).is_err());
    let missing = parse(&[
        "--webhook-secret",
        "s",
        "--core-tls-ca",
        "/nonexistent/ca.pem",
    ])
    .unwrap_err()
    .to_string();
    assert!(missing.contains("CORE_TLS_CA"), "{missing}");
    assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
}

#[test]
fn limits_must_be_positive() {
    for flag in [
        "--max-connections",
        "--max-in-flight",
        "--header-read-timeout-ms",
        "--body-read-timeout-ms",
    ] {
        assert!(
            parse(&["--webhook-secret", "s", flag, "0"]).is_err(),
            "{flag}"
        );
    }
}
