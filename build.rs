//! Compiles the public API, `proto/docconv/v1`, into Rust with tonic's code
//! generation. (The private protocols are compiled by the crates that own
//! them: `converter/` the job record, `converter/worker/` the worker pipe.)
//!
//! `protox` parses the `.proto` files in pure Rust, so building docconv needs
//! no system `protoc`. The descriptor set is also written out for gRPC server
//! reflection, which is how grpcurl discovers the API without local files.

use std::{env, path::PathBuf};

const API: &str = "docconv/v1/converter.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/docconv/v1");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let fds = protox::compile([API], ["proto"])?;
    std::fs::write(out_dir.join("docconv_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .client_mod_attribute(".", r#"#[cfg(feature = "client")]"#)
        .server_mod_attribute(".", r#"#[cfg(feature = "server")]"#)
        .compile_fds(fds)?;
    Ok(())
}
