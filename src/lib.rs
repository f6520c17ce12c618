pub mod proto;

/// The defaults of a settings struct, as its flag attributes declare them
/// (so each default is written once, where the flag is).
pub(crate) fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("docconv"));
    T::from_arg_matches(&command.get_matches_from(["docconv"])).expect("the declared defaults parse")
}

#[path = "../converter/mod.rs"]
pub mod converter;

#[path = "../gateway/mod.rs"]
pub mod gateway;

#[path = "../bench/mod.rs"]
pub mod bench;
