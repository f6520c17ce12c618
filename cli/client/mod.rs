//! The client commands, `docconv convert` and `docconv job`: a running
//! docconv service used over its public gRPC API.
//!
//! This module uses the public `docconv` crate alone (its generated client,
//! `auth::Bearer`, the chunk limit and job ids) and none of the service's
//! crates, so it is also the example of a Rust client: `connect` opens a
//! channel (TLS, a token), `convert` streams uploads and follows jobs,
//! `download` reads results into place with resumption.

mod attach;
mod convert;
mod download;
mod error;
mod export_switches;
mod job;
mod json;
mod marks;
mod options;
mod progress;
mod viewer;
mod webhook;

pub use convert::ConvertArgs;
pub use job::JobArgs;

use clap::Args;
use docconv::auth::Bearer;
use docconv::proto::v1::converter_client::ConverterClient;
use error::ClientError;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Every job ended well.
const EXIT_OK: u8 = 0;
/// A job failed or was cancelled (its message is printed); the others
/// may have succeeded.
const EXIT_JOB_FAILED: u8 = 1;
/// The command could not do its work: a wrong argument (clap uses 2 for
/// those too), a service that cannot be reached or refused the call, a
/// file that cannot be read or written.
const EXIT_ERROR: u8 = 2;

type Client = ConverterClient<InterceptedService<Channel, Bearer>>;

/// Where the service is and how to reach it, shared by every client command.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// The converter's gRPC URL (`docconv serve` and `docconv converter`
    /// listen on 127.0.0.1:50051); https://HOST:PORT for one serving TLS
    #[arg(long, env = "DOCCONV_SERVER", value_name = "URL", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// A token for a service with authentication, sent as `authorization:
    /// Bearer TOKEN`. Prefer the environment variable: a flag is visible to
    /// other users in the process list
    #[arg(long, env = "DOCCONV_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    token: Option<String>,
    /// PEM file of the CA certificate(s) an https:// server's certificate
    /// must be issued by [default: the system's trusted roots]
    #[arg(long, env = "DOCCONV_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
}

impl ServerArgs {
    /// A client of the service, connected now, so that a wrong address
    /// fails here and in one message rather than in every call.
    async fn connect(&self) -> Result<Client, ClientError> {
        let bearer = match &self.token {
            Some(token) => Bearer::new(token).map_err(|e| ClientError::Usage(format!("--token: {e}")))?,
            None => Bearer::none(),
        };
        let endpoint = Endpoint::from_shared(self.server.clone())
            .map_err(|e| ClientError::Usage(format!("--server {:?} is not a URL: {e}", self.server)))?
            .connect_timeout(Duration::from_secs(10));
        let endpoint = match (endpoint.uri().scheme_str(), &self.ca) {
            (Some("https"), ca) => {
                let tls = match ca {
                    Some(path) => {
                        let pem = std::fs::read(path)
                            .map_err(|e| ClientError::io(format!("reading {}", path.display()), e))?;
                        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
                    }
                    None => ClientTlsConfig::new().with_native_roots(),
                };
                endpoint.tls_config(tls).map_err(|e| ClientError::connect(&self.server, e))?
            }
            (Some("http"), None) => endpoint,
            // A CA for a plain URL would suggest a protection that is not there.
            (Some("http"), Some(_)) => {
                return Err(ClientError::Usage("--ca is for a server URL that starts with https://".into()));
            }
            _ => {
                return Err(ClientError::Usage(format!(
                    "--server {:?}: use http://HOST:PORT, or https://HOST:PORT for TLS",
                    self.server
                )));
            }
        };
        let channel = endpoint.connect().await.map_err(|e| ClientError::connect(&self.server, e))?;
        Ok(ConverterClient::with_interceptor(channel, bearer))
    }
}

/// Runs a client command on a runtime of its own (one thread: the work is
/// waiting on the network and the disk).
fn run(work: impl Future<Output = u8>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => ExitCode::from(runtime.block_on(work)),
        Err(e) => {
            eprintln!("docconv: starting the async runtime: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `docconv convert`.
pub fn convert(args: ConvertArgs) -> ExitCode {
    run(convert::run(args))
}

/// `docconv job …`.
pub fn job(args: JobArgs) -> ExitCode {
    run(job::run(args))
}
