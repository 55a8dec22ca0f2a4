//! Message status and the rule that it only moves forward.
//!
//! Kapso delivers status webhooks out of order (a `delivered` can arrive after
//! `read`, or before the send response). The stored status is therefore the
//! highest rank seen, never the latest arrival.

use std::fmt;

/// Where a message is in its lifecycle.
///
/// Outbound: `Accepted < Sent < Delivered < Read`; `Failed` is terminal.
/// `OutcomeUnknown` ranks with `Accepted`: any real status supersedes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// An inbound message the gateway stored.
    Received,
    /// An outbound send in flight to Kapso.
    Accepted,
    /// The send may have reached WhatsApp; a status webhook will settle it.
    OutcomeUnknown,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl MessageStatus {
    /// Every status, in rank order.
    pub const ALL: [MessageStatus; 7] = [
        Self::Received,
        Self::Accepted,
        Self::OutcomeUnknown,
        Self::Sent,
        Self::Delivered,
        Self::Read,
        Self::Failed,
    ];

    /// Order used to decide whether an update moves the message forward.
    pub fn rank(self) -> u8 {
        match self {
            Self::Received | Self::Accepted | Self::OutcomeUnknown => 0,
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Failed => 4,
        }
    }

    /// The status after `update` is applied to `self`: never backwards, `Failed` final.
    pub fn advance(self, update: MessageStatus) -> MessageStatus {
        if update.rank() > self.rank() {
            update
        } else {
            self
        }
    }

    /// Stable lowercase name, used in the store and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Accepted => "accepted",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name or a Kapso/Meta status string.
    pub fn parse(name: &str) -> Option<MessageStatus> {
        Some(match name {
            "received" => Self::Received,
            "accepted" => Self::Accepted,
            "outcome_unknown" => Self::OutcomeUnknown,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;
    use super::*;

    #[test]
    fn late_delivered_never_undoes_read() {
        assert_eq!(Read.advance(Delivered), Read);
        assert_eq!(Read.advance(Sent), Read);
    }

    #[test]
    fn failed_is_terminal() {
        for s in MessageStatus::ALL {
            assert_eq!(Failed.advance(s), Failed);
        }
        assert_eq!(Read.advance(Failed), Failed);
    }

    #[test]
    fn any_real_status_settles_an_unknown_outcome() {
        assert_eq!(OutcomeUnknown.advance(Sent), Sent);
        assert_eq!(Accepted.advance(Delivered), Delivered);
        assert_eq!(Sent.advance(OutcomeUnknown), Sent);
    }

    #[test]
    fn advance_is_order_independent() {
        for a in MessageStatus::ALL {
            for b in MessageStatus::ALL {
                assert_eq!(a.advance(b).rank(), b.advance(a).rank());
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(MessageStatus::parse("deleted"), None);
    }
}
