//! The W3C `traceparent` and the `x-request-id` every process reads and sends:
//! both are untrusted text headed for log pipelines and trace stores, so each
//! is parsed whole and kept only when well-formed, never escaped.

use std::fmt;

/// The trace context header, in both directions (HTTP and gRPC metadata).
pub const TRACEPARENT: &str = "traceparent";
/// The request id header, in both directions.
pub const X_REQUEST_ID: &str = "x-request-id";
/// Longest request id kept.
pub const MAX_REQUEST_ID: usize = 128;
/// `00-` + 32 + `-` + 16 + `-` + 2.
const TRACEPARENT_LEN: usize = 55;

/// A parsed `traceparent`: which trace, which span is the parent, and the flags
/// (bit 0: sampled). Ids are never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: u128,
    parent_id: u64,
    flags: u8,
}

impl TraceParent {
    /// `version-traceid-parentid-flags`, lowercase hex (W3C Trace Context).
    /// Later versions may append `-...`; version `ff` and zero ids are invalid.
    pub fn parse(value: &[u8]) -> Option<TraceParent> {
        let head = value.get(..TRACEPARENT_LEN)?;
        let rest = &value[TRACEPARENT_LEN..];
        if head[2] != b'-' || head[35] != b'-' || head[52] != b'-' {
            return None;
        }
        let version = hex_field(&head[..2])?;
        let trace_id = hex_field(&head[3..35])?;
        let parent_id = hex_field(&head[36..52])? as u64;
        let flags = hex_field(&head[53..55])? as u8;
        let extension_ok = rest.is_empty() || (version != 0 && rest.first() == Some(&b'-'));
        (version != 0xff && trace_id != 0 && parent_id != 0 && extension_ok).then_some(
            TraceParent {
                trace_id,
                parent_id,
                flags,
            },
        )
    }

    /// From ids known to be valid; `None` if either is zero.
    pub fn new(trace_id: u128, parent_id: u64, flags: u8) -> Option<TraceParent> {
        (trace_id != 0 && parent_id != 0).then_some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// A new trace, sampled: for a request that came without a valid one.
    pub fn generate() -> TraceParent {
        TraceParent {
            trace_id: rand::random::<u128>().max(1),
            parent_id: rand::random::<u64>().max(1),
            flags: 1,
        }
    }

    /// The same trace and flags under a new span id: what a hop that does not
    /// export its own spans sends on.
    pub fn next_hop(self) -> TraceParent {
        TraceParent {
            parent_id: rand::random::<u64>().max(1),
            ..self
        }
    }

    pub fn trace_id(self) -> u128 {
        self.trace_id
    }

    pub fn parent_id(self) -> u64 {
        self.parent_id
    }

    pub fn flags(self) -> u8 {
        self.flags
    }

    /// The header text, version `00`.
    pub fn encode(self) -> [u8; TRACEPARENT_LEN] {
        let mut text = [0u8; TRACEPARENT_LEN];
        text[..3].copy_from_slice(b"00-");
        write_hex(&mut text[3..35], &self.trace_id.to_be_bytes());
        text[35] = b'-';
        write_hex(&mut text[36..52], &self.parent_id.to_be_bytes());
        text[52] = b'-';
        write_hex(&mut text[53..], &[self.flags]);
        text
    }

    /// The 32 lowercase hex digits of the trace id.
    pub fn trace_id_hex(self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.encode();
        f.write_str(std::str::from_utf8(&text).expect("hex digits and dashes"))
    }
}

/// A request id is kept when short printable ASCII without spaces: safe in any log format.
pub fn is_valid_request_id(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= MAX_REQUEST_ID && value.iter().all(u8::is_ascii_graphic)
}

/// A lowercase hex field of at most 32 digits.
fn hex_field(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |value, &digit| {
        let nibble = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u128::from(nibble))
    })
}

fn write_hex(out: &mut [u8], bytes: &[u8]) {
    hex::encode_to_slice(bytes, out).expect("out is twice as long as bytes");
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_parses_and_encodes_back() {
        let parsed = TraceParent::parse(VALID.as_bytes()).unwrap();
        assert_eq!(parsed.trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(parsed.parent_id(), 0x00f067aa0ba902b7);
        assert_eq!(parsed.flags(), 1);
        assert_eq!(parsed.to_string(), VALID);
        assert_eq!(parsed.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf9-00f0-01",
            &VALID.to_uppercase(),
            &format!("{VALID}-extra"),
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        ] {
            assert_eq!(TraceParent::parse(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn a_future_version_may_carry_extra_fields() {
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        let parsed = TraceParent::parse(future.as_bytes()).unwrap();
        assert_eq!(parsed.trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
    }

    #[test]
    fn the_next_hop_keeps_trace_and_flags_with_a_new_span_id() {
        let parsed = TraceParent::parse(VALID.as_bytes()).unwrap();
        let next = parsed.next_hop();
        assert_eq!(next.trace_id(), parsed.trace_id());
        assert_eq!(next.flags(), parsed.flags());
        assert_ne!(next.parent_id(), parsed.parent_id());
    }

    #[test]
    fn generated_traces_are_valid_sampled_and_distinct() {
        let (a, b) = (TraceParent::generate(), TraceParent::generate());
        assert_eq!(TraceParent::parse(&a.encode()), Some(a));
        assert_eq!(a.flags(), 1);
        assert_ne!(a.trace_id(), b.trace_id());
    }

    #[test]
    fn zero_ids_make_no_traceparent() {
        assert_eq!(TraceParent::new(0, 1, 1), None);
        assert_eq!(TraceParent::new(1, 0, 1), None);
        assert!(TraceParent::new(1, 1, 0).is_some());
    }

    #[test]
    fn request_ids_are_short_and_printable() {
        assert!(is_valid_request_id(b"req-123_abc"));
        assert!(!is_valid_request_id(b""));
        assert!(!is_valid_request_id(b"has space"));
        assert!(!is_valid_request_id(b"line\nbreak"));
        assert!(!is_valid_request_id(&[b'x'; MAX_REQUEST_ID + 1]));
    }
}
