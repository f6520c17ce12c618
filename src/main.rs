//! The `docconv` command: one binary for every part of the service.

use clap::{Parser, Subcommand};
use docconv::converter::{config::ConverterConfig, server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "docconv", version, about = "Office documents in, PDFs out, with live progress")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole service on this machine with embedded defaults.
    Serve {
        /// gRPC address of the converter
        #[arg(long, env = "DOCCONV_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
        grpc_listen: SocketAddr,
        #[command(flatten)]
        converter: ConverterConfig,
    },
    /// Run only the converter (the gRPC job service and its workers).
    Converter {
        /// gRPC address to listen on
        #[arg(long, env = "DOCCONV_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        #[command(flatten)]
        converter: ConverterConfig,
    },
    /// Internal: a LibreOffice worker process, started by the converter.
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        program_dir: PathBuf,
        #[arg(long)]
        profile_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        // The worker is single-threaded and must not start a tokio runtime
        // or logging: LibreOffice owns its process.
        Command::Worker { program_dir, profile_dir } => {
            ExitCode::from(docconv::converter::worker::child::run(&program_dir, &profile_dir) as u8)
        }
        Command::Serve { grpc_listen, converter } => run_converter(grpc_listen, converter),
        Command::Converter { listen, converter } => run_converter(listen, converter),
    }
}

fn run_converter(listen: SocketAddr, config: ConverterConfig) -> ExitCode {
    init_logging();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| server::StartError(format!("cannot listen on {listen}: {e}")))?;
        let exe = std::env::current_exe().map_err(|e| server::StartError(format!("cannot find docconv itself: {e}")))?;
        server::run(config, exe, listener, shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docconv: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCCONV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// Ctrl-C or SIGTERM (what service managers send).
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
