//! The converter: the gRPC job service and the LibreOffice worker pool.

pub mod worker;
pub mod csv;
pub mod formats;
pub mod html;
pub mod pdf;
pub mod store;
pub mod config;
pub mod error;
pub mod failure;
pub mod ids;
pub mod jobs;
pub mod options;
pub mod pool;
pub mod postprocess;
pub mod probe;
pub mod server;
pub mod service;
