//! `kapso_process`: the plumbing every gateway binary needs the same way, written once.
//!
//! Modules:
//! - [`shutdown`]: when to stop, the first Ctrl-C or SIGTERM.
//! - [`secret`]: a secret given as a flag or environment variable, whose `Debug`
//!   prints `[redacted]`.
//! - [`hidden`]: the `clap` value parser for secrets, whose errors never quote the value.

pub mod hidden;
pub mod secret;
pub mod shutdown;

pub use hidden::HiddenValue;
pub use secret::Secret;
