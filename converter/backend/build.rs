//! Compiles the job record format, `proto/docconv/store/v1`, which only the
//! converter reads and writes. It embeds public API messages, which come
//! from the API crate rather than being generated twice.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto/docconv/store/v1");
    println!("cargo:rerun-if-changed=../../proto/docconv/v1");
    let fds = protox::compile(["docconv/store/v1/store.proto"], ["../../proto"])?;
    prost_build::Config::new().extern_path(".docconv.v1", "::docconv::proto::v1").compile_fds(fds)?;
    Ok(())
}
