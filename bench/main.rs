//! `docconv-bench`: measures the `docconv` binary beside it against its
//! peers and writes the report (see `scripts/bench`); `docconv-bench
//! reliability` writes the reliability report from what the tests recorded
//! (see `scripts/reliability`).
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "docconv-bench",
    about = "Measure docconv against its peers and write the report",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: docconv_bench::BenchArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Write the reliability report from the cases the tests recorded
    Reliability(docconv_bench::reliability::ReliabilityArgs),
    /// Time workers from spawn to ready and to warm, and their memory, with
    /// 2, 4 and 8 started together
    WorkerStartup(docconv_bench::worker_startup::WorkerStartupArgs),
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCCONV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Reliability(args)) => docconv_bench::reliability::run(args),
        Some(Command::WorkerStartup(args)) => docconv_bench::worker_startup::run(args),
        None => docconv_bench::run(cli.args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docconv-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
