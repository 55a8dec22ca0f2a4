//! Rust client for the kapso-gateway core.

pub use kapso_gateway_proto::v1 as proto;
