//! `webhook::parse` on arbitrary bodies, as single and as batch deliveries:
//! never panics, and only a body that is valid JSON can parse.

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
            assert!(serde_json::from_slice::<serde_json::Value>(body).is_ok());
            for event in &parsed.events {
                // Each event keeps exact bytes of the body, never a re-serialisation.
                let text = std::str::from_utf8(body).unwrap();
                assert!(text.contains(event.payload_json.as_str()));
            }
        }
    }
});
