//! The `kapso.gateway.v1` wire contract shared by the adapter, the core and the clients.
//!
//! Types and services are generated at build time from `proto/kapso/gateway/v1/*.proto`.
//! Other languages generate their SDKs from the same files.

#![allow(missing_docs, missing_debug_implementations, clippy::all)]

/// Generated messages, `ingest_client`/`ingest_server` and `messaging_client`/`messaging_server`.
pub mod v1 {
    tonic::include_proto!("kapso.gateway.v1");
}

/// Encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("kapso_gateway_v1_descriptor");
