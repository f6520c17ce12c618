//! The converter: the gRPC job service, the job store and the LibreOffice
//! worker pool. Its public face is `server::run` and its settings; the rest
//! is private to it (the gateway talks to it over gRPC only).
#![forbid(unsafe_code)]

mod auth;
pub mod config;
mod csv;
mod disk;
mod error;
mod failure;
mod files;
mod formats;
mod html;
mod jobs;
pub mod metrics;
mod options;
mod page_ranges;
mod patience;
mod pdf_input;
mod pool;
mod postprocess;
mod probe;
pub mod server;
mod service;
mod webhooks;
mod workers;

/// The defaults of a settings struct, as its flag attributes declare them
/// (so each default is written once, where the flag is).
fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("docconv"));
    T::from_arg_matches(&command.get_matches_from(["docconv"])).expect("the declared defaults parse")
}
