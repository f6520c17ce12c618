//! Code generated from `proto/` by `build.rs`. Modules mirror the proto
//! packages, which the generated code relies on for cross-package paths.

// Generated messages are as prost makes them: a oneof holding a large
// message is not ours to box.
#[allow(clippy::large_enum_variant)]
pub mod v1 {
    tonic::include_proto!("docconv.v1");
}

/// The converter–worker pipe protocol (private).
pub mod worker {
    pub mod v1 {
        tonic::include_proto!("docconv.worker.v1");
    }
    pub use v1::*;
}

/// The job store's record format (private).
pub mod store {
    pub mod v1 {
        tonic::include_proto!("docconv.store.v1");
    }
    pub use v1::*;
}

/// The encoded descriptor set of every docconv proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("docconv_descriptor");
