pub mod proto;

#[path = "../converter/mod.rs"]
pub mod converter;
