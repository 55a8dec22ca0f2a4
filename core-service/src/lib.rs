//! `kapso-core`: the gateway's core service.
//!
//! Receives parsed webhook deliveries from the adapter over gRPC, stores them
//! durably and de-duplicated, tracks message status, keeps the event log that
//! internal consumers stream from, and sends messages through Kapso's API.
//!
//! - [`model`]: domain types (deliveries, events, messages, explicit outcomes)
//! - [`status`]: message status and its forward-only rule
//! - [`store`]: the `Store` trait and its SQLite backend

pub mod model;
pub mod status;
pub mod store;
