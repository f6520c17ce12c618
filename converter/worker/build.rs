//! Compiles the private converter–worker protocol,
//! `proto/docconv/worker/v1`. Both ends are this crate.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto/docconv/worker/v1");
    let fds = protox::compile(["docconv/worker/v1/worker.proto"], ["../../proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
