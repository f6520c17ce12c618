//! The `docconv` command: one binary for every part of the service.
#![forbid(unsafe_code)]

mod client;
mod logs;
mod metrics;

use clap::{Args, Parser, Subcommand};
use docconv_auth::tls::ServerCertificate;
use docconv_converter::{config::ConverterConfig, server};
use docconv_gateway::{
    self as gateway,
    config::{ConverterTrust, GatewayConfig},
};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Parser)]
#[command(name = "docconv", version, about = "Office documents in, PDFs out, with live progress")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    logs: logs::Logs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole service on this machine (converter and gateway) with
    /// embedded defaults.
    Serve {
        /// gRPC address of the converter
        #[arg(long, env = "DOCCONV_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
        grpc_listen: SocketAddr,
        /// HTTP address of the web gateway
        #[arg(long, env = "DOCCONV_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
        http_listen: SocketAddr,
        #[command(flatten)]
        converter: ConverterConfig,
        #[command(flatten)]
        gateway: GatewayConfig,
        #[command(flatten)]
        auth: Auth,
        #[command(flatten)]
        tls: Tls,
        #[command(flatten)]
        observe: metrics::Observe,
    },
    /// Run only the converter: the gRPC job service and its workers.
    Converter {
        /// gRPC address to listen on
        #[arg(long, env = "DOCCONV_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        #[command(flatten)]
        converter: ConverterConfig,
        #[command(flatten)]
        auth: Auth,
        #[command(flatten)]
        tls: Tls,
        #[command(flatten)]
        observe: metrics::Observe,
    },
    /// Run only the web gateway, in front of a converter.
    Gateway {
        /// HTTP address to listen on
        #[arg(long, env = "DOCCONV_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The converter's gRPC address; https://HOST:PORT for a converter
        /// serving TLS (its certificate must name HOST). Several (comma-
        /// separated or repeated) for converters of one cluster: calls go to
        /// those that answer
        #[arg(long, env = "DOCCONV_CONVERTER_URL", default_value = "http://127.0.0.1:50051", value_delimiter = ',')]
        converter_url: Vec<String>,
        /// PEM file of the CA certificate(s) that an https:// converter
        /// URL's certificate must be issued by (the system's bundle,
        /// /etc/ssl/certs/ca-certificates.crt, for a public CA)
        #[arg(long, env = "DOCCONV_CONVERTER_CA", value_name = "FILE")]
        converter_ca: Option<PathBuf>,
        #[command(flatten)]
        gateway: GatewayConfig,
        #[command(flatten)]
        auth: Auth,
        #[command(flatten)]
        tls: Tls,
        #[command(flatten)]
        observe: metrics::Observe,
    },
    /// Convert documents with a running docconv service, showing progress,
    /// and write the results into place.
    ///
    /// Exits with 0 when every job succeeded, 1 when a job failed or was
    /// cancelled (its message is printed), 2 when the command could not do
    /// its work (a wrong argument, a service that cannot be reached or
    /// refused a call, a file that cannot be read or written).
    // Boxed: its many flags would make every command as large.
    Convert(Box<client::ConvertArgs>),
    /// Look at, follow, cancel or download one job of a running service.
    Job(client::JobArgs),
    /// Print the tokens-file line for a token read from standard input.
    ///
    /// The token comes from standard input, not the command line, so it
    /// stays out of shell history and process lists:
    /// `docconv hash-token --name ci < ci.token >> tokens`
    HashToken {
        /// A name for the token in logs: who or what uses it
        #[arg(long)]
        name: Option<String>,
    },
    /// Internal: a LibreOffice worker process, started by the converter.
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        program_dir: PathBuf,
        #[arg(long)]
        profile_dir: PathBuf,
        /// The worker's private directory, the only place it may write.
        #[arg(long)]
        home: PathBuf,
    },
    /// Internal: the worker zygote, which holds LibreOffice preinitialised
    /// and forks workers from it, started by the converter.
    #[command(hide = true)]
    WorkerZygote {
        #[arg(long)]
        program_dir: PathBuf,
        /// The profile every forked worker's configuration comes from.
        #[arg(long)]
        profile_dir: PathBuf,
    },
    /// Internal: LibreOfficeKit with nothing of docconv around it, the
    /// benchmark's true engine floor.
    #[command(hide = true)]
    BareEngine {
        #[arg(long)]
        program_dir: PathBuf,
        #[arg(long)]
        profile_dir: PathBuf,
    },
}

