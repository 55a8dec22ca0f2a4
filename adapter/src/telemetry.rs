//! Masking that keeps customer data out of logs by default. The log and trace
//! set-up itself is `kapso_telemetry`'s, shared with the core.

use std::fmt;

/// A contact reduced to its last four characters, e.g. `+*******5678`.
///
/// Four is what card numbers show on a receipt: enough to tell contacts apart
/// in a log, not enough to call anyone. Shorter contacts show less.
/// Formats lazily: nothing is computed when the log line is filtered out.
#[derive(Debug, Clone, Copy)]
pub struct Masked<'a>(pub &'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let contact = self.0;
        // Stored contacts are bare digits; show them as the phone numbers they are.
        if !contact.is_empty() && contact.bytes().all(|b| b.is_ascii_digit()) {
            f.write_str("+")?;
        }
        let chars = contact.chars().count();
        // At most 4 shown, and never more than half of a short contact.
        let shown = (chars / 2).min(4);
        for _ in 0..(chars - shown).max(4) {
            f.write_str("*")?;
        }
        let tail: String = contact.chars().skip(chars - shown).collect();
        f.write_str(&tail)
    }
}

/// At most the first 20 characters of a received signature, for the refusal log line.
pub fn signature_prefix(header: &[u8]) -> String {
    String::from_utf8_lossy(header).chars().take(20).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_digits_show_only_the_last_four() {
        assert_eq!(Masked("56912345678").to_string(), "+*******5678");
        assert_eq!(Masked("15551234567").to_string(), "+*******4567");
    }

    #[test]
    fn non_phone_ids_are_masked_without_a_plus() {
        assert_eq!(Masked("US.1234567890").to_string(), "*********7890");
    }

    #[test]
    fn short_or_empty_contacts_reveal_little() {
        assert_eq!(Masked("12345").to_string(), "+****45");
        assert_eq!(Masked("").to_string(), "****");
    }

    #[test]
    fn signature_prefix_is_at_most_twenty_characters() {
        assert_eq!(signature_prefix(&[b'a'; 64]), "a".repeat(20));
        assert_eq!(signature_prefix(b"short"), "short");
    }
}
