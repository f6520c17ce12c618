//! The gateway: a thin web front end over the converter's gRPC API.
//!
//! Browser uploads become `Submit` calls, `WatchJob` streams become Turbo
//! Stream messages over a WebSocket, and results stream through to the
//! browser. Every job fact comes from the converter; the gateway keeps no
//! job state and never touches LibreOffice.
#![forbid(unsafe_code)]

mod assets;
mod auth;
pub mod bookmarks;
pub mod config;
mod converters;
mod csp;
mod download;
mod error;
mod form;
mod form_catalog;
pub mod metrics;
mod pages;
mod serve;
mod stream;
mod trace;
mod upload;
mod view;
mod watches;

use auth::Caller;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use config::{ConverterTrust, GatewayConfig};
use docconv::proto::v1::converter_client::ConverterClient;
use docconv_auth::TokensFile;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// A converter client whose calls carry one request's token.
type Client = ConverterClient<InterceptedService<Channel, auth::Caller>>;

pub use download::content_disposition;
pub use stream::{CLOSE_DONE, CLOSE_RECONNECT};

#[derive(Clone)]
pub struct AppState {
    /// One HTTP/2 connection to the converter, shared by all requests.
    channel: Channel,
    /// Whether there are several converters, so that a read another
    /// converter could answer is worth trying again.
    others: bool,
    config: Arc<GatewayConfig>,
    /// The shared upstream watches, one per watched job.
    watches: Arc<watches::Watches>,
    /// The converter's upload limit and when it was learned: it changes
    /// only with the converter's settings, so uploads need not ask first.
    upload_limit: Arc<std::sync::Mutex<Option<(std::time::Instant, u64)>>>,
    /// Who may use the gateway; `None`: anyone (see `auth`).
    tokens: Option<Arc<TokensFile>>,
    /// Uploads in progress per client address.
    uploads: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

impl AppState {
    /// Connects lazily: the gateway starts (and answers /healthz) before
    /// the converter is up. With several converter URLs (converters of
    /// one cluster), calls are spread over those that serve (see
    /// `converters`). Reads the tokens file, if there is one.
    pub fn new(converter_urls: &[String], config: GatewayConfig) -> Result<AppState, String> {
        let tokens = match &config.auth_tokens_file {
            Some(path) => Some(Arc::new(TokensFile::open(path).map_err(|e| e.to_string())?)),
            None => None,
        };
        let mut endpoints = Vec::new();
        for url in converter_urls {
            let endpoint = Channel::from_shared(url.clone())
                .map_err(|e| format!("bad converter URL {url:?}: {e}"))?
                .connect_timeout(Duration::from_secs(5));
            endpoints.push(converter_tls(endpoint, &config.converter_trust)?);
        }
        if endpoints.is_empty() {
            return Err("no converter URL".into());
        }
        let others = endpoints.len() > 1;
        let channel = converters::channel(endpoints);
        Ok(AppState {
            channel,
            others,
            config: Arc::new(config),
            watches: Default::default(),
            upload_limit: Default::default(),
            tokens,
            uploads: Default::default(),
        })
    }

    /// A client for the calls made for one request, carrying its token.
    fn client(&self, caller: &Caller) -> Client {
        ConverterClient::with_interceptor(self.channel.clone(), caller.clone())
    }

    fn timeout(&self) -> Duration {
        self.config.request_timeout()
    }

    /// The converter's upload limit in bytes, asked at most once a minute
    /// (with the token of the request that happens to ask).
    async fn upload_limit(&self, caller: &Caller) -> Result<u64, error::AppError> {
        const FRESH: Duration = Duration::from_secs(60);
        let known = *self.upload_limit.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, limit)) = known.filter(|(learned, _)| learned.elapsed() < FRESH) {
            return Ok(limit);
        }
        let request = docconv::proto::v1::ListFormatsRequest {};
        let limit = error::read(self.timeout(), self.others, || {
            let mut client = self.client(caller);
            async move { client.list_formats(request).await }
        })
        .await?
        .into_inner()
        .max_upload_bytes;
        *self.upload_limit.lock().unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), limit));
        Ok(limit)
    }
}

