//! Who may call: with a tokens file, every `docconv.v1.Converter` call must
//! carry `authorization: Bearer <token>` with a token the file lists, or it
//! fails UNAUTHENTICATED before it reaches the service (an upload is refused
//! before any of it is read). Only the Converter service is wrapped: health
//! stays open for probes and load balancers, and reflection stays open so
//! grpcurl can discover the API (it describes the API, never a job).

use super::error::Error;
use docconv_auth::TokensFile;
use std::sync::Arc;
use tonic::{Request, Status};

#[derive(Clone)]
pub struct Authenticate {
    /// `None`: no tokens file, every call passes.
    tokens: Option<Arc<TokensFile>>,
}

impl Authenticate {
    pub fn new(tokens: Option<Arc<TokensFile>>) -> Authenticate {
        Authenticate { tokens }
    }
}

const HOW: &str = "send the metadata `authorization: Bearer <token>` with a token this service accepts \
                   (grpcurl: -H 'authorization: Bearer <token>')";

impl tonic::service::Interceptor for Authenticate {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(request);
        };
        let value = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
        let Some(token) = value.and_then(docconv_auth::bearer) else {
            return Err(Error::Unauthenticated(format!("this call needs a token: {HOW}")).into());
        };
        // At most once a second this looks at the file's modification time
        // (a stat, and a read of a small file when it changed): cheap
        // enough to do inline rather than from a timer task.
        match tokens.verify(token) {
            Some(name) => {
                tracing::debug!(token = %name, "authenticated call");
                Ok(request)
            }
            None => {
                // Debug only: on a service facing the internet, refused
                // guesses are routine and would drown the log.
                tracing::debug!("a call with an unknown token was refused");
                Err(Error::Unauthenticated(format!("the token is not accepted (unknown, or revoked): {HOW}")).into())
            }
        }
    }
}
