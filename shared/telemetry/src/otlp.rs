//! Exporting spans over OTLP, configured by the standard `OTEL_*` variables.
//!
//! The OpenTelemetry SDK reads most of them itself: `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `_ARG`, `OTEL_BSP_*`,
//! the span limits, and the exporter's endpoint, headers, timeout and
//! compression (`OTEL_EXPORTER_OTLP_[TRACES_]*`). What it leaves to the
//! program is read here: whether to export at all (an endpoint is set,
//! `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER`), the protocol
//! (`OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`) and the process's own default
//! service name when none is given.
//!
//! - `http_client`: the HTTP client of `http/protobuf`, run on the process's runtime.

mod http_client;

use std::time::Duration;

use opentelemetry_otlp::{Protocol as OtlpProtocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// Why the `OTEL_*` variables cannot be used. The process refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("{name}={value:?} is not supported: use `grpc` or `http/protobuf`")]
    Protocol { name: &'static str, value: String },
    #[error("OTEL_TRACES_EXPORTER={0:?} is not supported: use `otlp` or `none`")]
    Exporter(String),
    #[error("{name}={value:?} is not a number of milliseconds")]
    Timeout { name: &'static str, value: String },
    #[error("cannot build the OTLP exporter: {0}")]
    Build(String),
}

/// OTLP's two binary transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC, usually port 4317.
    Grpc,
    /// Protobuf bodies over HTTP `POST /v1/traces`, usually port 4318; the
    /// specification's default.
    HttpProtobuf,
}

/// What the program itself decides from the environment; `None` from
/// [`from_env`](Settings::from_env) means nothing is exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub protocol: Protocol,
    /// Per export request (`OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`, default 10 s).
    pub timeout: Duration,
    /// The environment names the service (`OTEL_SERVICE_NAME`, or `service.name`
    /// in `OTEL_RESOURCE_ATTRIBUTES`); otherwise the process's default applies.
    pub service_named: bool,
}

/// The specification's default export timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Settings {
    /// Reads the variables through `var` (the process's environment in
    /// production, a table in tests). Unset or empty variables count as unset.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Settings>, OtlpError> {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let first = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|name| var(name).map(|value| (name, value.trim().to_owned())))
        };
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match var("OTEL_TRACES_EXPORTER").map(|v| v.trim().to_ascii_lowercase()) {
            None => {}
            Some(exporter) if exporter == "otlp" => {}
            Some(exporter) if exporter == "none" => return Ok(None),
            Some(other) => return Err(OtlpError::Exporter(other)),
        }
        if first([
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ])
        .is_none()
        {
            return Ok(None);
        }
        let protocol = match first([
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ]) {
            None => Protocol::HttpProtobuf,
            Some((_, value)) if value == "grpc" => Protocol::Grpc,
            Some((_, value)) if value == "http/protobuf" => Protocol::HttpProtobuf,
            Some((name, value)) => return Err(OtlpError::Protocol { name, value }),
        };
        let timeout = match first([
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ]) {
            None => DEFAULT_TIMEOUT,
            Some((name, value)) => value
                .parse()
                .map(Duration::from_millis)
                .map_err(|_| OtlpError::Timeout { name, value })?,
        };
        let service_named = var("OTEL_SERVICE_NAME").is_some()
            || var("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|attributes| {
                attributes
                    .split(',')
                    .any(|pair| pair.split('=').next().map(str::trim) == Some("service.name"))
            });
        Ok(Some(Settings {
            protocol,
            timeout,
            service_named,
        }))
    }
}

/// The tracer provider: a batch span processor (its own thread, sized by
/// `OTEL_BSP_*`) in front of the OTLP exporter. Must be called inside a Tokio
/// runtime: both transports run their I/O on it.
pub fn provider(
    settings: &Settings,
    service: &'static str,
) -> Result<SdkTracerProvider, OtlpError> {
    let build = |error: opentelemetry_otlp::ExporterBuildError| OtlpError::Build(error.to_string());
    let exporter = match settings.protocol {
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_protocol(OtlpProtocol::Grpc)
            .build()
            .map_err(build)?,
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(OtlpProtocol::HttpBinary)
            .with_http_client(
                http_client::RuntimeClient::new(settings.timeout)
                    .map_err(|error| OtlpError::Build(error.to_string()))?,
            )
            .build()
            .map_err(build)?,
    };
    // The SDK's detectors read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES;
    // the process's name only fills in when neither names the service.
    let mut resource = Resource::builder();
    if !settings.service_named {
        resource = resource.with_service_name(service);
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Option<Settings>, OtlpError> {
        Settings::from_env(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    const ENDPOINT: (&str, &str) = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        assert_eq!(settings(&[]).unwrap(), None);
        assert_eq!(
            settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]).unwrap(),
            None
        );
        assert_eq!(
            settings(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).unwrap(),
            None
        );
    }

    #[test]
    fn either_endpoint_turns_export_on_with_the_specifications_defaults() {
        for endpoint in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            let on = settings(&[(endpoint, "http://127.0.0.1:4318")])
                .unwrap()
                .unwrap();
            assert_eq!(on.protocol, Protocol::HttpProtobuf);
            assert_eq!(on.timeout, Duration::from_secs(10));
            assert!(!on.service_named);
        }
    }

    #[test]
    fn the_traces_protocol_wins_over_the_general_one() {
        let on = |pairs: &[(&str, &str)]| settings(pairs).unwrap().unwrap().protocol;
        assert_eq!(
            on(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
            Protocol::Grpc
        );
        assert_eq!(
            on(&[
                ENDPOINT,
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ]),
            Protocol::HttpProtobuf
        );
    }

    #[test]
    fn unsupported_values_are_refused_naming_the_variable() {
        let error = settings(&[
            ENDPOINT,
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
            "{error}"
        );
        let error = settings(&[ENDPOINT, ("OTEL_TRACES_EXPORTER", "zipkin")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("OTEL_TRACES_EXPORTER"), "{error}");
        let error = settings(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_TIMEOUT", "5s")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("OTEL_EXPORTER_OTLP_TIMEOUT"), "{error}");
    }

    #[test]
    fn export_can_be_turned_off_with_an_endpoint_set() {
        assert_eq!(
            settings(&[ENDPOINT, ("OTEL_SDK_DISABLED", "true")]).unwrap(),
            None
        );
        assert_eq!(
            settings(&[ENDPOINT, ("OTEL_TRACES_EXPORTER", "none")]).unwrap(),
            None
        );
        assert!(
            settings(&[ENDPOINT, ("OTEL_TRACES_EXPORTER", "otlp")])
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn the_timeout_is_read_in_milliseconds() {
        let on = settings(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500")])
            .unwrap()
            .unwrap();
        assert_eq!(on.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn a_service_named_by_the_environment_keeps_its_name() {
        let named = |pairs: &[(&str, &str)]| settings(pairs).unwrap().unwrap().service_named;
        assert!(named(&[ENDPOINT, ("OTEL_SERVICE_NAME", "edge")]));
        assert!(named(&[
            ENDPOINT,
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod, service.name=edge"
            )
        ]));
        assert!(!named(&[
            ENDPOINT,
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod")
        ]));
    }
}
