//! Acting as Kapso: sign a webhook body and build the headers Kapso sends with
//! it, to test the adapter by hand or from a test suite.
//!
//! The signature is the lowercase hex HMAC-SHA256 of the exact body bytes, keyed
//! with the secret's UTF-8 bytes (never hex-decoded, even when it looks like hex).
//! Sign the bytes you send: re-serialising JSON or dropping a trailing newline
//! changes them and the adapter answers 401.

/// The event type sent when none is given.
pub const DEFAULT_EVENT: &str = "whatsapp.message.received";
/// The payload version current Kapso webhooks send.
pub const PAYLOAD_VERSION: &str = "v2";

/// `X-Webhook-Signature` of `body` under `secret`: the signature the adapter
/// verifies (both are `kapso_signature`).
///
/// # Examples
///
/// ```
/// // RFC 4231, test case 2.
/// let signature = kapso_client::webhook::sign("Jefe", b"what do ya want for nothing?");
/// assert_eq!(signature, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
/// ```
pub fn sign(secret: &str, body: &[u8]) -> String {
    kapso_signature::sign(secret, body)
}

/// The number of items in a batch body: the length of `data[]` (Kapso's v2
/// batch) or of a top-level array (the original service's batch shape).
/// `None` when the body is neither.
///
/// # Examples
///
/// ```
/// use kapso_client::webhook::batch_size;
/// assert_eq!(batch_size(br#"{"batch":true,"data":[{},{}]}"#), Some(2));
/// assert_eq!(batch_size(br#"[{"event_type":"x"}]"#), Some(1));
/// assert_eq!(batch_size(br#"{"message":{}}"#), None);
/// ```
pub fn batch_size(body: &[u8]) -> Option<usize> {
    match serde_json::from_slice::<serde_json::Value>(body).ok()? {
        serde_json::Value::Array(items) => Some(items.len()),
        serde_json::Value::Object(map) => map.get("data")?.as_array().map(Vec::len),
        _ => None,
    }
}

/// One webhook delivery as Kapso would make it.
///
/// # Examples
///
/// ```
/// use kapso_client::webhook::WebhookRequest;
///
/// let body = br#"{"type":"whatsapp.message.received","batch":true,"data":[{},{}]}"#;
/// let request = WebhookRequest::new(body.to_vec()).batch(2);
/// let headers = request.headers("test-secret-not-real");
/// assert!(headers.contains(&("X-Batch-Size", "2".to_string())));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// The exact bytes to send and sign.
    pub body: Vec<u8>,
    /// `X-Webhook-Event`.
    pub event: String,
    /// `X-Idempotency-Key`: Kapso keeps it across retries of one delivery.
    pub idempotency_key: String,
    /// `Some(n)`: a batch of `n` items (`X-Webhook-Batch: true`, `X-Batch-Size: n`).
    pub batch_size: Option<usize>,
}

impl std::fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("body_len", &self.body.len())
            .field("event", &self.event)
            .field("idempotency_key", &self.idempotency_key)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

impl WebhookRequest {
    /// A single (not batched) `whatsapp.message.received` delivery with a fresh
    /// UUID v4 idempotency key.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        WebhookRequest {
            body: body.into(),
            event: DEFAULT_EVENT.to_owned(),
            idempotency_key: uuid::Uuid::new_v4().to_string(),
            batch_size: None,
        }
    }

    /// Set the event type header.
    pub fn event(mut self, event: impl Into<String>) -> Self {
        self.event = event.into();
        self
    }

    /// Reuse an idempotency key, as Kapso does when it retries a delivery.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = key.into();
        self
    }

    /// Mark the delivery as a batch of `size` items.
    pub fn batch(mut self, size: usize) -> Self {
        self.batch_size = Some(size);
        self
    }

    /// The headers, in the order Kapso documents them, signed with `secret`.
    pub fn headers(&self, secret: &str) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("Content-Type", "application/json".to_owned()),
            ("X-Webhook-Event", self.event.clone()),
            ("X-Webhook-Signature", sign(secret, &self.body)),
            ("X-Idempotency-Key", self.idempotency_key.clone()),
            ("X-Webhook-Payload-Version", PAYLOAD_VERSION.to_owned()),
        ];
        if let Some(size) = self.batch_size {
            headers.push(("X-Webhook-Batch", "true".to_owned()));
            headers.push(("X-Batch-Size", size.to_string()));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with Python's hmac module:
    // hmac.new(b"test-secret-not-real", b'{"message":{"id":"wamid.1"}}\n', hashlib.sha256).hexdigest()
    const BODY: &[u8] = b"{\"message\":{\"id\":\"wamid.1\"}}\n";
    const BODY_SIGNATURE: &str = "090d6dc139b4523421eeda18a59edae5261be8cd0f8a01e0027bf672a7d7f019";

    fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn single_delivery_headers() {
        let request = WebhookRequest::new(BODY).event("whatsapp.message.sent");
        let headers = request.headers("test-secret-not-real");
        assert_eq!(
            header(&headers, "X-Webhook-Signature"),
            Some(BODY_SIGNATURE)
        );
        assert_eq!(
            header(&headers, "X-Webhook-Event"),
            Some("whatsapp.message.sent")
        );
        assert_eq!(header(&headers, "X-Webhook-Payload-Version"), Some("v2"));
        assert_eq!(header(&headers, "Content-Type"), Some("application/json"));
        assert_eq!(header(&headers, "X-Webhook-Batch"), None);
        assert_eq!(header(&headers, "X-Batch-Size"), None);
        let key = header(&headers, "X-Idempotency-Key").unwrap();
        assert_eq!(uuid::Uuid::parse_str(key).unwrap().get_version_num(), 4);
    }

    #[test]
    fn batch_headers_and_given_key() {
        let request = WebhookRequest::new(BODY).batch(3).idempotency_key("k-1");
        let headers = request.headers("test-secret-not-real");
        assert_eq!(header(&headers, "X-Webhook-Batch"), Some("true"));
        assert_eq!(header(&headers, "X-Batch-Size"), Some("3"));
        assert_eq!(header(&headers, "X-Idempotency-Key"), Some("k-1"));
    }

    #[test]
    fn each_request_gets_a_fresh_key() {
        assert_ne!(
            WebhookRequest::new(BODY).idempotency_key,
            WebhookRequest::new(BODY).idempotency_key
        );
    }

    #[test]
    fn batch_size_counts_data_or_array_items() {
        assert_eq!(batch_size(br#"{"data":[1,2,3]}"#), Some(3));
        assert_eq!(batch_size(b"[]"), Some(0));
        assert_eq!(batch_size(b"not json"), None);
        assert_eq!(batch_size(br#"{"data":{}}"#), None);
    }
}
