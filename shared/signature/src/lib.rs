//! `kapso_signature`: Kapso's webhook signature, `HMAC-SHA256(key = secret as UTF-8 text,
//! message = raw body)`, hex. Written once for everything that checks or makes one: the
//! adapter verifies, the `kapso` CLI and `kapso-loadgen` sign.
//!
//! Pure and small on purpose: no I/O, no logging, no knowledge of HTTP beyond the
//! header's bytes. [`verify`] runs before the body is parsed, over the exact bytes
//! received, because re-serialised JSON would not match.
//!
//! Items (one module: the whole check fits in one file to review):
//! - [`verify`] and its error, [`SignatureError`] (every variant an HTTP 401);
//! - [`WebhookSecrets`], the accepted secrets (several during a rotation), parsed from
//!   `KAPSO_WEBHOOK_SECRET` and refused with [`EmptySecret`] when an entry is empty;
//! - [`sign`], what Kapso sends, for tools and tests.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 tag in bytes.
const TAG_LEN: usize = 32;

/// Why a request's signature was refused. Every variant means HTTP 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Webhook-Signature` header.
    #[error("signature header missing")]
    Missing,
    /// The header is not 64 hex digits (with an optional `sha256=` prefix).
    #[error("signature header is not a hex HMAC-SHA256")]
    Malformed,
    /// Well-formed, but no configured secret produces it.
    #[error("signature does not match")]
    Mismatch,
}

impl SignatureError {
    /// Short stable name, used as a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Mismatch => "mismatch",
        }
    }
}

/// The webhook secrets, current first, then previous ones still accepted during a rotation.
///
/// Holds HMAC states already keyed, so a request clones a state instead of
/// re-deriving the key. `Debug` never shows anything of the secrets.
#[derive(Clone)]
pub struct WebhookSecrets {
    keyed: Vec<HmacSha256>,
}

/// A secret list with an empty entry (e.g. `"a,,b"` or a trailing comma).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the secret list has an empty entry")]
pub struct EmptySecret;

