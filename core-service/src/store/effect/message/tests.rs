use super::*;
use crate::model::{EventType, StatusUpdate, Wamid};
use crate::status::MessageStatus::*;

/// An event about `wamid.1` reporting `statuses` (in its history, each
/// without a time) and the status of `event_type`'s suffix, if one.
fn status_event(event_type: &str, statuses: &[MessageStatus]) -> NewEvent {
    NewEvent {
        event_type: EventType::parse(event_type),
        message_id: Wamid::parse("wamid.1"),
        phone_number_id: "111".into(),
        contact_phone: "15550001111".into(),
        statuses: statuses
            .iter()
            .map(|&status| StatusUpdate {
                status,
                timestamp: 0,
                errors: Vec::new(),
            })
            .collect(),
        ..NewEvent::default()
    }
}

fn change(event: &NewEvent) -> MessageChange<'_> {
    MessageChange::of(event, 100, 200).expect("a message change")
}

#[test]
fn applying_the_statuses_at_once_is_applying_each_in_turn() {
    for from in MessageStatus::ALL {
        for a in MessageStatus::ALL {
            for b in MessageStatus::ALL {
                let event = status_event("whatsapp.message.status", &[a, b]);
                let in_turn = from.advance(a).advance(b);
                assert_eq!(
                    change(&event).status_from(from),
                    in_turn,
                    "{from:?} {a:?} {b:?}"
                );
            }
        }
    }
}

#[test]
fn a_change_moves_exactly_the_statuses_it_outranks() {
    for toward in [Sent, Delivered, Read, Failed] {
        let event = status_event(&format!("whatsapp.message.{toward}"), &[]);
        let change = change(&event);
        for current in MessageStatus::ALL {
            let moved = change.status_from(current) != current;
            assert_eq!(
                change.moves_from().contains(&current),
                moved,
                "{toward} from {current}"
            );
        }
    }
    let received = NewEvent {
        direction: Direction::Inbound,
        ..status_event("whatsapp.message.received", &[])
    };
    assert!(change(&received).moves_from().is_empty());
}

#[test]
fn the_errors_are_the_last_failure_that_carried_some() {
    let error = |code| MetaError {
        code,
        ..MetaError::default()
    };
    let mut event = status_event("whatsapp.message.read", &[Failed, Failed, Failed]);
    event.statuses[0].errors = vec![error(1)];
    event.statuses[1].errors = vec![error(2)];
    let change = change(&event);
    assert_eq!(change.errors, Some(&[error(2)][..]));
    assert_eq!(change.status_from(Read), Failed);
    let without = status_event("whatsapp.message.failed", &[]);
    assert_eq!(MessageChange::of(&without, 1, 1).unwrap().errors, None);
}

#[test]
fn every_reported_status_is_recorded_with_its_time() {
    let mut event = status_event("whatsapp.message.read", &[Sent, Delivered]);
    event.statuses[0].timestamp = 50;
    assert_eq!(
        change(&event).history,
        [
            HistoryEntry {
                status: Sent,
                at: 50
            },
            HistoryEntry {
                status: Delivered,
                at: 100
            },
            HistoryEntry {
                status: Read,
                at: 100
            },
        ]
    );
}

#[test]
fn a_status_of_an_unknown_message_starts_it_as_a_send() {
    let event = status_event("whatsapp.message.delivered", &[]);
    assert_eq!(
        change(&event).created,
        NewMessage {
            direction: Direction::Outbound,
            status: Delivered,
            timestamp: 100
        }
    );
    let inbound = NewEvent {
        direction: Direction::Inbound,
        ..status_event("whatsapp.message.read", &[])
    };
    let created = change(&inbound).created;
    assert_eq!(
        (created.direction, created.status),
        (Direction::Inbound, Read)
    );
}

#[test]
fn a_received_message_changes_no_status() {
    let event = NewEvent {
        event_type: EventType::MessageReceived,
        message_id: Wamid::parse("wamid.1"),
        direction: Direction::Inbound,
        ..NewEvent::default()
    };
    let change = change(&event);
    for current in MessageStatus::ALL {
        assert_eq!(change.status_from(current), current);
    }
    assert_eq!(change.created.status, Received);
    assert!(change.settles.is_none());
}

#[test]
fn only_what_the_business_sent_to_a_known_contact_may_settle_a_send() {
    let event = status_event("whatsapp.message.sent", &[]);
    let settles = change(&event).settles.expect("may settle a send");
    assert_eq!(settles.claimed_since, 200 - SETTLE_WINDOW_SECS);
    let inbound = NewEvent {
        direction: Direction::Inbound,
        ..event.clone()
    };
    assert!(change(&inbound).settles.is_none());
    let anonymous = NewEvent {
        contact_phone: String::new(),
        ..event
    };
    assert!(change(&anonymous).settles.is_none());
}

#[test]
fn without_text_only_a_sole_pending_send_is_settled() {
    let event = status_event("whatsapp.message.sent", &[]);
    let settles = change(&event).settles.unwrap();
    assert!(settles.sole_only());
    assert_eq!(settles.pick(&[1]), Some(1));
    assert_eq!(settles.pick(&[1, 2]), None);
    let with_text = NewEvent {
        text: "hola".into(),
        ..event
    };
    let settles = change(&with_text).settles.unwrap();
    assert_eq!(settles.pick(&[1, 2]), Some(1));
    assert_eq!(settles.pick::<i64>(&[]), None);
}

#[test]
fn events_that_move_nothing_change_no_message() {
    // Neither received (its direction unknown) nor a status.
    let logged = status_event("whatsapp.message.deleted", &[]);
    assert!(MessageChange::of(&logged, 1, 1).is_none());
    let without_id = NewEvent {
        message_id: None,
        ..status_event("whatsapp.message.read", &[])
    };
    assert!(MessageChange::of(&without_id, 1, 1).is_none());
}
