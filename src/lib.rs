//! The docconv API: the gRPC types and client generated from
//! `proto/docconv/v1/converter.proto`, which documents every call, plus
//! what a client needs beside them (job ids, limits, state helpers, and
//! `auth::Bearer` to send a token).
//!
//! ```no_run
//! use docconv::proto::v1::{converter_client::ConverterClient, GetJobRequest};
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let mut client = ConverterClient::connect("http://127.0.0.1:50051").await?;
//! let job = client.get_job(GetJobRequest { id: "…".into() }).await?.into_inner();
//! println!("{:?}", job.state());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod auth;
pub mod ids;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod proto;
pub mod trace;

/// Limits of the API that clients must respect.
pub mod limits {
    /// Largest `data` chunk a client may send to `Submit`: well under the
    /// 4 MiB message limit gRPC servers apply by default.
    pub const MAX_CHUNK: usize = 1024 * 1024;
}

impl proto::v1::JobState {
    /// Whether a job in this state has ended (and will never change again).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}
