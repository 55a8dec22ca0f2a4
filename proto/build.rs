//! Compiles `kapso/gateway/v1/*.proto` with protox (pure Rust, no `protoc` binary),
//! then generates prost messages from the descriptor set, and with the `grpc` feature
//! tonic clients and servers too.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "kapso/gateway/v1/content.proto",
    "kapso/gateway/v1/types.proto",
    "kapso/gateway/v1/ingest.proto",
    "kapso/gateway/v1/messaging.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Served by the core's reflection service so grpcurl works without the .proto files.
    fs::write(
        out_dir.join("kapso_gateway_v1_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    // A build script sees its package's features as environment variables only.
    let grpc = env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        .compile_fds(descriptors)?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
