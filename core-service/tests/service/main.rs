//! The core's integration tests, one binary: the store suite on both backends,
//! the two backends against each other on random scripts, the gRPC services
//! over real sockets, and the `kapso-core` process itself (its trace export
//! included).

mod cluster;
mod fake_kapso;
mod postgres_db;
mod process;
mod store_suite;

mod auth;
mod base_url;
mod crash;
mod media;
mod otlp;
mod outbound;
mod replicas;
mod shutdown;
mod store;
mod store_differential;
mod store_upgrade;
mod watch;
