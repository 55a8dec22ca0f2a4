//! The one error type of the client: a gRPC status from the core, or a failure
//! to reach it at all.
//!
//! The core puts what a caller needs to act on a failed send in trailing
//! metadata: `x-message-id` (the gateway's id of the send, so it can be looked
//! up instead of resent) and `x-meta-error-code` (Meta's error code, e.g.
//! 131047 when the 24-hour window is closed). [`Error`] parses both.

use std::fmt;

use tonic::Code;

/// Trailer naming the gateway id of a send that failed or whose outcome is unknown.
pub const MESSAGE_ID_TRAILER: &str = "x-message-id";
/// Trailer carrying Meta's numeric error code, when Meta gave one.
pub const META_ERROR_CODE_TRAILER: &str = "x-meta-error-code";

/// Meta's code for a message outside the 24-hour customer service window.
const META_WINDOW_CLOSED: i64 = 131047;
/// How the core words its own refusal of a send outside the window, which
/// never reached Meta and so carries no Meta code.
const CORE_WINDOW_CLOSED: &str = "customer service window is closed";

/// Everything a call to the gateway can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The core (or the transport on its behalf) answered with a gRPC status.
    #[error("{}", describe_status(.0))]
    Status(Box<tonic::Status>),

    /// The endpoint URL or the token cannot be used; nothing was sent.
    #[error("invalid client configuration: {0}")]
    Config(String),

    /// The core could not be reached when connecting. The cause is in `source()`.
    #[error("cannot connect to the core at {endpoint}")]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },

    /// Reading a file to upload, or writing a downloaded one, failed here.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::Status(Box::new(status))
    }
}

impl Error {
    /// The gRPC code. A connection failure reads as `UNAVAILABLE`, a bad
    /// configuration as `INVALID_ARGUMENT` and a local file failure as
    /// `UNKNOWN`, so callers can branch on one value.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) {
    /// match client.get_message("wamid.unknown").await {
    ///     Err(e) if e.code() == kapso_client::Code::NotFound => println!("no such message"),
    ///     Err(e) => eprintln!("{e}"),
    ///     Ok(message) => println!("{}", message.text),
    /// }
    /// # }
    /// ```
    pub fn code(&self) -> Code {
        match self {
            Error::Status(status) => status.code(),
            Error::Config(_) => Code::InvalidArgument,
            Error::Connect { .. } => Code::Unavailable,
            Error::Io { .. } => Code::Unknown,
        }
    }

    /// The status message, or a short description for the non-status variants.
    pub fn message(&self) -> &str {
        match self {
            Error::Status(status) => status.message(),
            Error::Config(message) => message,
            Error::Connect { .. } => "cannot connect to the core",
            Error::Io { what, .. } => what,
        }
    }

    /// The underlying status, when the core answered.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            Error::Status(status) => Some(status),
            _ => None,
        }
    }

    /// Meta's error code from the `x-meta-error-code` trailer (e.g. 131047: the
    /// 24-hour customer service window is closed).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) {
    /// use kapso_client::SendText;
    /// if let Err(e) = client.send_text(SendText::to("+56912345678", "hola")).await {
    ///     if e.meta_error_code() == Some(131047) {
    ///         println!("window closed: a template message is needed");
    ///     }
    /// }
    /// # }
    /// ```
    pub fn meta_error_code(&self) -> Option<i64> {
        self.trailer(META_ERROR_CODE_TRAILER)?.trim().parse().ok()
    }

    /// The gateway id of the send this error is about, from the `x-message-id`
    /// trailer. When the outcome is unknown, look this id up with
    /// [`Client::get_message`](crate::Client::get_message) rather than resending.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) {
    /// use kapso_client::SendText;
    /// if let Err(e) = client.send_text(SendText::to("+56912345678", "hola")).await {
    ///     if let Some(id) = e.message_id() {
    ///         println!("check message {id} later");
    ///     }
    /// }
    /// # }
    /// ```
    pub fn message_id(&self) -> Option<&str> {
        self.trailer(MESSAGE_ID_TRAILER).filter(|id| !id.is_empty())
    }

    /// Whether the same call may succeed later: the core or Kapso was
    /// unavailable, rate limited, or the call timed out. Sends are only safe to
    /// retry with an idempotency key.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.code(),
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted
        )
    }

    /// The contact's 24-hour customer service window is closed: only an
    /// approved template reaches them now. The core refused the send itself
    /// (`FAILED_PRECONDITION`, no Meta code) or Meta did (131047).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// use kapso_client::{SendMessage, Template, send::message};
    /// let to = "+56912345678";
    /// match client.send_message(SendMessage::to(to, message::text("¿Seguimos?"))).await {
    ///     Err(e) if e.is_window_closed() => {
    ///         client.send_message(SendMessage::to(to, Template::new("follow_up", "es"))).await?;
    ///     }
    ///     other => { other?; }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_window_closed(&self) -> bool {
        self.code() == Code::FailedPrecondition
            && (self.meta_error_code() == Some(META_WINDOW_CLOSED)
                || self.message().contains(CORE_WINDOW_CLOSED))
    }

    fn trailer(&self, key: &str) -> Option<&str> {
        self.status()?.metadata().get(key)?.to_str().ok()
    }
}