pub fn app(state: AppState) -> Router {
    // Open to all, tokens or not: probes, and the files every page (the
    // 401 page included) loads and the icon browsers ask for, which hold
    // nothing of anyone's.
    let open = Router::new()
        .route("/assets/{version}/{name}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .route("/healthz", get(pages::healthz))
        .route("/readyz", get(pages::readyz));
    // Everything else, unknown paths included, needs a token when there
    // is a tokens file.
    let guarded = Router::new()
        .route("/", get(pages::index))
        // Sizes are enforced per file while streaming (see `upload`), not
        // by buffering the body against a fixed cap.
        .route("/convert", post(upload::convert).layer(DefaultBodyLimit::disable()))
        .route("/batch", get(pages::batch))
        .route("/jobs/{id}", get(pages::job))
        .route("/jobs/{id}/stream", get(stream::stream))
        .route("/jobs/{id}/download", get(download::download))
        .route("/jobs/{id}/preview.png", get(download::preview))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require));
    let metrics = state.config.metrics.clone();
    open.merge(guarded)
        .layer(axum::middleware::from_fn(csp::headers))
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::count))
        .layer(axum::middleware::from_fn(trace::follow))
        .with_state(state)
}

/// TLS for the connection to the converter, as its URL's scheme and the
/// trust configured say: `https://` needs someone to trust, and a CA given
/// for a plain `http://` URL is a mistake worth stopping for (it would
/// suggest a protection that is not there).
fn converter_tls(endpoint: Endpoint, trust: &ConverterTrust) -> Result<Endpoint, String> {
    let https = endpoint.uri().scheme_str() == Some("https");
    let tls = ClientTlsConfig::new().timeout(docconv_auth::tls::HANDSHAKE_TIMEOUT);
    let endpoint = match (https, trust) {
        (false, ConverterTrust::None) => return Ok(endpoint),
        (false, _) => return Err("--converter-ca is for a converter URL that starts with https://".into()),
        // Not the system's roots by default: a converter is usually on a
        // private network with a private CA, and a public CA's bundle is
        // one flag away.
        (true, ConverterTrust::None) => {
            return Err("the converter URL is https://: give --converter-ca FILE, the PEM certificate of the CA \
                        that issued the converter's certificate (for a public CA, the system's bundle: \
                        --converter-ca /etc/ssl/certs/ca-certificates.crt)"
                .into());
        }
        (true, ConverterTrust::Ca(path)) => {
            let anchors = docconv_auth::tls::trust_anchors(path).map_err(|e| e.to_string())?;
            endpoint.tls_config(tls.trust_anchors(anchors))
        }
        (true, ConverterTrust::Own(certificate)) => endpoint.tls_config_with_verifier(tls, certificate.own_verifier()),
    };
    endpoint.map_err(|e| format!("TLS to the converter: {e}"))
}

/// Serves the gateway on `listener` until `shutdown` resolves.
pub async fn run(
    converter_urls: &[String],
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let state = AppState::new(converter_urls, config)?;
    let address = listener.local_addr().ok();
    let tls = state.config.tls.as_ref().map(|certificate| certificate.acceptor(docconv_auth::tls::ALPN_WEB));
    tracing::info!(?address, https = tls.is_some(), "gateway listening");
    docconv_auth::log_state(state.tokens.as_deref(), address, "requests");
    serve::serve(listener, tls, app(state), shutdown).await;
    Ok(())
}

/// The defaults of a settings struct, as its flag attributes declare them
/// (so each default is written once, where the flag is).
fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("docconv"));
    T::from_arg_matches(&command.get_matches_from(["docconv"])).expect("the declared defaults parse")
}
