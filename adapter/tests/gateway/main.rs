//! The adapter with a real core: in one process (`kapso-gateway`) and as two.

#[path = "../support/mod.rs"]
mod support;

mod e2e;
mod in_process;