/// One flag for both parts: under `serve` the converter and the gateway
/// read the same file (each its own copy), so a flag per settings struct
/// would clash there.
#[derive(Args)]
struct Auth {
    /// File of token hashes, one a line (`docconv hash-token` prints them);
    /// with it, every call and page needs one of those tokens. Read again
    /// when it changes [default: no authentication]
    #[arg(long, env = "DOCCONV_AUTH_TOKENS_FILE")]
    auth_tokens_file: Option<PathBuf>,
}

/// TLS for the listeners, one pair for both parts under `serve` (so, like
/// `Auth`, not a flag of either settings struct).
#[derive(Args)]
struct Tls {
    /// PEM certificate to serve TLS with (HTTPS on the web side), the
    /// server's certificate first, then any intermediates; needs --tls-key.
    /// Read again when it changes [default: no TLS]
    #[arg(long, env = "DOCCONV_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert's certificate (unencrypted); read
    /// again when it changes
    #[arg(long, env = "DOCCONV_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
}

impl Tls {
    /// Reads the pair, if there is one; one file alone is a mistake.
    fn open(self) -> Result<Option<Arc<ServerCertificate>>, String> {
        match (self.tls_cert, self.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => ServerCertificate::open(&cert, &key).map(Some).map_err(|e| e.to_string()),
            (cert, _) => Err(format!(
                "--tls-cert and --tls-key go together (a certificate and its key); {} is missing",
                if cert.is_some() { "--tls-key (DOCCONV_TLS_KEY)" } else { "--tls-cert (DOCCONV_TLS_CERT)" }
            )),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = cli.logs;
    let result = match cli.command {
        // The worker is single-threaded and must not start a tokio runtime
        // or logging: LibreOffice owns its process.
        Command::Worker { program_dir, profile_dir, home } => {
            return ExitCode::from(docconv_worker::child::run(&program_dir, &profile_dir, &home, None) as u8);
        }
        Command::WorkerZygote { program_dir, profile_dir } => {
            return ExitCode::from(docconv_worker::zygote::run(&program_dir, &profile_dir) as u8);
        }
        Command::BareEngine { program_dir, profile_dir } => {
            return ExitCode::from(docconv_worker::bare::run(&program_dir, &profile_dir) as u8);
        }
        // The client commands have exit codes of their own.
        Command::Convert(args) => return client::convert(*args),
        Command::Job(args) => return client::job(args),
        Command::HashToken { name } => hash_token(name.as_deref()),
        Command::Serve { grpc_listen, http_listen, mut converter, mut gateway, auth, tls, observe } => {
            block_on(logs, "docconv", async move {
                let mut registry = Registry::default();
                converter.metrics.register(&mut registry);
                gateway.metrics.register(&mut registry);
                observe.serve(registry).await?;
                converter.auth_tokens_file = auth.auth_tokens_file.clone();
                gateway.auth_tokens_file = auth.auth_tokens_file;
                let tls = tls.open()?;
                // With TLS the gateway reaches its converter over TLS too, on
                // the one listener everyone uses, so every call still passes
                // the converter's token check and nothing listens in plain
                // text. It trusts exactly the certificate that converter serves
                // (the same files, read once for both, so a renewal is seen by
                // both at once): the name in it is for the outside world, and
                // the CA that issued it need not be known here.
                let converter_url = [match &tls {
                    Some(certificate) => {
                        gateway.converter_trust = ConverterTrust::Own(certificate.clone());
                        format!("https://{grpc_listen}")
                    }
                    None => format!("http://{grpc_listen}"),
                }];
                converter.tls = tls.clone();
                gateway.tls = tls;
                let shutdown = shutdown_signal();
                let grpc = bind(grpc_listen).await?;
                let http = bind(http_listen).await?;
                let exe = current_exe()?;
                tokio::try_join!(
                    async { server::run(converter, exe, grpc, shutdown.wait()).await.map_err(|e| e.to_string()) },
                    gateway::run(&converter_url, gateway, http, shutdown.wait()),
                )
                .map(|_| ())
            })
        }
        Command::Converter { listen, mut converter, auth, tls, observe } => {
            block_on(logs, "docconv-converter", async move {
                let mut registry = Registry::default();
                converter.metrics.register(&mut registry);
                observe.serve(registry).await?;
                converter.auth_tokens_file = auth.auth_tokens_file;
                converter.tls = tls.open()?;
                let listener = bind(listen).await?;
                server::run(converter, current_exe()?, listener, shutdown_signal().wait())
                    .await
                    .map_err(|e| e.to_string())
            })
        }
        Command::Gateway { listen, converter_url, converter_ca, mut gateway, auth, tls, observe } => {
            block_on(logs, "docconv-gateway", async move {
                let mut registry = Registry::default();
                gateway.metrics.register(&mut registry);
                observe.serve(registry).await?;
                gateway.auth_tokens_file = auth.auth_tokens_file;
                gateway.tls = tls.open()?;
                if let Some(ca) = converter_ca {
                    gateway.converter_trust = ConverterTrust::Ca(ca);
                }
                let listener = bind(listen).await?;
                gateway::run(&converter_url, gateway, listener, shutdown_signal().wait()).await
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docconv: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads one token from standard input and prints its line for the tokens
/// file. Only the hash is printed: the token itself is never written out.
fn hash_token(name: Option<&str>) -> Result<(), String> {
    use std::io::{BufRead, IsTerminal, Read};
    let stdin = std::io::stdin();
    let mut input = String::new();
    if stdin.is_terminal() {
        // The terminal shows what is typed; piping the token in avoids that.
        eprint!("token (ends with Enter): ");
        stdin.lock().read_line(&mut input).map_err(|e| format!("reading the token: {e}"))?;
    } else {
        stdin.lock().read_to_string(&mut input).map_err(|e| format!("reading the token: {e}"))?;
    }
    // `echo`, a here-string and a file saved by an editor all end in a
    // newline that is no part of the token.
    let token = input.strip_suffix('\n').map_or(input.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
    if token.contains('\n') {
        return Err("give one token, on one line".into());
    }
    docconv::auth::check_token(token).map_err(|e| e.to_string())?;
    if let Some(name) = name.filter(|n| n.chars().any(char::is_control) || n.trim().is_empty()) {
        return Err(format!("the name {name:?} must be one line of text"));
    }
    // The file holds unsalted hashes: a short token could be found from
    // its line by trying every candidate.
    if token.len() < 20 {
        eprintln!("docconv: warning: a token this short can be guessed; use a long random one (openssl rand -hex 32)");
    }
    println!("{}", docconv_auth::file_line(token, name.map(str::trim)));
    Ok(())
}

/// Runs a service: logging for it (as `service` in exported spans), then
/// `work` on a runtime.
fn block_on(
    logs: logs::Logs,
    service: &'static str,
    work: impl Future<Output = Result<(), String>>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("tokio runtime: {e}"))?;
    let _inside = runtime.enter();
    let _exporting = logs.start(service)?;
    runtime.block_on(work)
}

async fn bind(address: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(address).await.map_err(|e| format!("cannot listen on {address}: {e}"))
}

/// The converter starts its workers as `docconv worker` from this binary.
fn current_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the docconv binary itself: {e}"))
}

/// Resolves on Ctrl-C or SIGTERM (what service managers send); several
/// servers can wait on one.
struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut signalled = self.0.clone();
        async move {
            let _ = signalled.wait_for(|&s| s).await;
        }
    }
}

fn shutdown_signal() -> Shutdown {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = tx.send(true);
    });
    Shutdown(rx)
}
