//! Paging through a conversation's messages, oldest first, by the keyset
//! (timestamp, id): the same in both stores, so a cursor means one thing.

use crate::model::Message;
use crate::store::StoreError;

/// Position in a conversation's message list: the last message of a page.
///
/// Opaque to callers; encoded as `timestamp.id` in base 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cursor {
    pub(super) timestamp: i64,
    pub(super) id: i64,
}

impl Cursor {
    /// Before every message.
    const START: Cursor = Cursor {
        timestamp: i64::MIN,
        id: i64::MIN,
    };

    pub(super) fn parse(text: &str) -> Result<Cursor, StoreError> {
        let invalid = || StoreError::NotFound(format!("invalid page cursor {text:?}"));
        let (timestamp, id) = text.split_once('.').ok_or_else(invalid)?;
        Ok(Cursor {
            timestamp: timestamp.parse().map_err(|_| invalid())?,
            id: id.parse().map_err(|_| invalid())?,
        })
    }

    fn encode(self) -> String {
        format!("{}.{}", self.timestamp, self.id)
    }
}

/// One page to read: the messages after a cursor, at most `size` of them.
pub(super) struct PageQuery {
    pub(super) after: Cursor,
    size: usize,
}

impl PageQuery {
    /// The page of at most `size` messages (at least one) after `after`, or
    /// from the start.
    pub(super) fn new(size: usize, after: Option<Cursor>) -> Self {
        PageQuery {
            after: after.unwrap_or(Cursor::START),
            size: size.max(1),
        }
    }

    /// How many rows the query asks for: one more than the page, which tells
    /// whether another page follows.
    pub(super) fn limit(&self) -> i64 {
        i64::try_from(self.size.saturating_add(1)).unwrap_or(i64::MAX)
    }

    /// Cuts `found` (at most [`limit`](Self::limit) rows of (id, message), in
    /// keyset order) to the page; the cursor of the next page when one follows.
    pub(super) fn cut(&self, found: &mut Vec<(i64, Message)>) -> Option<String> {
        if found.len() <= self.size {
            return None;
        }
        found.truncate(self.size);
        found.last().map(|(id, message)| {
            Cursor {
                timestamp: message.timestamp,
                id: *id,
            }
            .encode()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::MessageStatus;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let cursor = Cursor {
            timestamp: 1_700_000_000,
            id: 42,
        };
        assert_eq!(Cursor::parse(&cursor.encode()).unwrap(), cursor);
        assert!(matches!(
            Cursor::parse("nope"),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(Cursor::parse("1.x"), Err(StoreError::NotFound(_))));
    }

    fn message_at(timestamp: i64) -> Message {
        Message {
            id: String::new(),
            direction: Default::default(),
            conversation_id: None,
            phone_number_id: String::new(),
            contact_phone: String::new(),
            message_type: "text".into(),
            text: String::new(),
            status: MessageStatus::Received,
            errors: Vec::new(),
            not_taken: None,
            status_history: Vec::new(),
            gateway_id: None,
            idempotency_key: None,
            timestamp,
            reply_to_message_id: None,
            content: None,
        }
    }

    #[test]
    fn a_page_cut_from_one_row_too_many_points_at_its_last_message() {
        let page = PageQuery::new(2, None);
        assert_eq!(page.limit(), 3);
        let mut found = vec![
            (7, message_at(10)),
            (9, message_at(10)),
            (4, message_at(11)),
        ];
        assert_eq!(page.cut(&mut found).as_deref(), Some("10.9"));
        assert_eq!(found.len(), 2);

        let mut last = vec![(7, message_at(10)), (9, message_at(10))];
        assert_eq!(page.cut(&mut last), None);
        assert_eq!(last.len(), 2);
    }

    #[test]
    fn a_page_holds_at_least_one_message() {
        let page = PageQuery::new(0, None);
        assert_eq!(page.limit(), 2);
        assert_eq!(page.after, Cursor::START);
    }
}
