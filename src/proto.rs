//! Code generated from `proto/docconv/v1` by `build.rs`.

// Generated messages are as prost makes them: a oneof holding a large
// message is not ours to box.
#[allow(clippy::large_enum_variant)]
pub mod v1 {
    tonic::include_proto!("docconv.v1");
}

/// The encoded descriptor set of the public API, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("docconv_descriptor");
