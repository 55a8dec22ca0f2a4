//! The writers' one command API: every write a store queues to its writer is
//! a [`Command`] carrying its input and the [`Reply`] its caller awaits, typed
//! by what that write answers (the shape of tokio's and mini-redis's examples).
//!
//! Both writers run a batch of commands in one transaction and answer each
//! only once the transaction is durable, so a reply holds its outcome until
//! then. A command may run more than once (its batch rolled back because
//! another failed); the last run's outcome is the one answered.

use tokio::sync::oneshot;

use super::{Move, StoreError};
use crate::model::{
    Claim, Delivery, GatewayId, Message, Receipt, SendClaim, SendIntent, SendResult,
};

/// A write request and where its answer goes.
pub(super) enum Command {
    Ingest {
        delivery: Delivery,
        reply: Reply<Receipt>,
    },
    BeginSend {
        /// Boxed: by far the largest input, it would size every command.
        intent: Box<SendIntent>,
        reply: Reply<SendClaim>,
    },
    FinishSend {
        gateway_id: GatewayId,
        result: SendResult,
        reply: Reply<Message>,
    },
    ReleaseSend {
        gateway_id: GatewayId,
        reply: Reply<bool>,
    },
    /// Settles sends claimed before this Unix ms that never learned their wamid.
    SettleAbandonedSends {
        claimed_before: i64,
        reply: Reply<u64>,
    },
    /// A consumer's new position, and how it may move there.
    Position {
        consumer: String,
        sequence: u64,
        how: Move,
        reply: Reply<u64>,
    },
    /// Prunes entries received before this Unix ms, at most `batch` per table.
    Prune {
        older_than_ms: i64,
        batch: usize,
        reply: Reply<u64>,
    },
    /// Nothing: proves the writer and its connection work.
    Check { reply: Reply<()> },
}

/// Runs `$body` with `$reply` bound to the command's reply, whatever its type.
macro_rules! with_reply {
    ($command:expr, $reply:ident => $body:expr) => {
        match $command {
            Command::Ingest { $reply, .. } => $body,
            Command::BeginSend { $reply, .. } => $body,
            Command::FinishSend { $reply, .. } => $body,
            Command::ReleaseSend { $reply, .. } => $body,
            Command::SettleAbandonedSends { $reply, .. } => $body,
            Command::Position { $reply, .. } => $body,
            Command::Prune { $reply, .. } => $body,
            Command::Check { $reply } => $body,
        }
    };
}

impl Command {
    /// A command built around a new reply, and the receiver its answer arrives on.
    pub(super) fn with_reply<T>(
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> (Command, oneshot::Receiver<Result<T, StoreError>>) {
        let (sender, answer) = oneshot::channel();
        let reply = Reply {
            sender,
            outcome: None,
        };
        (command(reply), answer)
    }

    /// Answers with the outcome held, or with `failure` when the batch as a
    /// whole did not become durable (a command's own error still wins).
    pub(super) fn answer(self, failure: Option<&str>) {
        with_reply!(self, reply => reply.send(failure));
    }

    /// Answers with `error`, whatever outcome was held.
    pub(super) fn fail(self, error: StoreError) {
        with_reply!(self, reply => reply.fail(error));
    }

    /// Highest sequence this command appended to the log, once it ran.
    pub(super) fn appended(&self) -> Option<u64> {
        match self {
            Command::Ingest {
                reply:
                    Reply {
                        outcome: Some(Ok(Receipt::Stored(claims))),
                        ..
                    },
                ..
            } => claims
                .iter()
                .filter_map(|c| match c {
                    Claim::New { sequence } => Some(*sequence),
                    Claim::Duplicate => None,
                })
                .max(),
            _ => None,
        }
    }
}

/// The channel one command's caller awaits, and the outcome held for it
/// until its batch is durable.
pub(super) struct Reply<T> {
    sender: oneshot::Sender<Result<T, StoreError>>,
    outcome: Option<Result<T, StoreError>>,
}

impl<T> Reply<T> {
    /// Holds the outcome of a run, success or not; whether it succeeded.
    pub(super) fn hold(&mut self, outcome: Result<T, StoreError>) -> bool {
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    /// Holds a successful run's value; a failure is handed back instead.
    pub(super) fn hold_value(&mut self, outcome: Result<T, StoreError>) -> Result<(), StoreError> {
        self.outcome = Some(Ok(outcome?));
        Ok(())
    }

    fn send(self, failure: Option<&str>) {
        let result = match (failure, self.outcome) {
            (_, Some(Err(error))) => Err(error),
            (None, Some(Ok(value))) => Ok(value),
            (Some(reason), _) => Err(StoreError::Unavailable(reason.to_owned())),
            (None, None) => Err(StoreError::Internal("write request never ran".into())),
        };
        // The caller may have given up waiting; nothing to do then.
        let _ = self.sender.send(result);
    }

    fn fail(self, error: StoreError) {
        let _ = self.sender.send(Err(error));
    }
}
