//! The HTTP client of OTLP `http/protobuf`.
//!
//! The SDK's batch span processor exports from a thread of its own, outside
//! any Tokio runtime, where an async client cannot open a socket. Each request
//! is therefore run as a task on the runtime the client was built in, and the
//! processor's thread only waits for its answer.

use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError};
use std::time::Duration;

/// Largest collector answer read: an OTLP answer is a few bytes, or a short
/// error message.
const MAX_RESPONSE: usize = 64 * 1024;

#[derive(Debug)]
pub struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RuntimeClient {
    /// A client whose requests give up after `timeout`. Must be called inside a Tokio runtime.
    pub fn new(timeout: Duration) -> Result<RuntimeClient, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // A collector has no reason to redirect span data elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(RuntimeClient {
            client,
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

#[async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let mut response = client.execute(request).await?;
            let mut answer = http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = std::mem::take(response.headers_mut());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, HttpError>(answer.body(Bytes::from(body))?)
        });
        task.await?
    }
}
