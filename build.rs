//! Compiles `proto/` into Rust with tonic's code generation.
//!
//! `protox` parses the `.proto` files in pure Rust, so building docconv needs
//! no system `protoc`. The public API's descriptor set is also written out for gRPC server
//! reflection, which is how grpcurl discovers the API without local files.

use std::{env, path::PathBuf};

const PROTOS: &[&str] =
    &["docconv/v1/converter.proto", "docconv/worker/v1/worker.proto", "docconv/store/v1/store.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    // Reflection describes the public API only, not the private protocols.
    let public = protox::compile([PROTOS[0]], ["proto"])?;
    std::fs::write(out_dir.join("docconv_descriptor.bin"), prost::Message::encode_to_vec(&public))?;

    let fds = protox::compile(PROTOS, ["proto"])?;

    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    Ok(())
}
