//! `kapso_process`: the plumbing every gateway binary needs the same way, written once.
//!
//! Modules:
//! - [`shutdown`]: when to stop, the first Ctrl-C or SIGTERM.
//! - [`secret`]: a secret given as a flag or environment variable, whose `Debug`
//!   prints `[redacted]`.

pub mod secret;
pub mod shutdown;

pub use secret::Secret;
