//! `webhook::parse` on arbitrary bodies, as single and as batch deliveries:
//! never panics, and only a body that is valid JSON can parse. "Valid" is
//! syntax: a number too large for an f64 (`1E999`) is still JSON, and the
//! gateway stores the bytes exactly as sent, so the oracle must not judge range.

#![no_main]

use kapso_adapter::webhook::{Hints, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    for batch in [false, true] {
        let hints = Hints {
            event_type: Some("whatsapp.message.received"),
            batch,
        };
        if let Ok(parsed) = parse(body, hints) {
            assert!(serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok());
            for event in &parsed.events {
                // Each event keeps exact bytes of the body, never a re-serialisation.
                let text = std::str::from_utf8(body).unwrap();
                assert!(text.contains(event.payload_json.as_str()));
            }
        }
    }
});
