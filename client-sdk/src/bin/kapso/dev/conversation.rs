//! The conversation a customer and a business number share, and the contact
//! it is with.
//!
//! Kapso names every conversation and puts it in each webhook, inbound and
//! status alike; the gateway files messages and replies under that name and
//! remembers which contact and number it joins. `kapso dev` and `kapso dev
//! trigger` share no state, so the id is a pure function of the business
//! number and the contact: a customer's messages and the receipts of the
//! replies to them land in one conversation, as with Kapso.

use serde_json::{Value, json};

/// Who the business talks to: phone digits (E.164 without `+`) or, for a
/// contact who shows no number, a business-scoped user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Phone(String),
    UserId(String),
}

impl Contact {
    /// Phone digits, a leading `+` accepted: 7 to 15 of them, as WhatsApp has.
    pub fn phone(raw: &str) -> Option<Contact> {
        let digits = raw.trim().strip_prefix('+').unwrap_or(raw.trim());
        let valid = (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| Contact::Phone(digits.to_owned()))
    }

    /// The contact as webhooks name it (`from`, `recipient_id`).
    pub fn as_str(&self) -> &str {
        match self {
            Contact::Phone(digits) => digits,
            Contact::UserId(id) => id,
        }
    }
}

/// The id of the conversation between `phone_number_id` and `contact`.
///
/// Readable on purpose, so it can be typed: `kapso list conv_123_15551234567`.
pub fn conversation_id(phone_number_id: &str, contact: &Contact) -> String {
    format!("conv_{phone_number_id}_{}", contact.as_str())
}

/// Kapso's `conversation` object for a webhook sent at `now` (Unix seconds).
pub fn conversation(phone_number_id: &str, contact: &Contact, now: i64) -> Value {
    let at = rfc3339(now);
    let mut conversation = json!({
        "id": conversation_id(phone_number_id, contact),
        "phone_number": null,
        "status": "active",
        "last_active_at": at,
        "created_at": at,
        "updated_at": at,
        "metadata": {},
        "phone_number_id": phone_number_id,
    });
    match contact {
        Contact::Phone(digits) => conversation["phone_number"] = json!(format!("+{digits}")),
        Contact::UserId(id) => conversation["business_scoped_user_id"] = json!(id),
    }
    conversation
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`, the form of Kapso's conversation times.
pub fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): eras of 400 years, years starting in March so the leap
/// day falls last.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_digits_with_an_optional_plus() {
        assert_eq!(
            Contact::phone("+15551234567"),
            Some(Contact::Phone("15551234567".into()))
        );
        assert_eq!(
            Contact::phone("15551234567"),
            Some(Contact::Phone("15551234567".into()))
        );
        for bad in ["", "+", "123", "1555-123-4567", "1555123456789012"] {
            assert_eq!(Contact::phone(bad), None, "{bad}");
        }
    }

    #[test]
    fn one_number_and_contact_make_one_conversation() {
        let ana = Contact::phone("+15551234567").unwrap();
        assert_eq!(
            conversation_id("123456789012345", &ana),
            "conv_123456789012345_15551234567"
        );
        assert_ne!(
            conversation_id("123", &ana),
            conversation_id("456", &ana),
            "another business number is another conversation"
        );
    }

    #[test]
    fn the_conversation_object_names_the_contact_as_kapso_does() {
        let phone = conversation("123", &Contact::Phone("15551234567".into()), 0);
        assert_eq!(phone["id"], "conv_123_15551234567");
        assert_eq!(phone["phone_number"], "+15551234567");
        assert_eq!(phone["phone_number_id"], "123");
        assert_eq!(phone["created_at"], "1970-01-01T00:00:00Z");
        let user = conversation("123", &Contact::UserId("US.42".into()), 0);
        assert_eq!(user["phone_number"], Value::Null);
        assert_eq!(user["business_scoped_user_id"], "US.42");
    }

    #[test]
    fn times_are_utc_rfc3339() {
        // Checked with `date -u -d @SECONDS +%Y-%m-%dT%H:%M:%SZ`.
        assert_eq!(rfc3339(1_730_092_860), "2024-10-28T05:21:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
