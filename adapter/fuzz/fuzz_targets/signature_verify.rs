//! `signature::verify` on arbitrary header bytes and bodies: never panics, and
//! a body signed with a configured secret always verifies.
//!
//! Input layout: the first byte says how many of the following bytes are the
//! header (at most 255); the rest is the body.

#![no_main]

use std::sync::LazyLock;

use kapso_signature::{WebhookSecrets, sign, verify};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret-not-real";

static SECRETS: LazyLock<WebhookSecrets> =
    LazyLock::new(|| format!("{SECRET},old-fuzz-secret-not-real").parse().unwrap());

fuzz_target!(|data: &[u8]| {
    let Some((&header_len, rest)) = data.split_first() else {
        return;
    };
    let (header, body) = rest.split_at(usize::from(header_len).min(rest.len()));
    let _ = verify(&SECRETS, Some(header), body);
    let signed = sign(SECRET, body);
    assert!(verify(&SECRETS, Some(signed.as_bytes()), body).is_ok());
    assert!(verify(&SECRETS, Some(format!("sha256={signed}").as_bytes()), body).is_ok());
});
