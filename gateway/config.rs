//! The gateway's settings, from flags or `DOCCONV_*` environment variables.

use docconv_auth::tls::ServerCertificate;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Clone, Debug)]
pub struct GatewayConfig {
    /// The address people reach the gateway at, e.g. https://convert.example.com;
    /// WebSocket connections from any other origin are refused
    /// [default: the request's own Host]
    #[arg(long, env = "DOCCONV_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Most documents in one upload
    #[arg(long, env = "DOCCONV_MAX_FILES", default_value_t = 10)]
    pub max_files: usize,

    /// Seconds a page or API call may wait for the converter
    #[arg(long, env = "DOCCONV_REQUEST_TIMEOUT_SECS", default_value_t = 15)]
    pub request_timeout_secs: u64,

    /// Seconds an upload may take in all; slower ones are cut off (uploads
    /// are also cut off when they average under 4 KiB/s)
    #[arg(long, env = "DOCCONV_UPLOAD_TIMEOUT_SECS", default_value_t = 600)]
    pub upload_timeout_secs: u64,

    /// Uploads one client address may have in progress at once; more are
    /// answered 429 (behind a proxy, every client has the proxy's address)
    #[arg(long, env = "DOCCONV_MAX_UPLOADS_PER_CLIENT", default_value_t = 4)]
    pub max_uploads_per_client: usize,

    /// The tokens file (see `docconv_auth`): with it, every route but
    /// health, readiness and assets needs one of its tokens. Set from the
    /// command line's `--auth-tokens-file`, which `serve` hands to the
    /// converter too, so it is not a flag of this struct.
    #[arg(skip)]
    pub auth_tokens_file: Option<PathBuf>,

    /// The certificate the web listener serves HTTPS with (see
    /// `docconv_auth::tls`); without it, plain HTTP. Opened from the command
    /// line's `--tls-cert` and `--tls-key`, which `serve` hands to the
    /// converter too, so they are not flags of this struct.
    #[arg(skip)]
    pub tls: Option<Arc<ServerCertificate>>,

    /// How the certificate of an `https://` converter URL is checked. Set
    /// by the command line: `docconv gateway`'s `--converter-ca`, or, under
    /// `serve`, the certificate that process's converter serves.
    #[arg(skip)]
    pub converter_trust: ConverterTrust,

    /// What this gateway counts; the command line registers it for
    /// `--metrics-listen`.
    #[arg(skip)]
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Whom the gateway trusts to be the converter on an `https://` URL.
#[derive(Clone, Debug, Default)]
pub enum ConverterTrust {
    /// No one: the converter URL must be `http://`.
    #[default]
    None,
    /// A certificate for the URL's host issued by a CA in this PEM file.
    Ca(PathBuf),
    /// Exactly the certificate this process's own converter serves.
    Own(Arc<ServerCertificate>),
}

impl Default for GatewayConfig {
    fn default() -> Self {
        crate::defaults()
    }
}

impl GatewayConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }

    pub fn upload_timeout(&self) -> Duration {
        Duration::from_secs(self.upload_timeout_secs.max(1))
    }

    /// `scheme://host[:port]` of the public URL, as browsers send in `Origin`.
    pub fn public_origin(&self) -> Option<String> {
        let url = self.public_url.as_deref()?.trim_end_matches('/');
        let (scheme, rest) = url.split_once("://")?;
        let host = rest.split('/').next()?;
        Some(format!("{}://{}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
    }
}
