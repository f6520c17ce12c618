//! `docconv-bench`: measures the `docconv` binary beside it against its
//! peers and writes the report (see `scripts/bench`).
#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "docconv-bench", about = "Measure docconv against its peers and write the report")]
struct Cli {
    #[command(flatten)]
    args: docconv_bench::BenchArgs,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCCONV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match docconv_bench::run(Cli::parse().args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docconv-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