/// One line: code, message, then the trailers when present.
fn describe_status(status: &tonic::Status) -> String {
    let mut line = format!("{}: {}", CodeName(status.code()), status.message());
    let trailer = |key| status.metadata().get(key).and_then(|v| v.to_str().ok());
    if let Some(code) = trailer(META_ERROR_CODE_TRAILER) {
        line.push_str(&format!(" [meta error code {code}]"));
    }
    if let Some(id) = trailer(MESSAGE_ID_TRAILER) {
        line.push_str(&format!(" [message id {id}]"));
    }
    line
}

/// Writes the gRPC code's canonical name (`NOT_FOUND`), as other gRPC tools do.
#[derive(Debug, Clone, Copy)]
pub struct CodeName(pub Code);

impl fmt::Display for CodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataMap;

    use super::*;

    fn status_with(trailers: &[(&'static str, &str)]) -> Error {
        let mut metadata = MetadataMap::new();
        for (key, value) in trailers {
            metadata.insert(*key, value.parse().unwrap());
        }
        tonic::Status::with_metadata(Code::Unavailable, "outcome unknown", metadata).into()
    }

    #[test]
    fn trailers_are_parsed() {
        let error = status_with(&[("x-message-id", "gw_1"), ("x-meta-error-code", "131047")]);
        assert_eq!(error.code(), Code::Unavailable);
        assert_eq!(error.message(), "outcome unknown");
        assert_eq!(error.message_id(), Some("gw_1"));
        assert_eq!(error.meta_error_code(), Some(131047));
        assert!(error.is_retryable());
    }

    #[test]
    fn missing_or_malformed_trailers_read_as_none() {
        let error = status_with(&[("x-meta-error-code", "not-a-number")]);
        assert_eq!(error.message_id(), None);
        assert_eq!(error.meta_error_code(), None);
        let error = Error::Config("bad url".into());
        assert_eq!(error.message_id(), None);
        assert_eq!(error.code(), Code::InvalidArgument);
        assert!(!error.is_retryable());
    }

    #[test]
    fn a_closed_window_is_told_by_the_core_or_by_metas_code() {
        let by_core: Error = tonic::Status::failed_precondition(
            "not sent: the 24-hour customer service window is closed (the contact's last \
             message is over 24 hours old); send a template message",
        )
        .into();
        assert!(by_core.is_window_closed());

        let mut metadata = MetadataMap::new();
        metadata.insert(META_ERROR_CODE_TRAILER, "131047".parse().unwrap());
        let by_meta: Error =
            tonic::Status::with_metadata(Code::FailedPrecondition, "re-engagement", metadata)
                .into();
        assert!(by_meta.is_window_closed());

        let mut metadata = MetadataMap::new();
        metadata.insert(META_ERROR_CODE_TRAILER, "131049".parse().unwrap());
        let other_refusal: Error =
            tonic::Status::with_metadata(Code::FailedPrecondition, "not delivered", metadata)
                .into();
        assert!(!other_refusal.is_window_closed());
        let not_a_refusal: Error =
            tonic::Status::unavailable("customer service window is closed").into();
        assert!(!not_a_refusal.is_window_closed());
    }

    #[test]
    fn display_is_one_line_with_code_and_trailers() {
        let error = status_with(&[("x-message-id", "gw_1"), ("x-meta-error-code", "131047")]);
        let line = error.to_string();
        assert!(!line.contains('\n'));
        assert!(line.starts_with("UNAVAILABLE: outcome unknown"), "{line}");
        assert!(line.contains("meta error code 131047"), "{line}");
        assert!(line.contains("message id gw_1"), "{line}");
    }
}
