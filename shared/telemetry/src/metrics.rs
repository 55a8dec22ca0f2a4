//! The Prometheus exposition both processes serve on `GET /metrics`: each
//! keeps its own registry and series; this is how a registry is built, turned
//! into text and answered.

use prometheus_client::registry::Registry;

/// The OpenMetrics text format's content type, which Prometheus asks for.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry whose series are all named `{prefix}_...`; `None`: each series
/// carries its full name.
pub fn registry(prefix: Option<&str>) -> Registry {
    match prefix {
        Some(prefix) => Registry::with_prefix(prefix),
        None => Registry::default(),
    }
}

/// The OpenMetrics text of `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::with_capacity(4096);
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, registry) {
        // Only a collector's own formatting can fail; the rest is still worth serving.
        tracing::error!(%error, "cannot encode metrics");
    }
    text
}

/// The answer to `GET /metrics`: 200, [`CONTENT_TYPE`], the text of `registry`.
pub fn response(registry: &Registry) -> http::Response<String> {
    let mut response = http::Response::new(encode(registry));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(CONTENT_TYPE),
    );
    response
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[test]
    fn a_prefixed_registry_names_its_series_and_ends_the_exposition() {
        let mut registry = registry(Some("kapso_test"));
        let counter = Counter::<u64>::default();
        registry.register("things", "Things counted", counter.clone());
        counter.inc();
        let response = response(&registry);
        assert_eq!(response.headers()[http::header::CONTENT_TYPE], CONTENT_TYPE);
        let text = response.body();
        assert!(text.contains("kapso_test_things_total 1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