impl WebhookSecrets {
    /// Keys one HMAC state per secret. Fails if the list is empty or has an empty entry.
    pub fn new<I, S>(secrets: I) -> Result<Self, EmptySecret>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let keyed = secrets
            .into_iter()
            .map(|secret| {
                let secret = secret.as_ref();
                if secret.is_empty() {
                    return Err(EmptySecret);
                }
                Ok(keyed_state(secret))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keyed.is_empty() {
            return Err(EmptySecret);
        }
        Ok(Self { keyed })
    }

    /// How many secrets are accepted (1 outside a rotation).
    pub fn len(&self) -> usize {
        self.keyed.len()
    }

    /// Always false: construction refuses an empty list.
    pub fn is_empty(&self) -> bool {
        self.keyed.is_empty()
    }
}

/// Parses `KAPSO_WEBHOOK_SECRET`: comma-separated, current secret first.
/// Entries are taken verbatim (no trimming): a secret is opaque text.
impl FromStr for WebhookSecrets {
    type Err = EmptySecret;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        Self::new(list.split(','))
    }
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

fn keyed_state(secret: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length")
}

/// Signs `body` the way Kapso does: lowercase hex, no prefix.
///
/// For tools that send webhooks (the CLI, load generators, tests).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = keyed_state(secret);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks `X-Webhook-Signature` against every accepted secret, in constant time per secret.
///
/// Accepts bare hex or `sha256=<hex>`, either case, surrounding spaces ignored.
pub fn verify(
    secrets: &WebhookSecrets,
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let tag = decode_header(header.ok_or(SignatureError::Missing)?)?;
    let matched = secrets.keyed.iter().any(|state| {
        let mut mac = state.clone();
        mac.update(body);
        mac.verify_slice(&tag).is_ok()
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn decode_header(header: &[u8]) -> Result<[u8; TAG_LEN], SignatureError> {
    let header = header.trim_ascii();
    let hex_digits = match header.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case(b"sha256=") => &header[7..],
        _ => header,
    };
    let mut tag = [0u8; TAG_LEN];
    hex::decode_to_slice(hex_digits, &mut tag).map_err(|_| SignatureError::Malformed)?;
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SECRET: &str = "test-secret-not-real";
    const OLD_SECRET: &str = "old-test-secret-not-real";
    const BODY: &[u8] = br#"{"message":{"id":"wamid.1"}}"#;

    fn secrets(list: &str) -> WebhookSecrets {
        list.parse().unwrap()
    }

    #[test]
    fn sign_matches_a_known_hmac_sha256_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // Computed independently with Python's hmac module:
        // hmac.new(b"test-secret-not-real", b'{"message":{"id":"wamid.1"}}\n', hashlib.sha256).hexdigest()
        assert_eq!(
            sign(SECRET, b"{\"message\":{\"id\":\"wamid.1\"}}\n"),
            "090d6dc139b4523421eeda18a59edae5261be8cd0f8a01e0027bf672a7d7f019"
        );
    }

    #[test]
    fn signature_covers_exact_bytes_and_uses_the_secret_as_text() {
        let body = b"{\"message\":{\"id\":\"wamid.1\"}}\n";
        let trimmed = &body[..body.len() - 1];
        assert_ne!(sign(SECRET, trimmed), sign(SECRET, body));
        // A non-ASCII secret is keyed by its UTF-8 bytes (Python: "clave-de-prueba-ñ".encode()).
        assert_eq!(
            sign("clave-de-prueba-ñ", b""),
            "d0e729b5782db6a53b36548fc974c205e725bb22439db871373ae46dbb8e3259"
        );
    }

    #[test]
    fn hex_looking_secret_is_used_as_text() {
        let hex_secret = "00".repeat(32);
        let as_text = sign(&hex_secret, BODY);
        let mut decoded = HmacSha256::new_from_slice(&[0u8; 32]).unwrap();
        decoded.update(BODY);
        assert_ne!(as_text, hex::encode(decoded.finalize().into_bytes()));
    }

    #[test]
    fn bare_lowercase_signature_verifies() {
        let header = sign(SECRET, BODY);
        assert_eq!(
            verify(&secrets(SECRET), Some(header.as_bytes()), BODY),
            Ok(())
        );
    }

    #[test]
    fn prefixed_and_uppercase_variants_verify() {
        let hex = sign(SECRET, BODY);
        for header in [
            format!("sha256={hex}"),
            format!("SHA256={hex}"),
            hex.to_uppercase(),
            format!("sha256={}", hex.to_uppercase()),
            format!("  {hex} "),
        ] {
            assert_eq!(
                verify(&secrets(SECRET), Some(header.as_bytes()), BODY),
                Ok(()),
                "{header}"
            );
        }
    }

    #[test]
    fn missing_header_is_missing() {
        assert_eq!(
            verify(&secrets(SECRET), None, BODY),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn non_hex_or_wrong_length_is_malformed() {
        let hex = sign(SECRET, BODY);
        for header in [
            String::new(),
            "sha256=".into(),
            "zz".repeat(32),
            hex[..62].to_owned(),
            format!("{hex}00"),
            format!("sha1={hex}"),
        ] {
            assert_eq!(
                verify(&secrets(SECRET), Some(header.as_bytes()), BODY),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }

    #[test]
    fn signature_of_another_secret_is_a_mismatch() {
        let header = sign("another-test-secret", BODY);
        assert_eq!(
            verify(&secrets(SECRET), Some(header.as_bytes()), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rotation_accepts_current_and_previous_secret_only() {
        let list = secrets(&format!("{SECRET},{OLD_SECRET}"));
        assert_eq!(list.len(), 2);
        for secret in [SECRET, OLD_SECRET] {
            let header = sign(secret, BODY);
            assert_eq!(verify(&list, Some(header.as_bytes()), BODY), Ok(()));
        }
        let header = sign("retired-test-secret", BODY);
        assert_eq!(
            verify(&list, Some(header.as_bytes()), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn empty_entries_are_rejected() {
        for list in ["", ",", "a,", ",a", "a,,b"] {
            assert_eq!(
                list.parse::<WebhookSecrets>().err(),
                Some(EmptySecret),
                "{list:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let shown = format!("{:?}", secrets(SECRET));
        assert_eq!(shown, "[redacted]");
    }

    proptest! {
        #[test]
        fn sign_then_verify_holds(secret in "[^,]{1,64}", body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let header = sign(&secret, &body);
            prop_assert_eq!(verify(&secrets(&secret), Some(header.as_bytes()), &body), Ok(()));
            prop_assert_eq!(header.len(), 64);
            prop_assert!(header.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }

        #[test]
        fn any_flipped_body_byte_fails(body in proptest::collection::vec(any::<u8>(), 1..512), index: prop::sample::Index, bit in 0u8..8) {
            let header = sign(SECRET, &body);
            let mut tampered = body.clone();
            tampered[index.index(body.len())] ^= 1 << bit;
            prop_assert_eq!(verify(&secrets(SECRET), Some(header.as_bytes()), &tampered), Err(SignatureError::Mismatch));
        }

        #[test]
        fn any_changed_signature_digit_fails(body in proptest::collection::vec(any::<u8>(), 0..256), index in 0usize..64, delta in 1u8..16) {
            let header = sign(SECRET, &body);
            let mut digits = header.into_bytes();
            let value = u8::from_str_radix(std::str::from_utf8(&digits[index..=index]).unwrap(), 16).unwrap();
            digits[index] = b"0123456789abcdef"[usize::from((value + delta) % 16)];
            prop_assert_eq!(verify(&secrets(SECRET), Some(&digits), &body), Err(SignatureError::Mismatch));
        }

        #[test]
        fn any_flipped_signature_byte_fails(body in proptest::collection::vec(any::<u8>(), 0..256), index in 0usize..64, bit in 0u8..8) {
            let header = sign(SECRET, &body);
            let mut bytes = header.into_bytes();
            let original = bytes[index];
            bytes[index] ^= 1 << bit;
            // Flipping bit 5 of a letter only changes its case, which is still the same digit.
            prop_assume!(!(original.is_ascii_alphabetic() && bit == 5));
            prop_assert!(verify(&secrets(SECRET), Some(&bytes), &body).is_err());
        }
    }
}
