//! The adapter with a real core: in one process (`kapso-gateway`) and as two,
//! and the trace both export over OTLP.

#[path = "../support/mod.rs"]
mod support;

mod e2e;
mod in_process;
mod otlp;
