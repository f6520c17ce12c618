//! The converter: the gRPC job service and the LibreOffice worker pool.

pub mod config;
pub mod csv;
pub mod disk;
pub mod error;
pub mod failure;
pub mod formats;
pub mod html;
pub mod ids;
pub mod jobs;
pub mod options;
pub mod pdf;
pub mod pool;
pub mod postprocess;
pub mod probe;
pub mod server;
pub mod service;
pub mod store;
pub mod worker;
