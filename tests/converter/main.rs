//! End-to-end tests of the converter against real LibreOffice workers.
//! One file per concern; `support` has the shared machinery, `reliability`
//! the measurements fault and hostile tests record for the reliability report.

mod api;
mod auth;
mod catalog;
mod cli;
mod cluster;
mod conformance;
mod containment;
mod durability;
mod examples;
mod export_switches;
mod finishing;
mod fixtures;
mod grpcurl;
mod invoices;
mod marks;
mod merge;
mod observability;
mod options;
mod pdf_input;
mod reliability;
mod restart;
mod safety;
mod soak;
mod supervision;
mod support;
mod tls;
mod webhooks;
