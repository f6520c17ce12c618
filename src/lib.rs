pub mod proto;

#[path = "../converter/mod.rs"]
pub mod converter;

#[path = "../gateway/mod.rs"]
pub mod gateway;

#[path = "../bench/mod.rs"]
pub mod bench;
