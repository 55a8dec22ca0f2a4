//! The two JSON columns both backends store, in one format: an event's
//! statuses (`[{"status":"failed","timestamp":1,"errors":[..]}]`) and a
//! message's Meta error objects. Empty lists are stored as NULL, the common case.

use crate::model::{MetaError, SendFailure, StatusUpdate};
use crate::status::MessageStatus;
use crate::store::StoreError;

#[derive(serde::Deserialize)]
struct StatusJson {
    status: String,
    timestamp: i64,
    #[serde(default)]
    errors: Vec<MetaError>,
}

/// [`StatusJson`] borrowed from the event, so encoding copies nothing.
#[derive(serde::Serialize)]
struct StatusJsonRef<'a> {
    status: &'a str,
    timestamp: i64,
    #[serde(skip_serializing_if = "<[MetaError]>::is_empty")]
    errors: &'a [MetaError],
}

/// The statuses column of an event: `None` when it has none.
pub(crate) fn encode_statuses(statuses: &[StatusUpdate]) -> Result<Option<String>, StoreError> {
    if statuses.is_empty() {
        return Ok(None);
    }
    let rows: Vec<StatusJsonRef<'_>> = statuses
        .iter()
        .map(|s| StatusJsonRef {
            status: s.status.as_str(),
            timestamp: s.timestamp,
            errors: &s.errors,
        })
        .collect();
    encode(&rows).map(Some)
}

/// The errors column of a message: `None` when there are none.
pub(crate) fn encode_errors(errors: &[MetaError]) -> Result<Option<String>, StoreError> {
    if errors.is_empty() {
        return Ok(None);
    }
    encode(&errors).map(Some)
}

/// A failed send's two columns: Meta's errors (`errors_json`) and why Kapso
/// never took it (`not_taken`); each NULL when it does not apply.
pub(crate) fn failure_columns(
    failure: &SendFailure,
) -> Result<(Option<String>, Option<&str>), StoreError> {
    Ok(match failure {
        SendFailure::NotTaken { reason } => (None, Some(reason)),
        SendFailure::Refused(errors) => (encode_errors(errors)?, None),
    })
}

/// Reads a statuses column back; the error says what was wrong with it.
pub(crate) fn decode_statuses(json: &str) -> Result<Vec<StatusUpdate>, String> {
    serde_json::from_str::<Vec<StatusJson>>(json)
        .map_err(|e| format!("cannot decode stored statuses: {e}"))?
        .into_iter()
        .map(|s| {
            Ok(StatusUpdate {
                status: MessageStatus::parse(&s.status)
                    .ok_or_else(|| format!("unknown message status {:?}", s.status))?,
                timestamp: s.timestamp,
                errors: s.errors,
            })
        })
        .collect()
}

/// Reads an errors column back.
pub(crate) fn decode_errors(json: &str) -> Result<Vec<MetaError>, String> {
    serde_json::from_str(json).map_err(|e| format!("cannot decode stored errors: {e}"))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Internal(format!("cannot encode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_with_errors_round_trip_and_empty_is_null() {
        let statuses = vec![
            StatusUpdate {
                status: MessageStatus::Sent,
                timestamp: 1,
                errors: vec![],
            },
            StatusUpdate {
                status: MessageStatus::Failed,
                timestamp: 2,
                errors: vec![MetaError {
                    code: 131047,
                    title: "Re-engagement message".into(),
                    ..Default::default()
                }],
            },
        ];
        let json = encode_statuses(&statuses).unwrap().unwrap();
        assert_eq!(decode_statuses(&json).unwrap(), statuses);
        assert_eq!(encode_statuses(&[]).unwrap(), None);
        assert_eq!(encode_errors(&[]).unwrap(), None);
        assert!(decode_statuses(r#"[{"status":"deleted","timestamp":1}]"#).is_err());
    }
}
