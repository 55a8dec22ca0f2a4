//! The `kapso.gateway.v1` wire contract shared by the adapter, the core and the clients.
//!
//! Types and services are generated at build time from `proto/kapso/gateway/v1/*.proto`.
//! Other languages generate their SDKs from the same files.
//!
//! The `grpc` feature (on by default) adds the tonic clients and servers; without
//! it the crate is the prost messages and the descriptor set, and builds no tonic.

#![allow(missing_docs, missing_debug_implementations, clippy::all)]

/// Generated messages and, with `grpc`, `ingest_client`/`ingest_server` and
/// `messaging_client`/`messaging_server`.
pub mod v1 {
    // What `tonic::include_proto!` expands to, spelled out so it needs no tonic.
    include!(concat!(env!("OUT_DIR"), "/kapso.gateway.v1.rs"));
}

/// Encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kapso_gateway_v1_descriptor.bin"));
